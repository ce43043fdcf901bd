"""The SQLAlchemy storage backend: SQLite by default, PostgreSQL in production.

Every hook runs in the current ``transaction`` through a zope.sqlalchemy-registered
scoped session; nothing is committed by the backend itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import threading
import weakref
from pathlib import Path
from typing import Any

import orjson
import transaction
import zope.sqlalchemy

from pyramid_sumatra.cursors import decode_cursor, encode_cursor
from pyramid_sumatra.hookspecs import hookimpl
from pyramid_sumatra.intent import write_intent
from pyramid_sumatra.records import utcnow
from pyramid_sumatra.types import (
    ANONYMOUS,
    SORTABLE,
    ProjectInfo,
    RecordPage,
    RecordQuery,
    StorageConflict,
    StorageError,
    StorageFull,
    StorageUnavailable,
    StoredRecord,
    TokenInfo,
    UserInfo,
)
from sqlalchemy import and_, bindparam, delete, event, func, insert, or_, select, update
from sqlalchemy.engine import Engine, engine_from_config
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import scoped_session, sessionmaker

from . import search as _search
from . import tokens as _tokens
from .schema import grants, projects, record_tags, records, users

_SUMMARY_COLUMNS = [records.c[name] for name in (
    "id", "project_id", "label", "revision", "timestamp", "user", "main_file", "version",
    "executable", "reason", "outcome", "duration")]

# Statements of the per-request paths, built once: building a select() and its cache
# key cost ~230 us a call, five times what executing it costs (see CHANGES.rst).

def _get_record_statement(dialect: str):
    """One record with its tags as a JSON array: one query instead of two."""
    aggregate = func.json_agg if dialect == "postgresql" else func.json_group_array
    tags = select(aggregate(record_tags.c.tag)).where(
        record_tags.c.record_id == records.c.id).scalar_subquery()
    return select(*_SUMMARY_COLUMNS, records.c.body, tags.label("tags")).where(
        records.c.project_id == bindparam("b_project"), records.c.label == bindparam("b_label"))


_RECORD_ID = select(records.c.id).where(
    records.c.project_id == bindparam("b_project"), records.c.label == bindparam("b_label"))
_INSERT_RECORD = insert(records)
_UPDATE_RECORD = update(records).where(records.c.id == bindparam("b_id"))
_DELETE_TAGS = delete(record_tags).where(record_tags.c.record_id == bindparam("b_id"))
_INSERT_TAGS = insert(record_tags)
_TOUCH_PROJECT = update(projects).where(projects.c.id == bindparam("b_project")).values(
    last_updated=bindparam("b_now"))
_COUNT_NEW_RECORD = _TOUCH_PROJECT.values(record_count=projects.c.record_count + 1)
# The project with its grants (one row per grant; one row of NULLs when there are none):
# the permission check needs both, on every request.
_GET_PROJECT = select(projects, grants.c.principal, grants.c.role).select_from(
    projects.outerjoin(grants, grants.c.project_id == projects.c.id)).where(
    projects.c.id == bindparam("b_project"))
_ALL_PROJECTS = select(projects).order_by(projects.c.last_updated.desc(), projects.c.id)
_PROJECTS_GRANTED = _ALL_PROJECTS.where(projects.c.id.in_(select(grants.c.project_id).where(
    grants.c.principal.in_(bindparam("b_principals", expanding=True)))))
_GET_GRANTS = select(grants.c.principal, grants.c.role).where(
    grants.c.project_id == bindparam("b_project"))
_GET_USER = select(users).where(users.c.username == bindparam("b_username"))


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

    # SQLite admits one writer at a time. Writers queue on a lock instead of in SQLite's
    # busy handler, which sleeps in growing steps (up to 100 ms) and leaves the database
    # idle between writers: with 8 threads that made PUT 5x slower, and with two
    # processes it gave PUTs a p99 of 1.3 s (see CHANGES.rst). Threads of this process
    # queue on a Python lock, processes on an flock of a file beside the database (the
    # kernel wakes the next writer at once; a dead process's lock goes with it).
    writer = _WriterLock(engine.url.database)
    held = threading.local()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        # Writers take the lock up front: no read-then-upgrade conflicts.
        if write_intent.get():
            if not getattr(held, "lock", False):
                # A leaked lock (it should not happen) degrades to busy_timeout, no hang.
                held.lock = writer.acquire(timeout=30)
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    @event.listens_for(engine.pool, "checkin")
    def on_checkin(_dbapi_connection, _record):
        # After COMMIT or ROLLBACK, when the connection goes back to the pool.
        if getattr(held, "lock", False):
            held.lock = False
            writer.release()


class _WriterLock:
    """One SQLite writer at a time: a thread lock, then (for a file) an flock.

    The flock file is opened per process (after a fork too), since an flock belongs
    to an open file and threads sharing one would all hold it.
    """

    def __init__(self, database: str | None):
        self.threads = threading.Lock()
        self.path = None if database in (None, "", ":memory:") else f"{database}-writer.lock"
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def acquire(self, timeout: float) -> bool:
        if not self.threads.acquire(timeout=timeout):
            return False
        if self.path is not None:
            try:
                fcntl.flock(self._file(), fcntl.LOCK_EX)  # releases the GIL while it waits
            except OSError:
                pass  # no lock file (read-only directory): busy_timeout still serialises
        return True

    def release(self) -> None:
        if self.path is not None and self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        self.threads.release()


def _dispose_in_child(engine: Engine | None) -> None:
    if engine is not None:
        engine.dispose(close=False)  # forget the parent's connections, do not close them


def is_unique_violation(exc: IntegrityError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)  # psycopg
    if sqlstate is not None:
        return sqlstate == "23505"
    return "UNIQUE constraint failed" in str(exc.orig)  # sqlite3


def storage_error(exc: DBAPIError) -> StorageError | None:
    """The interface's exception for a driver error (retry, 503, 507); None: a bug (500)."""
    if isinstance(exc, IntegrityError):
        # Only a duplicate key is a concurrent writer; NOT NULL or a foreign key is a bug.
        if is_unique_violation(exc):
            return StorageConflict(str(exc.orig))
        return None
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


