"""A storage backend for Sumatra Server in one SQLite file, on the standard library's sqlite3.

Registered as entry point ``sqlite3`` in group ``pyramid_sumatra.backends``::

    sumatra.backend = sqlite3
    sumatra.sqlite3.path = %(here)s/var/sumatra.sqlite

Each transaction (a request, a CLI command) gets its own connection from the kit's
:func:`~pyramid_sumatra.storage.datamanager.transaction_connection`, which commits it
when the transaction commits and rolls it back otherwise. Queries load a project's
index rows and let the kit's :func:`~pyramid_sumatra.storage.query.select_entries`
filter, order and page them.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import urllib.parse
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

from pyramid_sumatra.intent import write_intent
from pyramid_sumatra.storage.datamanager import transaction_connection
from pyramid_sumatra.storage.hookspecs import hookimpl
from pyramid_sumatra.storage.query import select_entries
from pyramid_sumatra.storage.types import (
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

NAME = "sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    last_updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    body TEXT NOT NULL,
    revision TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',  -- a JSON list, sorted, each tag once
    "user" TEXT NOT NULL DEFAULT '',
    main_file TEXT NOT NULL DEFAULT '',
    version TEXT NOT NULL DEFAULT '',
    executable TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT '',
    duration REAL,
    PRIMARY KEY (project_id, label)
);
CREATE INDEX IF NOT EXISTS records_by_time ON records (project_id, timestamp, label);
CREATE TABLE IF NOT EXISTS grants (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    principal TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (project_id, principal)
);
CREATE INDEX IF NOT EXISTS grants_by_principal ON grants (principal);
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    session_generation INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL DEFAULT '',  -- who vouches for the user: '' (local), 'ldap', ...
    display_name TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    scope TEXT NOT NULL,
    projects TEXT NOT NULL DEFAULT '[]',  -- a JSON list
    created TEXT NOT NULL,
    expires TEXT,
    last_used TEXT,
    UNIQUE (username, name)
);
"""

# The index fields of a record, in the order of the records table.
FIELDS = ("timestamp", "tags", "user", "main_file", "version", "executable", "reason",
          "outcome", "duration")
INDEX_COLUMNS = ", ".join(f'"{name}"' for name in FIELDS)  # "user" is quoted
COLUMNS = f"label, revision, {INDEX_COLUMNS}"


def create_backend(settings: dict[str, Any]) -> SQLite3Backend:
    """The entry point: called once with the app's settings."""
    path = settings.get("sumatra.sqlite3.path")
    if not path:
        raise ValueError("sumatra.backend = sqlite3 needs sumatra.sqlite3.path")
    return SQLite3Backend(path, timeout=float(settings.get("sumatra.sqlite3.timeout", 30)))


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


# -- errors ------------------------------------------------------------------


def storage_error(exc: Exception) -> StorageError | None:
    """The kit's exception for a sqlite3 error (retry, 503, 507); None: a bug (500)."""
    text = str(exc).lower()
    if isinstance(exc, sqlite3.IntegrityError):
        # A duplicate key is a concurrent writer; a missing project a concurrent delete.
        if "unique" in text or "foreign key" in text:
            return StorageConflict(str(exc))
        return None
    if isinstance(exc, sqlite3.OperationalError):
        if "locked" in text or "busy" in text:
            return StorageConflict(str(exc))
        if "disk is full" in text or "no space" in text:
            return StorageFull(str(exc))
        return StorageUnavailable(f"sqlite3: {exc}")
    return None


