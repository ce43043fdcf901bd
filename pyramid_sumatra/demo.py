"""The demo data (the old server's fixtures), shipped inside the package."""

from __future__ import annotations

import json
from importlib.resources import files

from . import DEFAULT_SETTINGS
from .limits import Limits
from .permissions import DEFAULT_ROLE
from .services import grants, projects, records, users
from .storage import Storage

DEMO_USER = "testuser"
DEMO_PASSWORD = "abc123"


def demo_data() -> dict:
    return json.loads(files("pyramid_sumatra").joinpath("data/demo-data.json").read_text())


def load_demo(storage: Storage, data: dict | None = None) -> dict[str, int]:
    """Load users, projects, grants and records; return how many of each.

    Loading again resets the demo's users and projects to their demo state.
    """
    data = data or demo_data()
    for user in data["users"]:
        if storage.get_user(user["username"]) is None:
            users.add_user(storage, user["username"], user["password"])
        else:
            users.set_password(storage, user["username"], user["password"])
    for project in data["projects"]:
        info = storage.get_project(project["id"])
        if info is None:
            projects.create_project(storage, project["id"], None, project.get("name"),
                                    project.get("description"))
        else:
            projects.update_project(storage, info, project)
    for grant in data["grants"]:
        grants.grant(storage, grant["project"], grant["principal"],
                     grant.get("role", DEFAULT_ROLE))
    limits = Limits.from_settings(DEFAULT_SETTINGS)
    for doc in data["records"]:
        records.save_record(storage, doc["project_id"], doc["label"], doc, "v4", user=None,
                            limits=limits)
    return {name: len(data[name]) for name in ("users", "projects", "grants", "records")}


def load_demo_if_empty(storage: Storage) -> bool:
    """Load the demo into a store that has no users and no projects; True if loaded."""
    if storage.list_users() or storage.list_projects(None):
        return False
    load_demo(storage)
    return True
