"""The SQLAlchemy storage backend: SQLite by default, PostgreSQL in production.

Every hook runs in the current ``transaction`` through a zope.sqlalchemy-registered
scoped session; nothing is committed by the backend itself.
"""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path
from typing import Any

import zope.sqlalchemy

from pyramid_sumatra.hookspecs import hookimpl
from pyramid_sumatra.intent import write_intent
from pyramid_sumatra.records import utcnow
from pyramid_sumatra.types import (
    ANONYMOUS,
    ProjectInfo,
    RecordPage,
    RecordQuery,
    StorageConflict,
    StorageError,
    StorageFull,
    StorageUnavailable,
    StoredRecord,
    UserInfo,
)
from sqlalchemy import and_, delete, event, func, insert, or_, select, update
from sqlalchemy.engine import Engine, engine_from_config
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import scoped_session, sessionmaker

from .migrate import upgrade
from .schema import grants, projects, record_tags, records, users

SORTABLE = ("timestamp", "label", "user", "main_file", "version", "executable", "reason",
            "outcome", "duration")
_SUMMARY_COLUMNS = [records.c[name] for name in (
    "id", "project_id", "label", "revision", "timestamp", "user", "main_file", "version",
    "executable", "reason", "outcome", "duration")]


def create_backend(settings: dict[str, Any]) -> SqlAlchemyBackend:
    """Entry point ``sqlalchemy`` in group ``pyramid_sumatra.backends``."""
    return SqlAlchemyBackend(settings)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        # Writers take the lock up front: no read-then-upgrade conflicts.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write_intent.get() else "BEGIN")


def storage_error(exc: DBAPIError) -> StorageError | None:
    """The interface's exception for a driver error (retry, 503, 507); None: a bug (500)."""
    if isinstance(exc, IntegrityError):
        return StorageConflict(str(exc.orig))
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        if "locked" in text or "deadlock" in text or "serializ" in text:
            return StorageConflict(str(exc.orig))
        if "no space left" in text or "disk is full" in text or "disk full" in text:
            return StorageFull(f"database error: {exc.orig}")
        return StorageUnavailable(f"database error: {exc.orig}")
    if exc.connection_invalidated:
        return StorageUnavailable(f"database connection lost: {exc.orig}")
    return None