def translated(method):
    """Raise the kit's exceptions, not sqlite3's, from a hook."""

    @functools.wraps(method)
    def hook(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            error = storage_error(exc)
            if error is None:
                raise
            raise error from exc

    return hookimpl(hook)


# -- rows to the kit's values ------------------------------------------------


def to_record(project_id: str, row: sqlite3.Row) -> StoredRecord:
    return StoredRecord(
        project_id=project_id, label=row["label"], revision=row["revision"],
        body=row["body"] if "body" in row.keys() else None,
        **{name: json.loads(row["tags"]) if name == "tags" else row[name]
           for name in FIELDS})


def to_project(row: sqlite3.Row) -> ProjectInfo:
    return ProjectInfo(id=row["id"], name=row["name"], description=row["description"],
                       created=row["created"], last_updated=row["last_updated"],
                       record_count=row["record_count"])


def to_user(row: sqlite3.Row) -> UserInfo:
    return UserInfo(username=row["username"], password_hash=row["password_hash"],
                    is_admin=bool(row["is_admin"]), created=row["created"],
                    session_generation=row["session_generation"], source=row["source"],
                    display_name=row["display_name"], email=row["email"])


def to_token(row: sqlite3.Row) -> TokenInfo:
    return TokenInfo(id=row["id"], username=row["username"], name=row["name"],
                     secret_hash=row["secret_hash"], scope=row["scope"],
                     projects=json.loads(row["projects"]), created=row["created"],
                     expires=row["expires"], last_used=row["last_used"])


PROJECTS = """SELECT p.*, (SELECT count(*) FROM records AS r WHERE r.project_id = p.id)
              AS record_count FROM projects AS p"""


class SQLite3Backend:
    def __init__(self, path: str, timeout: float = 30.0):
        self.path = path
        self.timeout = timeout

    # -- connections -----------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit BEGIN; we say when and how the transaction begins.
        connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA foreign_keys = ON")
        return connection

    def _begin(self) -> sqlite3.Connection:
        connection = self._open()
        # A writer takes the write lock now: upgrading a read lock later can deadlock.
        connection.execute("BEGIN IMMEDIATE" if write_intent.get() else "BEGIN")
        return connection

    def _db(self) -> sqlite3.Connection:
        """This transaction's connection: committed or rolled back with the transaction."""
        return transaction_connection(self, self._begin, translate=storage_error,
                                      close=sqlite3.Connection.close)

    # -- lifecycle -------------------------------------------------------------

    @translated
    def sumatra_initialize_storage(self) -> bool:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with closing(self._open()) as connection:
            connection.execute("PRAGMA journal_mode = WAL")  # readers never wait for a writer
            connection.executescript(SCHEMA)
        return True

    @hookimpl
    def sumatra_storage_status(self) -> dict[str, Any]:
        status = {"ok": False, "backend": NAME, "path": self.path}
        uri = f"file:{urllib.parse.quote(self.path)}?mode=rw"  # never create the file here
        try:
            with closing(sqlite3.connect(uri, uri=True, timeout=self.timeout)) as connection:
                connection.execute("SELECT count(*) FROM projects").fetchone()
        except sqlite3.Error as exc:
            return {**status, "detail": str(exc)}
        return {**status, "ok": True}

    @hookimpl
    def sumatra_dispose_storage(self) -> bool:
        return True  # every connection is closed when its transaction ends

    @translated
    def sumatra_check_storage(self, repair: bool) -> dict[str, Any]:
        with closing(self._open()) as connection:
            connection.execute("BEGIN IMMEDIATE")
            problems = [f"integrity: {row[0]}" for row in
                        connection.execute("PRAGMA integrity_check") if row[0] != "ok"]
            orphans = connection.execute("PRAGMA foreign_key_check").fetchall()
            problems += [f"{row[0]} row {row[1]} names a missing project" for row in orphans]
            stray = connection.execute(
                """SELECT project_id, principal FROM grants WHERE principal != 'anonymous'
                   AND principal NOT LIKE 'group:%'
                   AND principal NOT IN (SELECT username FROM users)""").fetchall()
            problems += [f"grant on {row[0]} to missing user {row[1]}" for row in stray]
            unrepaired = list(problems)
            if repair:
                for table, rowid, *_ in orphans:
                    connection.execute(f'DELETE FROM "{table}" WHERE rowid = ?', (rowid,))
                connection.execute("""DELETE FROM grants WHERE principal != 'anonymous'
                                      AND principal NOT LIKE 'group:%'
                                      AND principal NOT IN (SELECT username FROM users)""")
                unrepaired = [p for p in problems if p.startswith("integrity:")]
            connection.commit()
        return {"backend": NAME, "problems": problems, "unrepaired": unrepaired}

    # -- records ---------------------------------------------------------------

    @translated
    def sumatra_get_record(self, project_id: str, label: str) -> StoredRecord | None:
        row = self._db().execute(
            f"SELECT {COLUMNS}, body FROM records WHERE project_id = ? AND label = ?",
            (project_id, label)).fetchone()
        return to_record(project_id, row) if row else None

    @translated
    def sumatra_put_record(self, record: StoredRecord, create: bool) -> bool:
        db = self._db()
        # A plain INSERT fails on an existing label (create) and, with foreign keys on,
        # in a missing project: both IntegrityErrors become StorageConflict.
        verb = "INSERT" if create else "INSERT OR REPLACE"
        db.execute(
            f"""{verb} INTO records (project_id, label, body, revision, {INDEX_COLUMNS})
                VALUES ({", ".join("?" * 13)})""",
            (record.project_id, record.label, record.body, record.revision,
             record.timestamp, json.dumps(sorted(set(record.tags))), record.user,
             record.main_file, record.version, record.executable, record.reason,
             record.outcome, record.duration))
        self._touch(record.project_id)
        return True

    def _touch(self, project_id: str) -> None:
        self._db().execute("UPDATE projects SET last_updated = ? WHERE id = ?",
                           (utcnow(), project_id))

    @translated
    def sumatra_delete_record(self, project_id: str, label: str) -> bool:
        deleted = self._db().execute("DELETE FROM records WHERE project_id = ? AND label = ?",
                                     (project_id, label)).rowcount
        if deleted:
            self._touch(project_id)
        return deleted > 0

    @translated
    def sumatra_query_records(self, project_id: str, query: RecordQuery) -> RecordPage:
        # One read of the project's index rows; the kit filters, orders and pages them.
        body = ", body" if query.with_body else ""
        rows = self._db().execute(
            f"SELECT {COLUMNS}{body} FROM records WHERE project_id = ?", (project_id,))
        records = {row["label"]: to_record(project_id, row) for row in rows}
        page, next_cursor, total = select_entries(
            {label: vars(record) for label, record in records.items()}, query)
        return RecordPage([records[label] for label, _ in page], next_cursor, total)

    @translated
    def sumatra_most_recent_record(self, project_id: str) -> StoredRecord | None:
        row = self._db().execute(
            f"""SELECT {COLUMNS}, body FROM records WHERE project_id = ?
                ORDER BY timestamp DESC, label DESC LIMIT 1""", (project_id,)).fetchone()
        return to_record(project_id, row) if row else None

    @translated
    def sumatra_delete_records_by_tag(self, project_id: str, tag: str) -> int:
        deleted = self._db().execute(
            """DELETE FROM records WHERE project_id = ? AND EXISTS
               (SELECT 1 FROM json_each(records.tags) WHERE json_each.value = ?)""",
            (project_id, tag)).rowcount
        if deleted:
            self._touch(project_id)
        return deleted

    # -- projects --------------------------------------------------------------

    @translated
    def sumatra_get_project(self, project_id: str) -> ProjectInfo | None:
        row = self._db().execute(f"{PROJECTS} WHERE p.id = ?", (project_id,)).fetchone()
        return to_project(row) if row else None

    @translated
    def sumatra_put_project(self, project: ProjectInfo) -> bool:
        db, now = self._db(), utcnow()
        updated = db.execute(
            "UPDATE projects SET name = ?, description = ?, last_updated = ? WHERE id = ?",
            (project.name, project.description, now, project.id)).rowcount
        if updated:
            return False
        db.execute("INSERT INTO projects VALUES (?, ?, ?, ?, ?)",
                   (project.id, project.name, project.description, now, now))
        return True

    @translated
    def sumatra_delete_project(self, project_id: str) -> bool:
        # ON DELETE CASCADE removes its records and grants.
        return self._db().execute("DELETE FROM projects WHERE id = ?",
                                  (project_id,)).rowcount > 0

    @translated
    def sumatra_list_projects(self, principals: list[str] | None) -> list[ProjectInfo]:
        where, parameters = "", ()
        if principals is not None:
            where = """WHERE p.id IN (SELECT project_id FROM grants
                       WHERE principal IN (SELECT value FROM json_each(?)))"""
            parameters = (json.dumps(principals),)
        rows = self._db().execute(f"{PROJECTS} {where} ORDER BY last_updated DESC, id",
                                  parameters)
        return [to_project(row) for row in rows]

    # -- grants ----------------------------------------------------------------

    @translated
    def sumatra_get_grants(self, project_id: str) -> dict[str, str]:
        rows = self._db().execute("SELECT principal, role FROM grants WHERE project_id = ?",
                                  (project_id,))
        return {row["principal"]: row["role"] for row in rows}

    @translated
    def sumatra_set_grant(self, project_id: str, principal: str, role: str) -> bool:
        self._db().execute(  # a missing project: foreign key, StorageConflict
            """INSERT INTO grants VALUES (?, ?, ?)
               ON CONFLICT (project_id, principal) DO UPDATE SET role = excluded.role""",
            (project_id, principal, role))
        return True

    @translated
    def sumatra_revoke_grant(self, project_id: str, principal: str) -> bool:
        return self._db().execute(
            "DELETE FROM grants WHERE project_id = ? AND principal = ?",
            (project_id, principal)).rowcount > 0

    # -- users -----------------------------------------------------------------

    @translated
    def sumatra_get_user(self, username: str) -> UserInfo | None:
        row = self._db().execute("SELECT * FROM users WHERE username = ?",
                                 (username,)).fetchone()
        return to_user(row) if row else None

    @translated
    def sumatra_put_user(self, user: UserInfo) -> bool:
        db = self._db()
        updated = db.execute(  # replacing keeps the stored created
            """UPDATE users SET password_hash = ?, is_admin = ?, session_generation = ?,
               source = ?, display_name = ?, email = ? WHERE username = ?""",
            (user.password_hash, user.is_admin, user.session_generation, user.source,
             user.display_name, user.email, user.username)).rowcount
        if updated:
            return False
        db.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (user.username, user.password_hash, user.is_admin,
                    user.created or utcnow(), user.session_generation, user.source,
                    user.display_name, user.email))
        return True

    @translated
    def sumatra_delete_user(self, username: str) -> bool:
        db = self._db()
        db.execute("DELETE FROM grants WHERE principal = ?", (username,))
        return db.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount > 0

    @translated
    def sumatra_list_users(self) -> list[UserInfo]:
        return [to_user(row) for row in
                self._db().execute("SELECT * FROM users ORDER BY username")]

    # -- sessions and tokens (optional hooks) ----------------------------------

    @translated
    def sumatra_bump_session_generation(self, username: str) -> int | None:
        db = self._db()
        db.execute("""UPDATE users SET session_generation = session_generation + 1
                      WHERE username = ?""", (username,))
        row = db.execute("SELECT session_generation FROM users WHERE username = ?",
                         (username,)).fetchone()
        return row[0] if row else None

    @translated
    def sumatra_put_token(self, token: TokenInfo) -> bool:
        db = self._db()
        if db.execute("SELECT 1 FROM tokens WHERE username = ? AND name = ?",
                      (token.username, token.name)).fetchone():
            return False
        db.execute(  # an existing id: IntegrityError, StorageConflict
            "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (token.id, token.username, token.name, token.secret_hash, token.scope,
             json.dumps(token.projects), token.created or utcnow()[:19], token.expires,
             token.last_used))
        return True

    @translated
    def sumatra_get_token(self, token_id: str) -> TokenInfo | None:
        row = self._db().execute("SELECT * FROM tokens WHERE id = ?", (token_id,)).fetchone()
        return to_token(row) if row else None

    @translated
    def sumatra_list_tokens(self, username: str | None) -> list[TokenInfo]:
        if username is None:
            rows = self._db().execute("SELECT * FROM tokens ORDER BY username, name")
        else:
            rows = self._db().execute(
                "SELECT * FROM tokens WHERE username = ? ORDER BY name", (username,))
        return [to_token(row) for row in rows]

    @translated
    def sumatra_delete_token(self, username: str, name: str) -> bool:
        return self._db().execute("DELETE FROM tokens WHERE username = ? AND name = ?",
                                  (username, name)).rowcount > 0

    @translated
    def sumatra_touch_token(self, token_id: str, last_used: str) -> bool:
        return self._db().execute("UPDATE tokens SET last_used = ? WHERE id = ?",
                                  (last_used, token_id)).rowcount > 0
