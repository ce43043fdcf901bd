"""Project operations shared by the views and the CLI."""

from __future__ import annotations

from .permissions import CREATOR_ROLE
from .storage import Storage
from .storage.types import ProjectInfo


def create_project(storage: Storage, project_id: str, creator: str | None,
                   name: str = "", description: str = "") -> ProjectInfo:
    """Create a project; its creator gets the admin role on it."""
    project = ProjectInfo(id=project_id, name=name or project_id, description=description)
    storage.put_project(project)
    if creator:
        storage.set_grant(project_id, creator, CREATOR_ROLE)
    return project


def update_project(storage: Storage, project: ProjectInfo, changes: dict) -> ProjectInfo:
    """Apply ``name``/``description`` from ``changes``; absent keys keep their value."""
    updated = ProjectInfo(
        id=project.id,
        name=changes.get("name") or project.name,
        # null, like absent, keeps the description (storage holds no null; found by fuzzing)
        description=(changes["description"] if changes.get("description") is not None
                     else project.description),
    )
    storage.put_project(updated)
    return updated


def admins(grants: dict[str, str]) -> list[str]:
    return sorted(p for p, role in grants.items() if role == "admin")