def translate_errors(method):
    """Map driver errors to the interface's exceptions (retry, or 503)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except DBAPIError as exc:
            error = storage_error(exc)
            if error is None:
                raise
            raise error from exc

    return wrapper


def _translate_outside_hooks(context) -> None:
    """COMMIT runs in the transaction manager, after every hook returned: a database
    that went away then must still be a 503 (or a retry), not a 500. Statements inside
    hooks are left to translate_errors."""
    exc = context.sqlalchemy_exception
    if context.statement is None and isinstance(exc, DBAPIError):
        error = storage_error(exc)
        if error is not None:
            raise error


def encode_cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"malformed cursor {cursor!r}") from None
    if not isinstance(values, list) or len(values) != 2:
        raise ValueError(f"malformed cursor {cursor!r}")
    return values


class SqlAlchemyBackend:
    name = "sqlalchemy"

    def __init__(self, settings: dict[str, Any]):
        url = settings.get("sqlalchemy.url") or "sqlite:///sumatra.sqlite"
        options = {k: v for k, v in settings.items() if k.startswith("sqlalchemy.")}
        options["sqlalchemy.url"] = url
        if url.startswith("postgresql") and url.startswith("postgresql://"):
            options["sqlalchemy.url"] = "postgresql+psycopg://" + url[len("postgresql://"):]
        options.setdefault("sqlalchemy.pool_pre_ping", "true")
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        self.engine = engine_from_config(options, "sqlalchemy.")
        if self.engine.dialect.name == "sqlite":
            _configure_sqlite(self.engine)
        event.listen(self.engine, "handle_error", _translate_outside_hooks)
        self.Session = scoped_session(sessionmaker(bind=self.engine))
        # Core statements do not mark the session dirty: always commit, never guess.
        zope.sqlalchemy.register(self.Session, initial_state="changed")

    @property
    def db(self):
        return self.Session()

    # -- lifecycle ------------------------------------------------------------

    @hookimpl
    def sumatra_initialize_storage(self) -> bool:
        upgrade(self.engine)  # Alembic: create, or migrate to the newest schema
        return True

    @hookimpl
    def sumatra_storage_status(self) -> dict[str, Any]:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return {"ok": True, "backend": self.name, "dialect": self.engine.dialect.name}
        except Exception as exc:  # noqa: BLE001 - status must never raise
            return {"ok": False, "backend": self.name, "detail": str(exc)}

    @hookimpl
    def sumatra_dispose_storage(self) -> bool:
        self.Session.remove()
        self.engine.dispose()
        return True

    @hookimpl
    @translate_errors
    def sumatra_check_storage(self, repair: bool) -> dict[str, Any]:
        """Record counts against the records, tags of missing records, grants of unknown users."""
        db, problems, unrepaired = self.db, [], []

        def found(text: str, fix) -> None:
            problems.append(text)
            if repair:
                db.execute(fix)
            else:
                unrepaired.append(text)

        real = select(func.count()).where(records.c.project_id == projects.c.id) \
            .scalar_subquery()
        for pid, stored, actual in db.execute(select(projects.c.id, projects.c.record_count,
                                                     real).where(projects.c.record_count != real)):
            found(f"project {pid!r}: record_count is {stored}, there are {actual} records",
                  update(projects).where(projects.c.id == pid).values(record_count=actual))
        orphan_tags = select(record_tags.c.record_id).where(~record_tags.c.record_id.in_(
            select(records.c.id).where(records.c.project_id == record_tags.c.project_id)))
        count = len(db.execute(orphan_tags).all())
        if count:
            found(f"{count} tags belong to no record of their project",
                  delete(record_tags).where(record_tags.c.record_id.in_(orphan_tags)))
        known = select(users.c.username)
        for pid, principal in db.execute(select(grants.c.project_id, grants.c.principal).where(
                grants.c.principal != ANONYMOUS, ~grants.c.principal.in_(known))):
            found(f"project {pid!r}: grant to unknown user {principal!r}",
                  delete(grants).where(grants.c.project_id == pid,
                                       grants.c.principal == principal))
        return {"backend": self.name, "problems": problems, "unrepaired": unrepaired}

    # -- records --------------------------------------------------------------

    def _record_id(self, project_id: str, label: str) -> int | None:
        return self.db.execute(select(records.c.id).where(
            records.c.project_id == project_id, records.c.label == label)).scalar()

    @hookimpl
    @translate_errors
    def sumatra_get_record(self, project_id: str, label: str) -> StoredRecord | None:
        row = self.db.execute(select(*_SUMMARY_COLUMNS, records.c.body).where(
            records.c.project_id == project_id, records.c.label == label)).first()
        if row is None:
            return None
        return self._to_record(row, self._tags_of([row.id]).get(row.id, []), with_body=True)

    @hookimpl
    @translate_errors
    def sumatra_put_record(self, record: StoredRecord, create: bool) -> bool:
        values = {
            "body": record.body, "revision": record.revision, "timestamp": record.timestamp,
            "user": record.user, "main_file": record.main_file, "version": record.version,
            "executable": record.executable, "reason": record.reason,
            "outcome": record.outcome, "duration": record.duration,
        }
        db = self.db
        record_id = None if create else self._record_id(record.project_id, record.label)
        if record_id is None:
            with db.begin_nested():  # a duplicate label fails alone, not the session
                record_id = db.execute(insert(records).values(
                    project_id=record.project_id, label=record.label, **values)
                ).inserted_primary_key[0]
            counter = {"record_count": projects.c.record_count + 1}
        else:
            db.execute(update(records).where(records.c.id == record_id).values(**values))
            db.execute(delete(record_tags).where(record_tags.c.record_id == record_id))
            counter = {}
        if record.tags:
            db.execute(insert(record_tags), [
                {"record_id": record_id, "tag": tag, "project_id": record.project_id}
                for tag in record.tags])
        db.execute(update(projects).where(projects.c.id == record.project_id).values(
            last_updated=utcnow(), **counter))
        return True

    @hookimpl
    @translate_errors
    def sumatra_delete_record(self, project_id: str, label: str) -> bool:
        record_id = self._record_id(project_id, label)
        if record_id is None:
            return False
        self._delete_ids(project_id, [record_id])
        return True

    def _delete_ids(self, project_id: str, ids: list[int]) -> None:
        db = self.db
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            db.execute(delete(record_tags).where(record_tags.c.record_id.in_(chunk)))
            db.execute(delete(records).where(records.c.id.in_(chunk)))
        db.execute(update(projects).where(projects.c.id == project_id).values(
            last_updated=utcnow(), record_count=projects.c.record_count - len(ids)))

    @hookimpl
    @translate_errors
    def sumatra_query_records(self, project_id: str, query: RecordQuery) -> RecordPage:
        descending = query.order.startswith("-")
        field = query.order.lstrip("-")
        if field not in SORTABLE:
            raise ValueError(f"cannot order by {field!r}; one of {', '.join(SORTABLE)}")
        key = func.coalesce(records.c.duration, -1.0) if field == "duration" else records.c[field]
        conditions = [records.c.project_id == project_id]
        if query.tags:
            conditions.append(records.c.id.in_(select(record_tags.c.record_id).where(
                record_tags.c.project_id == project_id, record_tags.c.tag.in_(query.tags))))
        if query.text:
            pattern = f"%{query.text.lower()}%"
            conditions.append(or_(*(func.lower(records.c[c]).like(pattern)
                                    for c in ("label", "reason", "outcome"))))
        for name in ("user", "main_file"):
            if getattr(query, name):
                conditions.append(records.c[name] == getattr(query, name))
        if query.since:
            conditions.append(records.c.timestamp >= query.since)
        if query.until:
            conditions.append(records.c.timestamp <= query.until)
        total = None
        if query.limit is not None or query.cursor:
            total = self.db.execute(select(func.count()).select_from(records).where(
                *conditions)).scalar_one()
        if query.cursor:
            value, label = decode_cursor(query.cursor)
            if descending:
                conditions.append(or_(key < value, and_(key == value, records.c.label < label)))
            else:
                conditions.append(or_(key > value, and_(key == value, records.c.label > label)))
        columns = list(_SUMMARY_COLUMNS)
        if query.with_body:
            columns.append(records.c.body)
        order = [key.desc(), records.c.label.desc()] if descending else [key.asc(),
                                                                           records.c.label.asc()]
        stmt = select(*columns).where(*conditions).order_by(*order)
        if query.limit is not None:
            stmt = stmt.limit(query.limit + 1)
        rows = self.db.execute(stmt).all()
        next_cursor = None
        if query.limit is not None and len(rows) > query.limit:
            rows = rows[:query.limit]
            last = rows[-1]
            sort_value = -1.0 if field == "duration" and last.duration is None \
                else getattr(last, field)
            next_cursor = encode_cursor([sort_value, last.label])
        if total is None:
            total = len(rows)
        tags = self._tags_for_rows(project_id, rows)
        return RecordPage(
            records=[self._to_record(r, tags.get(r.id, []), query.with_body) for r in rows],
            next_cursor=next_cursor, total=total)

    def _tags_for_rows(self, project_id: str, rows) -> dict[int, list[str]]:
        if not rows:
            return {}
        if len(rows) <= 500:
            return self._tags_of([r.id for r in rows])
        result: dict[int, list[str]] = {}
        for record_id, tag in self.db.execute(select(record_tags.c.record_id, record_tags.c.tag)
                                              .where(record_tags.c.project_id == project_id)):
            result.setdefault(record_id, []).append(tag)
        return result

    def _tags_of(self, ids: list[int]) -> dict[int, list[str]]:
        result: dict[int, list[str]] = {}
        for record_id, tag in self.db.execute(select(record_tags.c.record_id, record_tags.c.tag)
                                              .where(record_tags.c.record_id.in_(ids))):
            result.setdefault(record_id, []).append(tag)
        return result

    @staticmethod
    def _to_record(row, tags: list[str], with_body: bool) -> StoredRecord:
        return StoredRecord(
            project_id=row.project_id, label=row.label,
            body=row.body if with_body else None, revision=row.revision,
            timestamp=row.timestamp, tags=sorted(tags), user=row.user,
            main_file=row.main_file, version=row.version, executable=row.executable,
            reason=row.reason, outcome=row.outcome, duration=row.duration)

    @hookimpl
    @translate_errors
    def sumatra_most_recent_record(self, project_id: str) -> StoredRecord | None:
        label = self.db.execute(
            select(records.c.label).where(records.c.project_id == project_id)
            .order_by(records.c.timestamp.desc(), records.c.label.desc()).limit(1)).scalar()
        return None if label is None else self.sumatra_get_record(project_id, label)

    @hookimpl
    @translate_errors
    def sumatra_delete_records_by_tag(self, project_id: str, tag: str) -> int:
        ids = list(self.db.execute(select(record_tags.c.record_id).where(
            record_tags.c.project_id == project_id, record_tags.c.tag == tag)).scalars())
        if ids:
            self._delete_ids(project_id, ids)
        return len(ids)

    # -- projects -------------------------------------------------------------

    @staticmethod
    def _to_project(row) -> ProjectInfo:
        return ProjectInfo(id=row.id, name=row.name, description=row.description,
                           created=row.created, last_updated=row.last_updated,
                           record_count=row.record_count)

    @hookimpl
    @translate_errors
    def sumatra_get_project(self, project_id: str) -> ProjectInfo | None:
        row = self.db.execute(select(projects).where(projects.c.id == project_id)).first()
        return None if row is None else self._to_project(row)

    @hookimpl
    @translate_errors
    def sumatra_put_project(self, project: ProjectInfo) -> bool:
        db = self.db
        now = utcnow()
        exists = db.execute(select(projects.c.id).where(projects.c.id == project.id)).first()
        if exists:
            db.execute(update(projects).where(projects.c.id == project.id).values(
                name=project.name, description=project.description, last_updated=now))
            return False
        with db.begin_nested():
            db.execute(insert(projects).values(
                id=project.id, name=project.name, description=project.description,
                created=now, last_updated=now, record_count=0))
        return True

    @hookimpl
    @translate_errors
    def sumatra_delete_project(self, project_id: str) -> bool:
        db = self.db
        if not db.execute(select(projects.c.id).where(projects.c.id == project_id)).first():
            return False
        ids = select(records.c.id).where(records.c.project_id == project_id)
        db.execute(delete(record_tags).where(record_tags.c.record_id.in_(ids)))
        db.execute(delete(records).where(records.c.project_id == project_id))
        db.execute(delete(grants).where(grants.c.project_id == project_id))
        db.execute(delete(projects).where(projects.c.id == project_id))
        return True

    @hookimpl
    @translate_errors
    def sumatra_list_projects(self, principals: list[str] | None) -> list[ProjectInfo]:
        stmt = select(projects).order_by(projects.c.last_updated.desc(), projects.c.id)
        if principals is not None:
            stmt = stmt.where(projects.c.id.in_(select(grants.c.project_id).where(
                grants.c.principal.in_(principals))))
        return [self._to_project(row) for row in self.db.execute(stmt)]

    # -- grants ---------------------------------------------------------------

    @hookimpl
    @translate_errors
    def sumatra_get_grants(self, project_id: str) -> dict[str, str]:
        return dict(self.db.execute(select(grants.c.principal, grants.c.role).where(
            grants.c.project_id == project_id)).all())

    @hookimpl
    @translate_errors
    def sumatra_set_grant(self, project_id: str, principal: str, role: str) -> bool:
        db = self.db
        updated = db.execute(update(grants).where(
            grants.c.project_id == project_id, grants.c.principal == principal
        ).values(role=role)).rowcount
        if not updated:
            with db.begin_nested():
                db.execute(insert(grants).values(project_id=project_id, principal=principal,
                                                 role=role))
        return True

    @hookimpl
    @translate_errors
    def sumatra_revoke_grant(self, project_id: str, principal: str) -> bool:
        return bool(self.db.execute(delete(grants).where(
            grants.c.project_id == project_id, grants.c.principal == principal)).rowcount)

    # -- users ----------------------------------------------------------------

    @staticmethod
    def _to_user(row) -> UserInfo:
        return UserInfo(username=row.username, password_hash=row.password_hash,
                        is_admin=bool(row.is_admin), created=row.created)

    @hookimpl
    @translate_errors
    def sumatra_get_user(self, username: str) -> UserInfo | None:
        row = self.db.execute(select(users).where(users.c.username == username)).first()
        return None if row is None else self._to_user(row)

    @hookimpl
    @translate_errors
    def sumatra_put_user(self, user: UserInfo) -> bool:
        db = self.db
        updated = db.execute(update(users).where(users.c.username == user.username).values(
            password_hash=user.password_hash, is_admin=user.is_admin)).rowcount
        if updated:
            return False
        with db.begin_nested():
            db.execute(insert(users).values(username=user.username,
                                            password_hash=user.password_hash,
                                            is_admin=user.is_admin,
                                            created=user.created or utcnow()))
        return True

    @hookimpl
    @translate_errors
    def sumatra_delete_user(self, username: str) -> bool:
        db = self.db
        db.execute(delete(grants).where(grants.c.principal == username))
        return bool(db.execute(delete(users).where(users.c.username == username)).rowcount)

    @hookimpl
    @translate_errors
    def sumatra_list_users(self) -> list[UserInfo]:
        return [self._to_user(r) for r in self.db.execute(select(users).order_by(users.c.username))]
