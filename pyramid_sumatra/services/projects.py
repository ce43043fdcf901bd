"""Projects: create (the creator becomes admin), update the name and description, delete."""

from __future__ import annotations

from typing import Any

from ..permissions import CREATOR_ROLE
from ..records import name_problem, unstorable
from ..storage import Storage
from ..storage.types import ProjectInfo
from . import history
from .errors import Conflict, InvalidInput, NotFound
from .history import Actor


def require_project(storage: Storage, project_id: str) -> ProjectInfo:
    """The project, or NotFound."""
    project = storage.get_project(project_id)
    if project is None:
        raise NotFound(f"no project {project_id!r}")
    return project


def _check_text(changes: dict[str, Any]) -> None:
    """``name`` and ``description``, when given, are storable strings."""
    for key in ("name", "description"):
        value = changes.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(key, f"{key} must be a string")
        if isinstance(value, str) and unstorable(value):
            raise InvalidInput(key, f"{key} contains a NUL or a lone surrogate, "
                                    "which cannot be stored")


def create_project(storage: Storage, project_id: str, creator: str | None,
                   name: str | None = None, description: str | None = None,
                   actor: Actor | None = None, *, exists_ok: bool = False) -> ProjectInfo:
    """Create a project; its creator gets the admin role on it.

    ``exists_ok``: a project that exists already (created meanwhile by a concurrent
    request, as the first records of a sweep are) is returned as it is, and nobody is
    granted anything; otherwise that is a Conflict.
    """
    problem = name_problem(project_id, "project id")
    if problem:
        raise InvalidInput("id", problem)
    _check_text({"name": name, "description": description})
    existing = storage.get_project(project_id)
    if existing is not None:
        if exists_ok:
            return existing
        raise Conflict(f"a project {project_id!r} already exists")
    project = ProjectInfo(id=project_id, name=name or project_id,
                          description=description or "")
    storage.put_project(project)
    if creator:
        storage.set_grant(project_id, creator, CREATOR_ROLE)
    history.record(storage, actor or Actor(creator or ""), project_id, "", "create",
                   changes=history.diff({}, {"name": project.name,
                                             "description": project.description}))
    return project


def update_project(storage: Storage, project: ProjectInfo, changes: dict,
                   actor: Actor | None = None) -> ProjectInfo:
    """Apply ``name``/``description`` from ``changes``; absent keys keep their value."""
    _check_text(changes)
    updated = ProjectInfo(
        id=project.id,
        name=changes.get("name") or project.name,
        # null, like absent, keeps the description (storage holds no null; found by fuzzing)
        description=(changes["description"] if changes.get("description") is not None
                     else project.description),
    )
    storage.put_project(updated)
    fields = history.diff({"name": project.name, "description": project.description},
                          {"name": updated.name, "description": updated.description})
    if fields:
        history.record(storage, actor, project.id, "", "update", changes=fields)
    return updated


def delete_project(storage: Storage, project_id: str, actor: Actor | None = None) -> None:
    """Delete the project with its records and grants (into the trash, when there is one)."""
    from .trash import trash_project

    trash_project(storage, require_project(storage, project_id), actor)
