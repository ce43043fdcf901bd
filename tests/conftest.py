"""Shared fixtures: a fresh store per test, the app under WebTest, a real server on loopback.

Backends are chosen by name from ``BACKENDS`` (``--backends=sqlite,postgresql,...``
narrows the set). Under ``CI=true`` a missing service or browser fails instead of
skipping.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import sys
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import argon2
import pytest
import transaction
import waitress.server
import waitress.wasyncore
import webtest

import pyramid_sumatra
from pyramid_sumatra import build_storage, resolve_settings
from pyramid_sumatra.demo import load_demo
from pyramid_sumatra.storage.types import ProjectInfo

# The shipped contract suite's options and fixtures (store, project); tests/contract runs
# it. Not imported here: pytest rewrites its assertions only if it imports it first.
pytest_plugins = ["pyramid_sumatra.storage.testing"]
#: Record documents as Sumatra 0.3 to 0.7 sent them (they travel with the suite).
DATA = Path(pyramid_sumatra.__file__).parent / "storage" / "testing" / "data"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_URL = os.environ.get("SUMATRA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def unavailable(reason: str) -> None:
    """Skip for a missing service or browser; under CI fail instead."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


# -- backends ----------------------------------------------------------------
# Each maker returns (settings, cleanup). New backends register here.


def _sqlite(tmp_path: Path) -> tuple[dict, Callable[[], None]]:
    return {"sumatra.backend": "sqlalchemy",
            "sqlalchemy.url": f"sqlite:///{tmp_path}/sumatra.sqlite"}, lambda: None


class _PostgresDatabase:
    """One fresh database per test session (``sumatra_test_<uuid>``), emptied before each test.

    Truncating is much faster than creating a database or schema per test; the
    database is dropped when the session ends.
    """

    def __init__(self) -> None:
        self.url = ""

    def admin(self):
        import psycopg

        try:
            return psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"),
                                   autocommit=True, connect_timeout=3)
        except psycopg.OperationalError as exc:
            unavailable(f"PostgreSQL is not reachable at {PG_URL}: {exc}")

    def create(self, prefix: str = "sumatra_test_") -> str:
        """A new empty database named after this process; returns its SQLAlchemy URL."""
        name = f"{prefix}{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with self.admin() as conn:
            self._drop_orphans(conn)
            conn.execute(f'CREATE DATABASE "{name}"')
        return PG_URL.rsplit("/", 1)[0] + "/" + name

    @staticmethod
    def _drop_orphans(conn) -> None:
        """Drop databases left by test processes that died before their clean-up."""
        names = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'sumatra%'")
        for (name,) in names.fetchall():
            match = re.fullmatch(r"sumatra_[a-z_]+?_(\d+)_[0-9a-f]{8}", name)
            if match and not Path(f"/proc/{match.group(1)}").exists():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def fresh(self) -> str:
        if not self.url:
            self.url = self.create()
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.url, poolclass=sqlalchemy.pool.NullPool)
        with engine.begin() as conn:
            tables = conn.exec_driver_sql(
                "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables "
                "WHERE schemaname = 'public' AND tablename <> 'alembic_version'").scalar()
            if tables:
                conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        engine.dispose()
        return self.url

    def close(self) -> None:
        if self.url:
            self.drop(self.url)
            self.url = ""


POSTGRES = _PostgresDatabase()


def _filesystem(tmp_path: Path) -> tuple[dict, Callable[[], None]]:
    return {"sumatra.backend": "filesystem",
            "sumatra.filesystem.root": str(tmp_path / "store")}, lambda: None


def _postgresql(tmp_path: Path) -> tuple[dict, Callable[[], None]]:
    return {"sumatra.backend": "sqlalchemy", "sqlalchemy.url": POSTGRES.fresh()}, lambda: None


BACKENDS: dict[str, Callable[[Path], tuple[dict, Callable[[], None]]]] = {
    "sqlite": _sqlite,
    "postgresql": _postgresql,
    "filesystem": _filesystem,
}
#: Backends that need a service; their tests carry the marker.
BACKEND_MARKS = {"postgresql": pytest.mark.postgres}


def pytest_addoption(parser):
    parser.addoption("--backends", default="",
                     help="comma-separated backend names to run backend-parametrised tests on")


def pytest_configure(config):
    # --sumatra-backend=NAME (the contract suite's option) runs backend-parametrised
    # tests against that installed plugin instead.
    from pyramid_sumatra.storage.testing import backend_settings

    name = config.getoption("--sumatra-backend")
    if name:
        BACKENDS[f"entry-point:{name}"] = lambda tmp_path: (
            backend_settings(config, tmp_path), lambda: None)


def pytest_sessionfinish(session):
    POSTGRES.close()


