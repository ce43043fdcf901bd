"""The demo data (the old server's fixtures), shipped inside the package."""

from __future__ import annotations

import json
from importlib.resources import files

from .passwords import hash_password
from .permissions import DEFAULT_ROLE
from .records import build_stored_record, validate
from .storage import Storage
from .storage.types import ANONYMOUS, ProjectInfo, UserInfo

DEMO_USER = "testuser"
DEMO_PASSWORD = "abc123"


def demo_data() -> dict:
    return json.loads(files("pyramid_sumatra").joinpath("data/demo-data.json").read_text())


def load_demo(storage: Storage, data: dict | None = None) -> dict[str, int]:
    """Load users, projects, grants and records; return how many of each."""
    data = data or demo_data()
    for user in data["users"]:
        storage.put_user(UserInfo(username=user["username"],
                                  password_hash=hash_password(user["password"])))
    for project in data["projects"]:
        storage.put_project(ProjectInfo(id=project["id"], name=project.get("name", ""),
                                        description=project.get("description", "")))
    for grant in data["grants"]:
        role = "read" if grant["principal"] == ANONYMOUS else grant.get("role", DEFAULT_ROLE)
        storage.set_grant(grant["project"], grant["principal"], role)
    for doc in data["records"]:
        project_id = doc["project_id"]
        validate(doc, project_id, doc["label"])
        existing = storage.get_record(project_id, doc["label"])
        storage.put_record(build_stored_record(project_id, doc), create=existing is None)
    return {name: len(data[name]) for name in ("users", "projects", "grants", "records")}


def load_demo_if_empty(storage: Storage) -> bool:
    """Load the demo into a store that has no users and no projects; True if loaded."""
    if storage.list_users() or storage.list_projects(None):
        return False
    load_demo(storage)
    return True
