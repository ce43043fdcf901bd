"""An attacker's probe over every operation the server describes, on every backend.

Each operation of ``/_api/openapi.json`` (so a new route is probed without editing this
file) is sent hostile credentials, headers, query strings and bodies. Whatever the
answer, it is never a 5xx, a 4xx carries the JSON error body (or the HTML error page),
every answer has the security headers, none is large or slow, and the store holds
exactly what it held before.
"""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import quote

import pytest
import transaction
from conftest import basic

MAX_BYTES = 1_000_000  # no answer to a hostile request may be this large
#: CPU seconds the request may cost the app (this thread's CPU time, not the wall clock:
#: on a loaded CI machine the wall clock also counts waiting for a core).
MAX_SECONDS = 2.0


def _basic(value: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(value.encode()).decode()}


def _cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


#: Credentials an attacker sends (never a valid one: those are probed separately).
HOSTILE_AUTH = {
    "garbage Basic": {"Authorization": "Basic !!!"},
    "empty Basic": {"Authorization": "Basic"},
    "Bearer": {"Authorization": "Bearer x"},
    "Digest": {"Authorization": "Digest username=x"},
    "100 KB username": _basic("u" * 100_000 + ":pw"),
    "newline username": _basic("test\nuser:abc123"),
    "NUL username": _basic("test\x00user:abc123"),
    "wrong password": basic("testuser", "wrong"),
}

#: Query strings for GETs (on top of the operation's own URL).
HOSTILE_QUERIES = [
    "limit=%C2%B2", "limit=-1", "limit=99999999999999999999999",
    f"cursor={_cursor([1, [1]])}", f"cursor={_cursor([None, None])}",
    f"cursor={_cursor(10**23)}", "cursor=%%%", "cursor=" + "A" * 5000,
    "tags=" + ",".join(str(i) for i in range(2000)),
    "format=nonsense", "sort=" + "x" * 1000, "since=9999-99-99", "until=0000-00-00",
    "labels=" + ",".join(f"l{i}" for i in range(5000)),
]