class SqlAlchemyBackend:
    name = "sqlalchemy"

    def __init__(self, settings: dict[str, Any]):
        url = settings.get("sqlalchemy.url") or "sqlite:///sumatra.sqlite"
        options = {k: v for k, v in settings.items() if k.startswith("sqlalchemy.")}
        options["sqlalchemy.url"] = url
        if url.startswith("postgresql") and url.startswith("postgresql://"):
            options["sqlalchemy.url"] = "postgresql+psycopg://" + url[len("postgresql://"):]
        # A SQLite file cannot drop a connection: no ping (a query per request) there.
        options.setdefault("sqlalchemy.pool_pre_ping",
                           "false" if url.startswith("sqlite") else "true")
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        self.engine = engine_from_config(options, "sqlalchemy.")
        if self.engine.dialect.name == "sqlite":
            _configure_sqlite(self.engine)
        event.listen(self.engine, "handle_error", _translate_outside_hooks)
        # pserve builds the app before gunicorn forks its workers: a worker must not use
        # connections pooled by its parent (SQLAlchemy's advice for os.fork()).
        engine = weakref.ref(self.engine)
        os.register_at_fork(after_in_child=lambda: _dispose_in_child(engine()))
        self._get_record = _get_record_statement(self.engine.dialect.name)
        self.Session = scoped_session(sessionmaker(bind=self.engine))
        # Core statements do not mark the session dirty: always commit, never guess.
        zope.sqlalchemy.register(self.Session, initial_state="changed")

    @property
    def db(self):
        return self.Session()

    @property
    def conn(self):
        """The session's connection: Core execution skips the ORM's per-statement work."""
        return self.Session().connection()

    # -- lifecycle ------------------------------------------------------------

    @hookimpl
    def sumatra_initialize_storage(self) -> bool:
        # Imported here: Alembic (and what it pulls in) is ~20 MB per server process
        # that only an initdb needs.
        from .migrate import upgrade

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
        return self.conn.execute(_RECORD_ID, {"b_project": project_id, "b_label": label}).scalar()

    @hookimpl
    @translate_errors
    def sumatra_get_record(self, project_id: str, label: str) -> StoredRecord | None:
        row = self.conn.execute(self._get_record,
                                {"b_project": project_id, "b_label": label}).first()
        if row is None:
            return None
        tags = row.tags  # psycopg decodes json itself; SQLite gives the text
        if isinstance(tags, str):
            tags = orjson.loads(tags)
        return self._to_record(row, tags or [], with_body=True)

    @hookimpl
    @translate_errors
    def sumatra_put_record(self, record: StoredRecord, create: bool) -> bool:
        values = {
            "body": record.body, "revision": record.revision, "timestamp": record.timestamp,
            "user": record.user, "main_file": record.main_file, "version": record.version,
            "executable": record.executable, "reason": record.reason,
            "outcome": record.outcome, "duration": record.duration,
        }
        db = self.conn
        record_id = None if create else self._record_id(record.project_id, record.label)
        if record_id is None:
            # No savepoint: a duplicate label raises StorageConflict, which ends the
            # transaction (the request is replayed), so nothing else runs in it.
            record_id = db.execute(_INSERT_RECORD, {
                "project_id": record.project_id, "label": record.label, **values}
            ).inserted_primary_key[0]
            touch = _COUNT_NEW_RECORD
        else:
            db.execute(_UPDATE_RECORD, {"b_id": record_id, **values})
            db.execute(_DELETE_TAGS, {"b_id": record_id})
            touch = _TOUCH_PROJECT
        if record.tags:
            db.execute(_INSERT_TAGS, [
                {"record_id": record_id, "tag": tag, "project_id": record.project_id}
                for tag in record.tags])
        db.execute(touch, {"b_project": record.project_id, "b_now": utcnow()})
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
        return self._query_records(project_id, query)

    def _query_records(self, project_id: str, query: RecordQuery, where=None, body=None,
                       count: bool = True) -> RecordPage:
        """The records ``query`` selects. For search.py: ``where``, one more condition;
        ``body``, an expression read instead of the body; ``count=False``, no total."""
        descending = query.order.startswith("-")
        field = query.order.lstrip("-")
        if field not in SORTABLE:
            raise ValueError(f"cannot order by {field!r}; one of {', '.join(SORTABLE)}")
        key = func.coalesce(records.c.duration, -1.0) if field == "duration" else records.c[field]
        conditions = [records.c.project_id == project_id]
        tagged = [record_tags.c.project_id == project_id, record_tags.c.tag.in_(query.tags)] \
            if query.tags else []
        tag_filter = records.c.id.in_(select(record_tags.c.record_id).where(*tagged))
        if tagged:
            conditions.append(tag_filter)
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
        if where is not None:
            conditions.append(where)
        total = None
        if count and query.count_total and (query.limit is not None or query.cursor):
            total = self.db.execute(select(func.count()).select_from(records).where(
                *conditions)).scalar_one()
        if query.cursor:
            value, label = decode_cursor(query.cursor, numeric=field == "duration")
            if descending:
                conditions.append(or_(key < value, and_(key == value, records.c.label < label)))
            else:
                conditions.append(or_(key > value, and_(key == value, records.c.label > label)))
        labels_only = query.labels_only and not query.with_body
        if labels_only:  # the covering index (project_id, timestamp, label) answers alone
            columns = [records.c.label] + ([records.c[field]] if field != "label" else [])
        else:
            columns = list(_SUMMARY_COLUMNS)
        if query.with_body:
            columns.append(records.c.body if body is None else body.label("body"))
        order = [key.desc(), records.c.label.desc()] if descending else [key.asc(),
                                                                           records.c.label.asc()]
        stmt = select(*columns).where(*conditions).order_by(*order)
        if labels_only and query.limit is None:  # the whole project: every label, no cursor
            labels_of = select(records.c.label)
            if tagged:
                # From the tag index to the records (GROUP BY: a record having two of the
                # tags once): SQLite otherwise scans every record of the project and
                # tests the IN; 10,000 records: 6.8 ms -> 0.9 ms.
                labels_of = labels_of.select_from(records.join(
                    record_tags, record_tags.c.record_id == records.c.id)).where(
                    *tagged).group_by(records.c.id)
                conditions = [c for c in conditions if c is not tag_filter]
            labels = self._first_column(labels_of.where(*conditions).order_by(*order))
            return RecordPage(records=[], labels=labels, total=len(labels))
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
        if labels_only:
            return RecordPage(records=[], labels=[r.label for r in rows],
                              next_cursor=next_cursor, total=total)
        tags = self._tags_for_rows(project_id, rows)
        return RecordPage(
            records=[self._to_record(r, tags.get(r.id, []), query.with_body) for r in rows],
            next_cursor=next_cursor, total=total)

    def _first_column(self, stmt) -> list:
        """The first column of every row, read straight from the DBAPI cursor.

        For 100,000 labels, SQLAlchemy building a Row for each doubled the time of the
        project document. The statement is still compiled by SQLAlchemy for the dialect,
        and runs in the session's transaction.
        """
        conn = self.conn
        compiled = stmt.compile(dialect=conn.dialect,
                                compile_kwargs={"render_postcompile": True})
        params = compiled.construct_params()
        if compiled.positional:
            params = tuple(params[name] for name in compiled.positiontup)
        cursor = conn.connection.cursor()
        try:
            cursor.execute(compiled.string, params)
            return [row[0] for row in cursor.fetchall()]
        finally:
            cursor.close()

    def _tags_for_rows(self, project_id: str, rows) -> dict[int, list[str]]:
        if not rows:
            return {}
        if len(rows) <= 500:
            return self._tags_of([r.id for r in rows])
        if len(rows) <= 4000:  # a page of a query (expand=records): not the whole project's
            ids = [r.id for r in rows]
            found: dict[int, list[str]] = {}
            for start in range(0, len(ids), 500):
                found.update(self._tags_of(ids[start:start + 500]))
            return found
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
        rows = self.conn.execute(_GET_PROJECT, {"b_project": project_id}).all()
        if not rows:
            return None
        # Remembered for sumatra_get_grants in this transaction: the ACL asks next.
        self._seen("grants")[project_id] = {
            row.principal: row.role for row in rows if row.principal is not None}
        return self._to_project(rows[0])

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
        self._seen("grants").pop(project_id, None)
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
        if principals is None:
            rows = self.conn.execute(_ALL_PROJECTS)
        else:
            rows = self.conn.execute(_PROJECTS_GRANTED, {"b_principals": principals})
        return [self._to_project(row) for row in rows]

    # -- grants ---------------------------------------------------------------

    @hookimpl
    @translate_errors
    def sumatra_get_grants(self, project_id: str) -> dict[str, str]:
        known = self._seen("grants").get(project_id)
        if known is not None:
            return dict(known)
        return dict(self.conn.execute(_GET_GRANTS, {"b_project": project_id}).all())

    @hookimpl
    @translate_errors
    def sumatra_set_grant(self, project_id: str, principal: str, role: str) -> bool:
        self._seen("grants").pop(project_id, None)
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
        self._seen("grants").pop(project_id, None)
        return bool(self.db.execute(delete(grants).where(
            grants.c.project_id == project_id, grants.c.principal == principal)).rowcount)

    # -- users ----------------------------------------------------------------

    @staticmethod
    def _to_user(row) -> UserInfo:
        return UserInfo(username=row.username, password_hash=row.password_hash,
                        is_admin=bool(row.is_admin), created=row.created,
                        session_generation=row.session_generation)

    @hookimpl
    @translate_errors
    def sumatra_get_user(self, username: str) -> UserInfo | None:
        # Remembered for the transaction: authentication and the identity both ask.
        cache = self._seen("users")
        if username not in cache:
            row = self.conn.execute(_GET_USER, {"b_username": username}).first()
            cache[username] = None if row is None else self._to_user(row)
        return cache[username]

    def _seen(self, kind: str) -> dict[str, Any]:
        """What this transaction already read of ``kind`` ("users", "grants"), by key."""
        txn = transaction.get()
        try:
            seen = txn.data(self)
        except KeyError:
            seen = {"users": {}, "grants": {}}
            txn.set_data(self, seen)
        return seen[kind]

    @hookimpl
    @translate_errors
    def sumatra_put_user(self, user: UserInfo) -> bool:
        self._seen("users").pop(user.username, None)
        db = self.db
        updated = db.execute(update(users).where(users.c.username == user.username).values(
            password_hash=user.password_hash, is_admin=user.is_admin,
            session_generation=user.session_generation)).rowcount
        if updated:
            return False
        with db.begin_nested():
            db.execute(insert(users).values(username=user.username,
                                            password_hash=user.password_hash,
                                            is_admin=user.is_admin,
                                            session_generation=user.session_generation,
                                            created=user.created or utcnow()))
        return True

    @hookimpl
    @translate_errors
    def sumatra_delete_user(self, username: str) -> bool:
        self._seen("users").pop(username, None)
        db = self.db
        db.execute(delete(grants).where(grants.c.principal == username))
        return bool(db.execute(delete(users).where(users.c.username == username)).rowcount)

    @hookimpl
    @translate_errors
    def sumatra_list_users(self) -> list[UserInfo]:
        return [self._to_user(r) for r in self.db.execute(select(users).order_by(users.c.username))]

    # -- sessions and API tokens (tokens.py) ------------------------------------

    @hookimpl
    @translate_errors
    def sumatra_bump_session_generation(self, username: str) -> int | None:
        self._seen("users").pop(username, None)
        return _tokens.bump_session_generation(self.db, username)

    @hookimpl
    @translate_errors
    def sumatra_put_token(self, token: TokenInfo) -> bool:
        return _tokens.put_token(self.db, token)

    @hookimpl
    @translate_errors
    def sumatra_get_token(self, token_id: str) -> TokenInfo | None:
        return _tokens.get_token(self.db, token_id)

    @hookimpl
    @translate_errors
    def sumatra_list_tokens(self, username: str | None) -> list[TokenInfo]:
        return _tokens.list_tokens(self.db, username)

    @hookimpl
    @translate_errors
    def sumatra_delete_token(self, username: str, name: str) -> bool:
        return _tokens.delete_token(self.db, username, name)

    @hookimpl
    @translate_errors
    def sumatra_touch_token(self, token_id: str, last_used: str) -> bool:
        return _tokens.touch_token(self.db, token_id, last_used)

    # -- the query language (search.py) ------------------------------------------

    @hookimpl
    @translate_errors
    def sumatra_search_records(self, project_id: str, query: RecordQuery,
                               where: Any) -> RecordPage:
        return _search.search(self, project_id, query, where)
