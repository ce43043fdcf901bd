"""The engine: URL and pool options, SQLite's PRAGMAs and writer lock, fork handling."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, engine_from_config
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.util import asbool

from pyramid_sumatra.intent import write_intent

from .errors import _translate_outside_hooks


def create_engine(settings: dict[str, Any]) -> Engine:
    """The engine ``sqlalchemy.*`` settings describe, set up for SQLite or PostgreSQL."""
    url = settings.get("sqlalchemy.url") or "sqlite:///sumatra.sqlite"
    options = {k: v for k, v in settings.items() if k.startswith("sqlalchemy.")}
    options["sqlalchemy.url"] = url
    if url.startswith("postgresql") and url.startswith("postgresql://"):
        options["sqlalchemy.url"] = "postgresql+psycopg://" + url[len("postgresql://"):]
    # No ping on every checkout: on PostgreSQL that was a round trip per request (see
    # _ping_idle_connections; sqlalchemy.pool_pre_ping = true still asks for it).
    # (engine_from_config passes the ini's string on: "false" was true, SQLite pinged too.)
    options["sqlalchemy.pool_pre_ping"] = asbool(options.get("sqlalchemy.pool_pre_ping", False))
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    engine = engine_from_config(options, "sqlalchemy.")
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    elif not engine.pool._pre_ping:
        _ping_idle_connections(engine, PING_IDLE_SECONDS)
    event.listen(engine, "handle_error", _translate_outside_hooks)
    # pserve builds the app before gunicorn forks its workers: a worker must not use
    # connections pooled by its parent (SQLAlchemy's advice for os.fork()).
    ref = weakref.ref(engine)
    os.register_at_fork(after_in_child=lambda: _dispose_in_child(ref()))
    return engine


#: A pooled connection idle for longer is pinged before use (the server may have closed
#: it: a restart, an idle timeout); one in use under load is not.
PING_IDLE_SECONDS = 5.0


def _ping_idle_connections(engine: Engine, after: float) -> None:
    """Ping a connection at checkout only when it sat idle in the pool over ``after``
    seconds: SQLAlchemy's pool_pre_ping cost a round trip on every request. A dead one
    is replaced at once (DisconnectionError: the pool invalidates it and checks out
    again); one that died while in use fails its statement, and SQLAlchemy then
    replaces every connection pooled before that moment."""

    @event.listens_for(engine.pool, "checkin")
    def on_checkin(_dbapi_connection, record) -> None:
        if record is not None:
            record.info["sumatra.idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def on_checkout(dbapi_connection, record, _proxy) -> None:
        since = record.info.get("sumatra.idle_since")
        if since is None or time.monotonic() - since <= after:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"idle connection lost: {exc}") from exc


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
        # SQLite's own lower() folds A-Z only: the text filter ignores case of any letter,
        # as on PostgreSQL and in the kit's in-memory query engine.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)

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

    @event.listens_for(engine, "engine_disposed")
    def on_disposed(_engine):
        # Each engine held its lock file open for good: a test run making 2,000 apps
        # passed 1,024 descriptors, where select()-based servers (waitress) fail.
        writer.close()


def _lower(value):
    return value.lower() if isinstance(value, str) else value


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

    def close(self) -> None:
        """Close the lock file (the engine was disposed); a later writer reopens it."""
        with self.threads:
            if self._fd is not None and self._pid == os.getpid():
                with contextlib.suppress(OSError):
                    os.close(self._fd)
            self._fd = None


def _dispose_in_child(engine: Engine | None) -> None:
    if engine is not None:
        engine.dispose(close=False)  # forget the parent's connections, do not close them
