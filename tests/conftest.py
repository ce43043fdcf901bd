"""Shared fixtures: a fresh store per test, the app under WebTest, a real server on loopback.

Backends are chosen by name from ``BACKENDS`` (``--backends=sqlite,postgresql,...``
narrows the set). Under ``CI=true`` a missing service or browser fails instead of
skipping.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import transaction
import waitress.server
import webtest

import pyramid_sumatra
from pyramid_sumatra import build_storage, resolve_settings
from pyramid_sumatra.demo import load_demo

DATA = Path(__file__).parent / "data"
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


def _filesystem(tmp_path: Path) -> tuple[dict, Callable[[], None]]:
    return {"sumatra.backend": "filesystem",
            "sumatra.filesystem.root": str(tmp_path / "store")}, lambda: None


BACKENDS: dict[str, Callable[[Path], tuple[dict, Callable[[], None]]]] = {
    "sqlite": _sqlite,
    "filesystem": _filesystem,
}


def pytest_addoption(parser):
    parser.addoption("--backends", default="",
                     help="comma-separated backend names to run backend-parametrised tests on")


def selected_backends(config) -> list[str]:
    wanted = [b for b in config.getoption("--backends").split(",") if b]
    return wanted or list(BACKENDS)


def pytest_generate_tests(metafunc):
    if "backend_name" in metafunc.fixturenames:
        metafunc.parametrize("backend_name", selected_backends(metafunc.config))


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


@pytest.fixture
def demo(storage) -> dict:
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


def load_example(name: str) -> dict:
    return json.loads((DATA / name).read_text())


# -- a real server on a loopback port ------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The app served by waitress in a background thread on 127.0.0.1."""

    def __init__(self, app, threads: int = 4):
        self.server = waitress.server.create_server(app, host="127.0.0.1", port=0,
                                                    threads=threads, clear_untrusted_proxy_headers=True)
        self.port = self.server.effective_port
        self.url = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.close()
        self.thread.join(timeout=5)


@pytest.fixture
def live_server(wsgi_app) -> Iterator[LiveServer]:
    with LiveServer(wsgi_app) as server:
        yield server


def unique(prefix: str = "p") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"