def _deep(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


HOSTILE_BODIES = {
    "deep object": _deep(1_000),
    "deep list": "[" * 1_000 + "]" * 1_000,
    "5,000-digit integer": '{"label": "x", "timestamp": "2024-01-01 00:00:00", "n": '
                           + "9" * 5_000 + "}",
    "400-digit duration": '{"label": "x", "timestamp": "2024-01-01 00:00:00", "duration": '
                          + "9" * 400 + "}",
    "timestamp overflow": '{"label": "x", "timestamp": "9999-12-31 23:59:59-23:59"}',
    "NUL": '{"label": "x\\u0000", "name": "\\u0000", "user": "\\u0000"}',
    "not JSON": "{'label': ",
    "lone surrogate": '{"label": "\\udce9", "description": "\\udce9"}',
}


def _operations(testapp) -> list[tuple[str, str]]:
    description = testapp.get("/_api/openapi.json").json
    found = []
    for template, item in description["paths"].items():
        path = (template.replace("{project}", "TestProject2")  # public: anonymous reads
                .replace("{label}", "20100709-154255")
                .replace("{tag}", "foobar").replace("{path}", "app.css"))
        for method in ("get", "put", "post", "delete"):
            if method in item:
                found.append((method.upper(), path))
    return found


def _destructive(method: str, path: str) -> bool:
    """Operations a *valid* caller would really carry out with any body (not probed so)."""
    return method == "DELETE" or any(
        word in path for word in ("@@delete", "@@bulk", "@@revoke", "@@visibility", "_logout"))


def _snapshot(storage) -> dict:
    """Everything a probe could have changed: projects, grants, records, users."""
    with transaction.manager:
        state = {}
        for project in storage.list_projects(None):
            page = storage.query_records(project.id)
            state[project.id] = (project.name, project.description,
                                 sorted(storage.get_grants(project.id).items()),
                                 sorted((r.label, r.revision) for r in page.records))
        state["users"] = sorted(u.username for u in storage.list_users())
        return state


def _check(response, what: str, started: float) -> None:
    elapsed = time.thread_time() - started
    assert response.status_int < 500, f"{what}: {response.status}\n{response.text[:500]}"
    assert len(response.body) < MAX_BYTES, f"{what}: {len(response.body)} bytes"
    assert elapsed < MAX_SECONDS, f"{what}: {elapsed:.2f} s of CPU"
    assert response.headers.get("X-Content-Type-Options") == "nosniff", what
    if response.status_int >= 400 and response.content_type == "application/json":
        body = response.json
        assert {"error", "detail"} <= set(body), f"{what}: {body}"


def _send(testapp, method: str, path: str, what: str, **kw):
    started = time.thread_time()
    response = testapp.request(path, method=method, expect_errors=True, **kw)
    _check(response, what, started)
    return response


@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_hostile_credentials_on_every_operation(testapp, wsgi_app, accept):
    storage = wsgi_app.registry["sumatra.storage"]
    before = _snapshot(storage)
    for method, path in _operations(testapp):
        for name, headers in HOSTILE_AUTH.items():
            response = _send(testapp, method, path, f"{method} {path} with {name}",
                             headers={**headers, "Accept": accept})
            assert response.status_int != 200 or method == "GET", (method, path, name)
    assert _snapshot(storage) == before


@pytest.mark.parametrize("who", ["anonymous", "testuser"])
def test_hostile_queries_on_every_read(testapp, who):
    headers = basic() if who == "testuser" else {}
    for method, path in _operations(testapp):
        if method != "GET":
            continue
        for query in HOSTILE_QUERIES:
            for accept in ("application/json", "text/html"):
                _send(testapp, "GET", f"{path}?{query}", f"GET {path}?{query[:40]} ({accept})",
                      headers={**headers, "Accept": accept})


def test_hostile_bodies_on_every_write(testapp, wsgi_app):
    storage = wsgi_app.registry["sumatra.storage"]
    before = _snapshot(storage)
    for method, path in _operations(testapp):
        if method == "GET" or _destructive(method, path):
            continue
        for name, body in HOSTILE_BODIES.items():
            for content_type in ("application/json", "application/x-www-form-urlencoded"):
                payload = body if content_type == "application/json" else (
                    "user=" + quote(body) + "&description=" + quote(body)
                    + "&id=" + quote(body) + "&username=" + quote(body))
                _send(testapp, method, path, f"{method} {path} with {name} ({content_type})",
                      headers={**basic(), "Content-Type": content_type},
                      body=payload.encode("utf-8", "surrogatepass"))
    assert _snapshot(storage) == before


BAD_NAMES = ["nl\n", "nl\r", "tab\t", "a/b", "_x", "x" * 101]


@pytest.mark.parametrize("name", [*BAD_NAMES, "permissions", "last", "tag", "tagged"])
def test_hostile_labels_are_refused(testapp, wsgi_app, name):
    storage = wsgi_app.registry["sumatra.storage"]
    before = _snapshot(storage)
    segment = quote(name, safe="")
    record = {"label": name, "timestamp": "2024-01-01 00:00:00"}
    response = _send(testapp, "PUT", f"/TestProject/{segment}/", f"PUT label {name!r}",
                     headers={**basic(), "Content-Type": "application/json"},
                     body=json.dumps(record).encode())
    assert response.status_int in (400, 404, 405), response.status
    assert _snapshot(storage) == before


@pytest.mark.parametrize("name", BAD_NAMES)
def test_hostile_project_ids_are_refused(testapp, wsgi_app, name):
    storage = wsgi_app.registry["sumatra.storage"]
    before = _snapshot(storage)
    segment = quote(name, safe="")
    record = {"label": "ok", "timestamp": "2024-01-01 00:00:00"}
    for path, body in ((f"/{segment}/", {"name": "x"}), (f"/{segment}/ok/", record)):
        response = _send(testapp, "PUT", path, f"PUT {path!r}",
                         headers={**basic(), "Content-Type": "application/json"},
                         body=json.dumps(body).encode())
        assert response.status_int in (400, 404, 405), (path, response.status)
    assert _snapshot(storage) == before