def selected_backends(config) -> list[str]:
    if config.getoption("--sumatra-backend"):
        return [f"entry-point:{config.getoption('--sumatra-backend')}"]
    wanted = [b for b in config.getoption("--backends").split(",") if b]
    unknown = [b for b in wanted if b not in BACKENDS]
    if unknown:
        raise pytest.UsageError(f"unknown backends {unknown}; known: {sorted(BACKENDS)}")
    return wanted or list(BACKENDS)


def pytest_generate_tests(metafunc):
    if "backend_name" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("only_backends")
        metafunc.parametrize("backend_name", [
            pytest.param(name, marks=BACKEND_MARKS.get(name, ()))
            for name in selected_backends(metafunc.config)
            if only is None or name in only.args])


@pytest.fixture
def backend_name() -> str:  # overridden by parametrisation; sqlite alone otherwise
    return "sqlite"


@pytest.fixture
def app_settings(backend_name: str, tmp_path: Path) -> Iterator[dict]:
    settings, cleanup = BACKENDS[backend_name](tmp_path)
    settings = {**settings, "sumatra.initdb": "true", "sumatra.secret": "x" * 32}
    yield settings
    cleanup()


@pytest.fixture
def storage(app_settings: dict):
    store = build_storage(resolve_settings(app_settings))
    store.initialize()
    yield store
    store.dispose()


#: Cheap argon2id parameters for the demo user (verification follows the stored hash's
#: parameters): the default cost is slow by design, and paying it twice per test (hash,
#: then the first Basic check) was most of a live-server test's time.
_CHEAP_HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def demo(storage, monkeypatch) -> dict:
    monkeypatch.setattr("pyramid_sumatra.services.users.hash_password", _CHEAP_HASHER.hash)
    with transaction.manager:
        return load_demo(storage)


@pytest.fixture
def wsgi_app(app_settings: dict, demo):
    """The app over a store holding the demo data (testuser/abc123)."""
    app = pyramid_sumatra.main({}, **app_settings)
    yield app
    app.registry["sumatra.storage"].dispose()


@pytest.fixture
def testapp(wsgi_app) -> webtest.TestApp:
    return webtest.TestApp(wsgi_app)


def basic(username: str = "testuser", password: str = "abc123") -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


V4 = "application/vnd.sumatra.{}-v4+json"
CLIENT_ACCEPT = "application/vnd.sumatra.{kind}-v4+json, application/json"


def served(doc: dict, project_id: str) -> dict:
    """A record document as the server sends it back: with the project it is in."""
    return {**doc, "project_id": doc.get("project_id") or project_id}


def load_example(name: str) -> dict:
    return json.loads((DATA / name).read_text())


# -- a real server on a loopback port ------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(proc, port: int, what: str, output: Callable[[], str],
                   timeout: float) -> None:
    """Wait until ``proc`` (a Popen) accepts connections on 127.0.0.1:``port``; a
    RuntimeError with the end of its ``output()`` if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {output()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start listening")


class LiveServer:
    """The app served by waitress in a background thread on 127.0.0.1."""

    def __init__(self, app, threads: int = 4):
        self.server = waitress.server.create_server(app, host="127.0.0.1", port=0,
                                                    threads=threads,
                                                    clear_untrusted_proxy_headers=True)
        self.port = self.server.effective_port
        self.url = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        # First let the worker threads finish (a worker still finishing a request
        # would write to the trigger and sockets after they are closed, and so into
        # whatever reuses those descriptor numbers). Then close every channel
        # (clients' keep-alive connections too) inside the loop's own thread: the
        # loop ends at once, instead of the join timing out and the loop selecting
        # on closed sockets.
        server = self.server
        server.task_dispatcher.shutdown()
        try:
            server.trigger.pull_trigger(lambda: waitress.wasyncore.close_all(server._map))
        except OSError:
            # The trigger's pipe is already closed (seen once in ~950 tests, on teardown
            # of the 4-client filesystem test): the loop cannot be woken; close what is
            # left from here, and the join below ends the thread or times out.
            waitress.wasyncore.close_all(server._map)
        self.thread.join(timeout=5)


@pytest.fixture
def live_server(wsgi_app) -> Iterator[LiveServer]:
    with LiveServer(wsgi_app) as server:
        yield server


def unique(prefix: str = "p") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture
def lab(storage) -> str:
    """A project granted to the directory group physics-lab (write), owned by testuser."""
    pid = unique("lab")
    with transaction.manager:
        storage.put_project(ProjectInfo(id=pid, name="lab"))
        storage.set_grant(pid, "testuser", "admin")
        storage.set_grant(pid, "group:physics-lab", "write")
    return pid


def plugin_module(monkeypatch, name: str, plugin: object) -> str:
    """Put ``plugin`` behind a factory in a throwaway module; return its ``module:attr`` name.

    That name goes in ``sumatra.plugins`` or ``sumatra.backend`` like an installed plugin's.
    """
    module = types.ModuleType(name)
    module.factory = lambda settings: plugin
    monkeypatch.setitem(sys.modules, name, module)
    return f"{name}:factory"
