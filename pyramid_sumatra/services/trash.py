"""The trash: deleted records and projects kept until restored or purged.

Deleting moves the record (its document) or the project (a JSON document of its
settings, grants and records) into the trash through the trash hooks; without them
a delete destroys, as before 0.2.0. History stays apart and comes back on restore.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from ..records import build_stored_record, name_problem, utcnow
from ..storage import Storage
from ..storage.types import ProjectInfo, StoredRecord, TrashItem
from . import history
from .errors import Conflict, InvalidInput, NotFound
from .history import Actor

#: Most items a trash listing shows (the rest are still there, and purge reaches them).
LIST_LIMIT = 500
_STAMP = "%Y-%m-%d %H:%M:%S.%f"
_MAX_DAYS = 36500


def _by(actor: Actor | None) -> str:
    if actor is None or not actor.user:
        return ""
    return f"{actor.user} (token {actor.token})" if actor.token else actor.user


def trash_record(storage: Storage, stored: StoredRecord, actor: Actor | None) -> None:
    """Delete ``stored`` (which exists), keeping it in the trash when the backend can."""
    if storage.trash_available:
        storage.put_trash(TrashItem(
            project_id=stored.project_id, label=stored.label, deleted_at=utcnow(),
            deleted_by=_by(actor), revision=stored.revision, timestamp=stored.timestamp,
            body=stored.body))
    storage.delete_record(stored.project_id, stored.label)
    history.record(storage, actor, stored.project_id, stored.label, "delete",
                   before=stored.revision)


def restore_record(storage: Storage, project_id: str, label: str, deleted_at: str,
                   actor: Actor | None) -> StoredRecord:
    """Bring a trashed record back under its label, with its revision and history."""
    item = storage.get_trash(project_id, label, deleted_at)
    if item is None or not label:
        raise NotFound(f"no record {label!r} deleted at {deleted_at!r} in the trash")
    if storage.get_record(project_id, label) is not None:
        raise Conflict(f"a record {label!r} exists again; delete it before restoring this one")
    record = build_stored_record(project_id, json.loads(item.body or "{}"))
    record.body, record.revision = item.body, item.revision
    storage.put_record(record, create=True)
    storage.delete_trash(project_id, label, deleted_at)
    history.record(storage, actor, project_id, label, "restore", after=record.revision)
    return record


def purge_item(storage: Storage, item: TrashItem) -> None:
    """Destroy a trashed item for good; its history too, unless the name lives on."""
    storage.delete_trash(item.project_id, item.label, item.deleted_at)
    if item.label:
        others = [i for i in storage.list_trash(item.project_id)
                  if i.label == item.label]
        if not others and storage.get_record(item.project_id, item.label) is None:
            storage.delete_history(item.project_id, item.label)
    elif storage.get_project(item.project_id) is None and not any(
            not i.label for i in storage.list_trash(item.project_id)):
        storage.delete_history(item.project_id, None)


def purge(storage: Storage, project_id: str, label: str, deleted_at: str) -> None:
    item = storage.get_trash(project_id, label, deleted_at)
    if item is None:
        raise NotFound(f"nothing named {label or project_id!r} deleted at {deleted_at!r} "
                       "in the trash")
    purge_item(storage, item)


def older_than(text: str | None, default_days: int) -> str:
    """The cut-off stamp of ``--older-than 30d`` (days; ``0d``: everything)."""
    days = default_days
    if text is not None:
        text = text.strip().lower().removesuffix("d")
        if not (text.isascii() and text.isdigit() and len(text) <= 5) or int(text) > _MAX_DAYS:
            raise InvalidInput("older-than", "--older-than is a number of days such as 30d "
                                             f"(at most {_MAX_DAYS})")
        days = int(text)
    return (datetime.now(UTC) - timedelta(days=days)).strftime(_STAMP)


def purge_older(storage: Storage, cutoff: str, project_id: str | None = None) -> int:
    """Purge every item deleted before ``cutoff`` (of one project, or all); how many."""
    problem = project_id is not None and name_problem(project_id, "project id")
    if problem:
        raise InvalidInput("project", problem)
    items = storage.list_trash(project_id, cutoff)
    for item in items:
        purge_item(storage, item)
    return len(items)


# -- projects ----------------------------------------------------------------------------


def snapshot(storage: Storage, project: ProjectInfo) -> str:
    """The whole project as a JSON document (the trash keeps it, restore reads it)."""
    from ..transfer import iter_records

    return json.dumps({
        "id": project.id, "name": project.name, "description": project.description,
        "created": project.created,
        "grants": storage.get_grants(project.id),
        "records": [{"label": r.label, "revision": r.revision, "body": r.body}
                    for r in iter_records(storage, project.id)],
    }, ensure_ascii=False)


def trash_project(storage: Storage, project: ProjectInfo, actor: Actor | None) -> None:
    """Delete the project; the trash keeps all of it when the backend can."""
    if storage.trash_available:
        storage.put_trash(TrashItem(
            project_id=project.id, label="", deleted_at=utcnow(), deleted_by=_by(actor),
            timestamp=project.last_updated, revision=",".join(project_admins(storage, project.id)),
            body=snapshot(storage, project)))
    storage.delete_project(project.id)
    history.record(storage, actor, project.id, "", "delete")


def restore_project(storage: Storage, project_id: str, deleted_at: str,
                    actor: Actor | None) -> ProjectInfo:
    """Bring back a trashed project with its grants and records."""
    item = storage.get_trash(project_id, "", deleted_at)
    if item is None:
        raise NotFound(f"no project {project_id!r} deleted at {deleted_at!r} in the trash")
    if storage.get_project(project_id) is not None:
        raise Conflict(f"a project {project_id!r} exists again; delete it before restoring "
                       "this one")
    doc = json.loads(item.body or "{}")
    info = ProjectInfo(id=project_id, name=doc.get("name", project_id),
                       description=doc.get("description", ""))
    storage.put_project(info)
    for principal, role in doc.get("grants", {}).items():
        storage.set_grant(project_id, principal, role)
    for rec in doc.get("records", []):
        record = build_stored_record(project_id, json.loads(rec["body"]))
        record.body, record.revision = rec["body"], rec["revision"]
        storage.put_record(record, create=True)
    storage.delete_trash(project_id, "", deleted_at)
    history.record(storage, actor, project_id, "", "restore")
    return info


def project_admins(storage: Storage, project_id: str) -> list[str]:
    return sorted(p for p, role in storage.get_grants(project_id).items() if role == "admin")


def admins_of(item: TrashItem) -> list[str]:
    """Who administered a trashed project (they may restore or purge it)."""
    return [a for a in item.revision.split(",") if a]


def trashed_projects(storage: Storage, username: str | None) -> list[TrashItem]:
    """Trashed projects, newest first: every one (``username`` None: a server admin) or
    those ``username`` administered."""
    return [i for i in storage.list_trash(None) if not i.label
            and (username is None or username in admins_of(i))][:LIST_LIMIT]

