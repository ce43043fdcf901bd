"""Record and project history: who changed what, when, and earlier revisions rebuilt.

Every change goes through :func:`record` (called by the records, grants and projects
services, once per change). An entry keeps only the changed top-level fields, old and
new, so a PUT costs one small write more; an earlier revision is rebuilt by undoing
entries from the current document (or the trashed one) back to it.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any

from ..records import utcnow
from ..storage import Storage
from ..storage.types import HistoryEntry, StoredRecord
from .errors import InvalidInput, NotFound

#: Entries a history page may ask for, and its default.
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
_CURSOR = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}\|[0-9a-f]{16}")


@dataclass(frozen=True)
class Actor:
    """Who made a change: a user, through an API token (its name) or not; the CLI is ``""``."""

    user: str = ""
    token: str = ""


SYSTEM = Actor()


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {"old": v, "new": v}}`` for each top-level field that differs (a side is
    missing when the field was absent)."""
    changes: dict[str, dict[str, Any]] = {}
    for key in dict.fromkeys([*old, *new]):
        if old.get(key, _ABSENT) != new.get(key, _ABSENT):
            change = {}
            if key in old:
                change["old"] = old[key]
            if key in new:
                change["new"] = new[key]
            changes[key] = change
    return changes


_ABSENT: Any = object()


def record(storage: Storage, actor: Actor | None, project_id: str, label: str, action: str, *,
           changes: dict | None = None, before: str = "", after: str = "") -> None:
    """Append one entry (nothing when the backend keeps no history)."""
    if not storage.history_available:
        return
    actor = actor or SYSTEM
    storage.add_history(HistoryEntry(
        project_id=project_id, label=label, at=utcnow(), id=secrets.token_hex(8),
        action=action, user=actor.user, token=actor.token, changes=changes or {},
        revision_before=before, revision_after=after),
        prune=action != "create")  # a new record's first entry: nothing to trim yet


def record_change(storage: Storage, actor: Actor | None, old: StoredRecord | None,
                  new: StoredRecord, action: str) -> None:
    """The entry of a save: ``create`` (no fields: the body is the record itself) or the
    fields changed between ``old`` and ``new``."""
    if not storage.history_available:
        return
    if old is None:
        record(storage, actor, new.project_id, new.label, "create", after=new.revision)
        return
    record(storage, actor, new.project_id, new.label, action,
           changes=diff(old.document, new.document), before=old.revision, after=new.revision)


def parse_page(limit: str | None, cursor: str | None) -> tuple[int, str | None]:
    """``?limit=`` (1..MAX_LIMIT) and ``?cursor=`` of a history page, or InvalidInput."""
    from ..records import whole_number

    number = DEFAULT_LIMIT
    if limit is not None:
        number = whole_number(limit, MAX_LIMIT) or 0
        if not number:
            raise InvalidInput("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    if cursor is not None and not _CURSOR.fullmatch(cursor):
        raise InvalidInput("cursor", "malformed cursor: use the 'next' link of a page")
    return number, cursor


def page(storage: Storage, project_id: str, label: str, limit: int,
         cursor: str | None) -> tuple[list[HistoryEntry], str | None]:
    """A page of entries, newest first, and the cursor of the next page (None: the last)."""
    entries = storage.list_history(project_id, label, limit + 1, cursor)
    more = len(entries) > limit
    entries = entries[:limit]
    return entries, (entries[-1].key if more and entries else None)


def as_json(entry: HistoryEntry) -> dict[str, Any]:
    doc = asdict(entry)
    doc.pop("project_id")
    if not doc["label"]:
        doc.pop("label")
    return doc


def revision(storage: Storage, project_id: str, label: str, wanted: str,
             current: dict | None, current_revision: str, trashed: bool = False) -> dict:
    """The document of ``label`` at revision ``wanted``, from ``current`` (the live or,
    with ``trashed``, the trashed document) by undoing newer entries; NotFound if history
    does not reach it. From a trashed document, entries newer than its deletion (a new
    record under the same label) are skipped."""
    if current is None or not wanted:
        raise NotFound(f"no revision {wanted[:64]!r} of {label!r}: the record is gone")
    if current_revision == wanted:
        return current
    doc = dict(current)
    cursor = None
    skipping = trashed
    while True:
        entries = storage.list_history(project_id, label, MAX_LIMIT, cursor)
        for entry in entries:
            if skipping:
                skipping = not (entry.action == "delete"
                                and entry.revision_before == current_revision)
                continue
            if entry.revision_after == wanted:  # doc is at revision_after before the undo
                return doc
            for key, change in entry.changes.items():
                if "old" in change:
                    doc[key] = change["old"]
                else:
                    doc.pop(key, None)
            if entry.revision_before == wanted:
                return doc
        if len(entries) < MAX_LIMIT:
            raise NotFound(f"no revision {wanted[:64]!r} of {label!r} in its history")
        cursor = entries[-1].key


def readable(value: Any, limit: int = 300) -> str:
    """A value as short text for the page's diff."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"
