"""Records: save a PUT (the project appears with its first record), edit annotations, delete."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..limits import Limits, check_record
from ..records import build_stored_record, edit_annotations, name_problem, prepare_put
from ..storage import Storage
from ..storage.types import StoredRecord
from .errors import InvalidInput, NotFound
from .projects import create_project

#: ``stored`` not given: the service reads the record itself.
_UNREAD: Any = object()


def save_record(storage: Storage, project_id: str, label: str, incoming: Any,
                media_version: str, *, user: str | None, limits: Limits,
                stored: StoredRecord | None = _UNREAD) -> tuple[StoredRecord, bool]:
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
    return record, stored is None


def save_annotations(storage: Storage, stored: StoredRecord, changes: dict, *,
                     limits: Limits) -> bool:
    """Store the record with new reason/outcome/tags; True if anything changed.

    Raises InvalidInput, as a PUT would, for tags over the limits.
    """
    doc = edit_annotations(stored.document, changes)
    check_record(doc, limits)
    record = build_stored_record(stored.project_id, doc)
    if record.body == stored.body:
        return False
    storage.put_record(record, create=False)
    return True


def tag_records(storage: Storage, project_id: str, labels: Iterable[str], tags: list[str], *,
                add: bool, limits: Limits) -> tuple[int, dict[str, InvalidInput]]:
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
            changed += save_annotations(storage, stored, {"tags": new}, limits=limits)
        except InvalidInput as exc:
            refused[label] = exc
    return changed, refused


def delete_record(storage: Storage, project_id: str, label: str) -> None:
    if not storage.delete_record(project_id, label):
        raise NotFound(f"project {project_id!r} has no record {label!r}")


def delete_records(storage: Storage, project_id: str, labels: Iterable[str]) -> int:
    """Delete the records named; return how many existed."""
    return sum(storage.delete_record(project_id, label) for label in labels)


def delete_tagged(storage: Storage, project_id: str, tag: str) -> int:
    """Delete the project's records having ``tag``; return how many."""
    return storage.delete_records_by_tag(project_id, tag)
