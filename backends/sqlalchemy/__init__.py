"""The SQLAlchemy storage backend: SQLite by default, PostgreSQL in production.

Every hook runs in the current ``transaction`` through a zope.sqlalchemy-registered
scoped session; nothing is committed by the backend itself. On PostgreSQL a read-intent
request's session reads in autocommit and refuses writes (reads.py).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import transaction
import zope.sqlalchemy
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import scoped_session, sessionmaker

from pyramid_sumatra.parameters import record_parameters
from pyramid_sumatra.records import utcnow
from pyramid_sumatra.storage.hookspecs import hookimpl
from pyramid_sumatra.storage.types import (
    ANONYMOUS,
    HistoryEntry,
    ProjectInfo,
    ProjectRecord,
    RecordPage,
    RecordQuery,
    StoredRecord,
    TokenInfo,
    TrashItem,
    UserInfo,
)

from . import history as _history
from . import search as _search
from . import tokens as _tokens
from .engine import create_engine
from .errors import translate_errors
from .query import RecordQueries, json_value
from .reads import read_in_autocommit
from .schema import NUMBER_NAME_MAX, grants, projects, record_numbers, record_tags, records, users
from .statements import (
    _ALL_PROJECTS,
    _COUNT_NEW_RECORD,
    _DELETE_NUMBERS,
    _DELETE_TAGS,
    _GET_GRANTS,
    _GET_PROJECT,
    _GET_USER,
    _INSERT_NUMBERS,
    _INSERT_RECORD,
    _INSERT_TAGS,
    _PROJECTS_GRANTED,
    _RECORD_ID,
    _TOUCH_PROJECT,
    _UPDATE_RECORD,
    _create_record_statement,
    _get_project_record_statement,
    _get_record_statement,
)

_USER_COLUMNS = tuple(c.name for c in users.c)


def create_backend(settings: dict[str, Any]) -> SqlAlchemyBackend:
    """Entry point ``sqlalchemy`` in group ``pyramid_sumatra.backends``."""
    return SqlAlchemyBackend(settings)


class SqlAlchemyBackend(RecordQueries):
    name = "sqlalchemy"

    def __init__(self, settings: dict[str, Any]):
        self.engine = create_engine(settings)
        self._get_record = _get_record_statement(self.engine.dialect.name)
        self._get_project_record = _get_project_record_statement(self.engine.dialect.name)
        self._get_project_record_user = _get_project_record_statement(
            self.engine.dialect.name, with_user=True)
        self._create_record = (_create_record_statement()
                               if self.engine.dialect.name == "postgresql" else None)
        read_in_autocommit(self.engine, settings.get("sqlalchemy.isolation_level"))
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
        self._seen("projects").clear()  # a repair rewrites record counts

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
                grants.c.principal != ANONYMOUS, ~grants.c.principal.in_(known),
                ~grants.c.principal.startswith("group:"))):  # groups live in the directory
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
        return self._to_record(row, json_value(row.tags) or [], with_body=True)

    @hookimpl
    @translate_errors
    def sumatra_put_record(self, record: StoredRecord, create: bool) -> bool:
        parameters = _parameters_of(record)
        values = {
            "body": record.body, "revision": record.revision, "timestamp": record.timestamp,
            "user": record.user, "main_file": record.main_file, "version": record.version,
            "executable": record.executable, "reason": record.reason,
            "outcome": record.outcome, "duration": record.duration,
            "parameters": orjson.dumps(parameters).decode(),
        }
        self._seen("projects").pop(record.project_id, None)  # its count and last_updated
        db = self.conn
        record_id = None if create else self._record_id(record.project_id, record.label)
        if record_id is None and self._create_record is not None:
            # No savepoint (as below); the record, its tags, its numeric parameters and
            # the count in one go.
            numbers = number_rows(0, record.project_id, parameters)
            db.execute(self._create_record, {
                **{f"v_{name}": value for name, value in values.items()},
                "v_project_id": record.project_id, "v_label": record.label,
                "b_tags": list(dict.fromkeys(record.tags)),
                "b_tag_project": record.project_id,
                "b_number_names": [n["name"] for n in numbers],
                "b_number_values": [n["value"] for n in numbers],
                "b_project": record.project_id, "b_now": utcnow()}).scalar_one()
            return True
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
            db.execute(_DELETE_NUMBERS, {"b_id": record_id})
            touch = _TOUCH_PROJECT
        if record.tags:
            db.execute(_INSERT_TAGS, [
                {"record_id": record_id, "tag": tag, "project_id": record.project_id}
                for tag in dict.fromkeys(record.tags)])  # each tag once
        numbers = number_rows(record_id, record.project_id, parameters)
        if numbers:
            db.execute(_INSERT_NUMBERS, numbers)
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
        self._seen("projects").pop(project_id, None)
        db = self.db
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            db.execute(delete(record_tags).where(record_tags.c.record_id.in_(chunk)))
            db.execute(delete(record_numbers).where(record_numbers.c.record_id.in_(chunk)))
            db.execute(delete(records).where(records.c.id.in_(chunk)))
        db.execute(update(projects).where(projects.c.id == project_id).values(
            last_updated=utcnow(), record_count=projects.c.record_count - len(ids)))


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
        known = self._seen("projects").get(project_id)
        if known is not None:  # the first record's PUT asks again (services.projects)
            return known
        rows = self.conn.execute(_GET_PROJECT, {"b_project": project_id}).all()
        if not rows:
            return None
        # Remembered for sumatra_get_grants in this transaction: the ACL asks next.
        self._seen("grants")[project_id] = {
            row.principal: row.role for row in rows if row.principal is not None}
        return self._remember(self._to_project(rows[0]))

    def _remember(self, project: ProjectInfo) -> ProjectInfo:
        self._seen("projects")[project.id] = project
        return project

    @hookimpl
    @translate_errors
    def sumatra_get_project_record(self, project_id: str, label: str,
                                   username: str | None = None) -> ProjectRecord | None:
        if username is None:
            row = self.conn.execute(self._get_project_record,
                                    {"b_project": project_id, "b_label": label}).first()
        else:  # the user the request authenticates as next, in the same query
            row = self.conn.execute(self._get_project_record_user, {
                "b_project": project_id, "b_label": label, "b_username": username}).first()
        if row is None:
            return None
        if username is not None:  # sumatra_get_user answers from it (this transaction)
            self._seen("users")[username] = None if row.u_username is None else \
                self._to_user(row._mapping, "u_")
        pairs = json_value(row.grants) or []
        granted = {principal: role for principal, role in pairs if principal is not None}
        self._seen("grants")[project_id] = dict(granted)  # sumatra_get_grants asks next
        record = None
        if row.label is not None:
            record = self._to_record(row, json_value(row.tags) or [], with_body=True,
                                     project_id=project_id)
        return self._remember(self._to_project(row)), granted, record

    @hookimpl
    @translate_errors
    def sumatra_put_project(self, project: ProjectInfo) -> bool:
        self._seen("projects").pop(project.id, None)
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
        self._seen("projects").pop(project_id, None)
        db = self.db
        if not db.execute(select(projects.c.id).where(projects.c.id == project_id)).first():
            return False
        ids = select(records.c.id).where(records.c.project_id == project_id)
        db.execute(delete(record_tags).where(record_tags.c.record_id.in_(ids)))
        db.execute(delete(record_numbers).where(record_numbers.c.project_id == project_id))
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
    def _to_user(row, prefix: str = "") -> UserInfo:
        """A user from a row of the users table, or (``row._mapping`` and ``prefix``) from
        columns labelled ``<prefix><name>``."""
        if prefix:
            row = SimpleNamespace(**{name: row[prefix + name] for name in _USER_COLUMNS})
        return UserInfo(username=row.username, password_hash=row.password_hash,
                        is_admin=bool(row.is_admin), created=row.created,
                        session_generation=row.session_generation, source=row.source or "",
                        display_name=row.display_name or "", email=row.email or "",
                        groups=None if row.kept_groups is None
                        else tuple(json_value(row.kept_groups)),
                        groups_seen=row.groups_seen or "")

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
        """What this transaction already read of ``kind`` ("users", "grants", "projects"),
        by key; a write of one drops it."""
        txn = transaction.get()
        try:
            seen = txn.data(self)
        except KeyError:
            seen = {"users": {}, "grants": {}, "projects": {}}
            txn.set_data(self, seen)
        return seen[kind]

    @hookimpl
    @translate_errors
    def sumatra_put_user(self, user: UserInfo) -> bool:
        self._seen("users").pop(user.username, None)
        db = self.db
        updated = db.execute(update(users).where(users.c.username == user.username).values(
            password_hash=user.password_hash, is_admin=user.is_admin,
            session_generation=user.session_generation, **_external(user))).rowcount
        if updated:
            return False
        with db.begin_nested():
            db.execute(insert(users).values(username=user.username,
                                            password_hash=user.password_hash,
                                            is_admin=user.is_admin,
                                            session_generation=user.session_generation,
                                            created=user.created or utcnow(),
                                            **_external(user)))
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

    # -- history and trash (history.py) -------------------------------------------

    @hookimpl
    @translate_errors
    def sumatra_add_history(self, entry: HistoryEntry, keep: int) -> bool:
        return _history.add_history(self.conn, entry, keep)

    @hookimpl
    @translate_errors
    def sumatra_list_history(self, project_id: str, label: str, limit: int,
                             before: str | None) -> list[HistoryEntry]:
        return _history.list_history(self.conn, project_id, label, limit, before)

    @hookimpl
    @translate_errors
    def sumatra_delete_history(self, project_id: str, label: str | None) -> int:
        return _history.delete_history(self.conn, project_id, label)

    @hookimpl
    @translate_errors
    def sumatra_put_trash(self, item: TrashItem) -> bool:
        return _history.put_trash(self.conn, item)

    @hookimpl
    @translate_errors
    def sumatra_list_trash(self, project_id: str | None, older_than: str | None,
                           limit: int | None) -> list[TrashItem]:
        return _history.list_trash(self.conn, project_id, older_than, limit)

    @hookimpl
    @translate_errors
    def sumatra_get_trash(self, project_id: str, label: str, deleted_at: str) -> TrashItem | None:
        return _history.get_trash(self.conn, project_id, label, deleted_at)

    @hookimpl
    @translate_errors
    def sumatra_delete_trash(self, project_id: str, label: str, deleted_at: str) -> bool:
        return _history.delete_trash(self.conn, project_id, label, deleted_at)

    # -- the query language (search.py) ------------------------------------------

    @hookimpl
    @translate_errors
    def sumatra_search_records(self, project_id: str, query: RecordQuery,
                               where: Any) -> RecordPage:
        return _search.search(self, project_id, query, where)


def _parameters_of(record: StoredRecord) -> dict:
    """The record's flat parameters (derived from the body when the caller built the
    record without them)."""
    if record.parameters is not None:
        return record.parameters
    return record_parameters(record.document) if record.body is not None else {}


def number_rows(record_id: int, project_id: str, parameters: dict) -> list[dict]:
    """``record_numbers`` rows: the numeric parameters (not booleans) of short names."""
    return [{"record_id": record_id, "project_id": project_id, "name": name,
             "value": float(value)}
            for name, value in parameters.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
            and len(name) <= NUMBER_NAME_MAX]


def _external(user: UserInfo) -> dict[str, str | None]:
    """The external-login columns (revisions 0007, 0009); NULL for a local user."""
    return {"source": user.source or None, "display_name": user.display_name or None,
            "email": user.email or None,
            "kept_groups": None if user.groups is None
            else orjson.dumps(list(user.groups)).decode(),
            "groups_seen": user.groups_seen or None}
