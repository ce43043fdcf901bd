"""Records: save a PUT (the project appears with its first record), edit annotations, delete."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..limits import Limits, check_record
from ..records import build_stored_record, edit_annotations, name_problem, prepare_put
from ..storage import Storage
from ..storage.types import RecordQuery, StoredRecord
from . import history
from .errors import InvalidInput, NotFound
from .history import Actor
from .projects import create_project
from .trash import trash_record

#: Records ``delete_tagged`` reads (bodies and all) at a time.
_TAG_PAGE = 200
#: ``stored`` not given: the service reads the record itself.
_UNREAD: Any = object()


def save_record(storage: Storage, project_id: str, label: str, incoming: Any,
                media_version: str, *, user: str | None, limits: Limits,
                stored: StoredRecord | None = _UNREAD,
                actor: Actor | None = None) -> tuple[StoredRecord, bool]:
    """Store ``incoming`` as the record ``label``; return (the stored record, created).

    A second save of a label merges into the stored record (records.merge_update);
    an unchanged body keeps the stored revision (JSONB re-serialises bodies). The
    first record of a missing project creates it, with ``user`` as its admin.
    Give ``stored`` when the caller has read the record already (to check a
    precondition against that same revision).
    """
    problem = name_problem(label, "label")  # traversal refuses it first over HTTP
    if problem:
        raise InvalidInput("label", problem)
    if stored is _UNREAD:
        stored = storage.get_record(project_id, label)
    check_record(incoming, limits)
    record = prepare_put(project_id, label, incoming, media_version, stored)
    if stored is None:  # a sweep's first records race to create the project: not a 409
        create_project(storage, project_id, user, exists_ok=True)
    if stored is not None and stored.body == record.body:
        return stored, False
    storage.put_record(record, create=stored is None)
    history.record_change(storage, actor, stored, record, "update")
    return record, stored is None


def save_annotations(storage: Storage, stored: StoredRecord, changes: dict, *,
                     limits: Limits, actor: Actor | None = None, action: str = "edit") -> bool:
    """Store the record with new reason/outcome/tags; True if anything changed.

    Raises InvalidInput, as a PUT would, for tags over the limits.
    """
    doc = edit_annotations(stored.document, changes)
    check_record(doc, limits)
    record = build_stored_record(stored.project_id, doc)
    if record.body == stored.body:
        return False
    storage.put_record(record, create=False)
    history.record_change(storage, actor, stored, record, action)
    return True


def tag_records(storage: Storage, project_id: str, labels: Iterable[str], tags: list[str], *,
                add: bool, limits: Limits,
                actor: Actor | None = None) -> tuple[int, dict[str, InvalidInput]]:
    """Add ``tags`` to (or with ``add=False`` remove them from) each record named.

    Returns how many records changed, and why each refused one was refused;
    missing labels are skipped.
    """
    changed, refused = 0, {}
    for label in labels:
        stored = storage.get_record(project_id, label)
        if stored is None:
            continue
        current = stored.tags
        new = list(dict.fromkeys(current + tags)) if add else [
            t for t in current if t not in tags]
        try:
            changed += save_annotations(storage, stored, {"tags": new}, limits=limits,
                                        actor=actor, action="tag" if add else "untag")
        except InvalidInput as exc:
            refused[label] = exc
    return changed, refused


def delete_record(storage: Storage, project_id: str, label: str,
                  actor: Actor | None = None) -> None:
    """Delete one record: to the trash (services.trash), or destroyed without one."""
    stored = storage.get_record(project_id, label)
    if stored is None:
        raise NotFound(f"project {project_id!r} has no record {label!r}")
    trash_record(storage, stored, actor)


def delete_records(storage: Storage, project_id: str, labels: Iterable[str],
                   actor: Actor | None = None) -> int:
    """Delete the records named; return how many existed."""
    deleted = 0
    for label in labels:
        stored = storage.get_record(project_id, label)
        if stored is not None:
            trash_record(storage, stored, actor)
            deleted += 1
    return deleted


def delete_tagged(storage: Storage, project_id: str, tag: str,
                  actor: Actor | None = None) -> int:
    """Delete the project's records having ``tag``; return how many."""
    if not (storage.trash_available or storage.history_available):
        return storage.delete_records_by_tag(project_id, tag)
    deleted = 0
    while True:  # a page at a time: the deleted ones leave the query (own writes)
        page = storage.query_records(project_id, RecordQuery(tags=[tag], with_body=True,
                                                             limit=_TAG_PAGE))
        for stored in page.records:
            trash_record(storage, stored, actor)
        deleted += len(page.records)
        if page.next_cursor is None:
            return deleted
