"""Record history and the trash in the SQLAlchemy backend (tables ``history``, ``trash``).

Plain functions over the transaction's connection; the backend's hookimpls call them.
"""

from __future__ import annotations

import orjson
from sqlalchemy import and_, bindparam, delete, insert, or_, select
from sqlalchemy.engine import Connection

from pyramid_sumatra.storage.types import HistoryEntry, TrashItem

from .schema import history, trash

_INSERT = insert(history)
# The entry just past the ``keep`` newest: usually none, so pruning is one index probe.
_OLDEST_KEPT = (select(history.c.at, history.c.entry_id)
                .where(history.c.project_id == bindparam("b_project"),
                       history.c.label == bindparam("b_label"))
                .order_by(history.c.at.desc(), history.c.entry_id.desc())
                .limit(1).offset(bindparam("b_keep")))


def add_history(db: Connection, entry: HistoryEntry, keep: int) -> bool:
    db.execute(_INSERT, {
        "project_id": entry.project_id, "label": entry.label, "at": entry.at,
        "entry_id": entry.id, "action": entry.action, "user": entry.user,
        "token": entry.token, "changes": orjson.dumps(entry.changes).decode(),
        "revision_before": entry.revision_before, "revision_after": entry.revision_after})
    if keep > 0:
        row = db.execute(_OLDEST_KEPT, {"b_project": entry.project_id,
                                        "b_label": entry.label, "b_keep": keep}).first()
        if row is not None:
            db.execute(delete(history).where(
                history.c.project_id == entry.project_id, history.c.label == entry.label,
                or_(history.c.at < row.at,
                    and_(history.c.at == row.at, history.c.entry_id <= row.entry_id))))
    return True


def _entry(row) -> HistoryEntry:
    return HistoryEntry(project_id=row.project_id, label=row.label, at=row.at,
                        id=row.entry_id, action=row.action, user=row.user, token=row.token,
                        changes=orjson.loads(row.changes),
                        revision_before=row.revision_before,
                        revision_after=row.revision_after)


def list_history(db: Connection, project_id: str, label: str, limit: int,
                 before: str | None) -> list[HistoryEntry]:
    stmt = (select(history).where(history.c.project_id == project_id,
                                  history.c.label == label)
            .order_by(history.c.at.desc(), history.c.entry_id.desc()).limit(limit))
    if before:
        at, _, entry_id = before.partition("|")
        stmt = stmt.where(or_(history.c.at < at,
                              and_(history.c.at == at, history.c.entry_id < entry_id)))
    return [_entry(row) for row in db.execute(stmt)]


def delete_history(db: Connection, project_id: str, label: str | None) -> int:
    stmt = delete(history).where(history.c.project_id == project_id)
    if label is not None:
        stmt = stmt.where(history.c.label == label)
    return db.execute(stmt).rowcount


def _key(project_id: str, label: str, deleted_at: str):
    return and_(trash.c.project_id == project_id, trash.c.label == label,
                trash.c.deleted_at == deleted_at)


def put_trash(db: Connection, item: TrashItem) -> bool:
    db.execute(delete(trash).where(_key(item.project_id, item.label, item.deleted_at)))
    db.execute(insert(trash).values(
        project_id=item.project_id, label=item.label, deleted_at=item.deleted_at,
        deleted_by=item.deleted_by, revision=item.revision, timestamp=item.timestamp,
        body=item.body or ""))
    return True


_LISTED = [c for c in trash.c if c.name != "body"]


def list_trash(db: Connection, project_id: str | None, older_than: str | None,
               limit: int | None) -> list[TrashItem]:
    stmt = select(*_LISTED).order_by(trash.c.deleted_at.desc(), trash.c.project_id,
                                     trash.c.label)
    if project_id is not None:
        stmt = stmt.where(trash.c.project_id == project_id)
    if older_than is not None:
        stmt = stmt.where(trash.c.deleted_at < older_than)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [TrashItem(**row._mapping) for row in db.execute(stmt)]


def get_trash(db: Connection, project_id: str, label: str, deleted_at: str) -> TrashItem | None:
    row = db.execute(select(trash).where(_key(project_id, label, deleted_at))).first()
    return None if row is None else TrashItem(**row._mapping)


def delete_trash(db: Connection, project_id: str, label: str, deleted_at: str) -> bool:
    return bool(db.execute(delete(trash).where(_key(project_id, label, deleted_at))).rowcount)
