"""The authorisation matrix: every URL × method × caller × private/public project → status.

One table, read row by row: a row is a request; its two columns of seven
statuses are what each caller gets on a private and on a public project.
Every refused write must leave storage exactly as it was; anonymous callers
never write and never see a username; nobody below project admin changes grants.
"""

from __future__ import annotations

import json

import pytest
import transaction
import webtest
from argon2 import PasswordHasher
from conftest import basic

import pyramid_sumatra
from pyramid_sumatra.records import build_stored_record
from pyramid_sumatra.services.projects import create_project
from pyramid_sumatra.storage.types import ANONYMOUS, RecordQuery, UserInfo

#: Columns: who calls. "wrongpw" is the writer with a wrong password.
CALLERS = ("anonymous", "stranger", "reader", "writer", "padmin", "root", "wrongpw")
ROLES = {"reader": "read", "writer": "write", "padmin": "admin"}
USERNAMES = ("stranger", "reader", "writer", "padmin", "root")
PASSWORD = "matrix-password"
#: Cheap argon2id parameters (verification follows the stored hash's): the matrix checks
#: a password some 300 times, and the default cost is made to be slow.
CHEAP_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)

RECORD = {"timestamp": "2024-01-31 10:15:00", "reason": "matrix", "user": "Jo Researcher",
          "tags": ["t"]}
REC = "application/vnd.sumatra.record-v4+json"
PRJ = "application/vnd.sumatra.project-v4+json"
GRANT_TO_STRANGER = ("application/json", {"user": "stranger", "role": "admin"})
GRANT_TO_SELF = ("application/json", {"user": "{me}", "role": "admin"})


def statuses(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.split())


# (method, url, body, private project, public project); each status column is a caller:
#  anonymous stranger reader writer padmin root wrongpw
MATRIX = [
    ("GET", "/", None, "200 200 200 200 200 200 401", "200 200 200 200 200 200 401"),
    ("GET", "/{p}/", None, "401 403 200 200 200 200 401", "200 200 200 200 200 200 401"),
    ("GET", "/{p}/?tags=t", None, "401 403 200 200 200 200 401", "200 200 200 200 200 200 401"),
    ("PUT", "/{p}/", (PRJ, {"description": "changed"}),
     "401 403 403 200 200 200 401", "401 403 403 200 200 200 401"),
    ("DELETE", "/{p}/", None, "401 403 403 403 204 204 401", "401 403 403 403 204 204 401"),
    ("GET", "/{p}/r1/", None, "401 403 200 200 200 200 401", "200 200 200 200 200 200 401"),
    ("PUT", "/{p}/r1/", (REC, {**RECORD, "label": "r1", "outcome": "changed"}),
     "401 403 403 200 200 200 401", "401 403 403 200 200 200 401"),
    ("PUT", "/{p}/r9/", (REC, {**RECORD, "label": "r9"}),
     "401 403 403 201 201 201 401", "401 403 403 201 201 201 401"),
    ("DELETE", "/{p}/r1/", None, "401 403 403 204 204 204 401", "401 403 403 204 204 204 401"),
    ("GET", "/{p}/tag/t/", None, "401 403 200 200 200 200 401", "200 200 200 200 200 200 401"),
    ("DELETE", "/{p}/tag/t/", None, "401 403 403 200 200 200 401",
     "401 403 403 200 200 200 401"),
    ("GET", "/{p}/tagged/t/", None, "401 403 200 200 200 200 401",
     "200 200 200 200 200 200 401"),
    ("DELETE", "/{p}/tagged/t/", None, "401 403 403 200 200 200 401",
     "401 403 403 200 200 200 401"),
    ("GET", "/{p}/last/", None, "401 403 200 200 200 200 401", "200 200 200 200 200 200 401"),
    # Usernames: never to anonymous callers, even of a public project.
    ("GET", "/{p}/permissions/", None, "401 403 200 200 200 200 401",
     "401 200 200 200 200 200 401"),
    ("POST", "/{p}/permissions/", GRANT_TO_STRANGER, "401 403 403 403 200 200 401",
     "401 403 403 403 200 200 401"),
    # Escalation: granting oneself admin needs admin already.
    ("POST", "/{p}/permissions/", GRANT_TO_SELF, "401 403 403 403 200 200 401",
     "401 403 403 403 200 200 401"),
    ("DELETE", "/{p}/permissions/?user=reader", None, "401 403 403 403 200 200 401",
     "401 403 403 403 200 200 401"),
    # A project that does not exist: 404 to anyone; any user may create it.
    ("GET", "/Missing/", None, "404 404 404 404 404 404 401", "404 404 404 404 404 404 401"),
    ("GET", "/Missing/r1/", None, "404 404 404 404 404 404 401",
     "404 404 404 404 404 404 401"),
    ("PUT", "/New/", (PRJ, {"name": "New"}), "401 201 201 201 201 201 401",
     "401 201 201 201 201 201 401"),
    ("PUT", "/New/r1/", (REC, {**RECORD, "label": "r1"}), "401 201 201 201 201 201 401",
     "401 201 201 201 201 201 401"),
]
PROJECTS = {"private": "Priv", "public": "Pub"}


def reset(storage) -> None:
    """Both projects as the matrix expects them: grants, two records tagged t."""
    with transaction.manager:
        for project_id in ("Priv", "Pub", "New"):
            storage.delete_project(project_id)
        for project_id in ("Priv", "Pub"):
            create_project(storage, project_id, None, project_id, "the matrix")
            for user, role in ROLES.items():
                storage.set_grant(project_id, user, role)
            for label in ("r1", "r2"):
                storage.put_record(build_stored_record(project_id, {**RECORD, "label": label}),
                                   create=True)
        storage.set_grant("Pub", ANONYMOUS, "read")


def snapshot(storage) -> dict:
    state = {}
    for project_id in ("Priv", "Pub", "New"):
        info = storage.get_project(project_id)
        page = storage.query_records(project_id, RecordQuery(with_body=True)) if info else None
        state[project_id] = info and (
            info.name, info.description, storage.get_grants(project_id),
            sorted((r.label, r.body) for r in page.records))
    return state


def caller_headers(caller: str) -> dict[str, str]:
    if caller == "anonymous":
        return {}
    if caller == "wrongpw":
        return basic("writer", "not-the-password")
    return basic(caller, PASSWORD)


@pytest.fixture
def matrix_app(app_settings):
    # The matrix tries the wrong password often: no lockout here (tests/test_web_security).
    app = pyramid_sumatra.main({}, **{**app_settings, "sumatra.login_max_failures": "100000"})
    storage = app.registry["sumatra.storage"]
    with transaction.manager:
        for name in USERNAMES:
            storage.put_user(UserInfo(name, CHEAP_HASH, is_admin=name == "root"))
    reset(storage)
    yield webtest.TestApp(app), storage
    storage.dispose()


def test_authorisation_matrix(matrix_app):
    app, storage = matrix_app
    mismatches, cases = [], 0
    for method, url, body, *expected in MATRIX:
        for visibility, row in zip(PROJECTS, expected, strict=True):
            for caller, want in zip(CALLERS, statuses(row), strict=True):
                cases += 1
                path = url.replace("{p}", PROJECTS[visibility])
                headers = {"Accept": "application/json", **caller_headers(caller)}
                data = b""
                if body is not None:
                    headers["Content-Type"] = body[0]
                    data = json.dumps(body[1]).encode().replace(b"{me}", caller.encode())
                before = snapshot(storage) if method != "GET" else None
                res = app.request(path, method=method, headers=headers, body=data,
                                  status="*", expect_errors=True)
                where = f"{method} {path} as {caller} ({visibility})"
                if res.status_int != want:
                    mismatches.append(f"{where}: {res.status_int}, expected {want}")
                check_response(res, caller, where, mismatches)
                if method != "GET":
                    if res.status_int >= 400:
                        if snapshot(storage) != before:
                            mismatches.append(f"{where}: refused ({res.status_int}) but "
                                              "storage changed")
                    else:
                        reset(storage)
    assert cases == len(MATRIX) * 2 * len(CALLERS)
    assert mismatches == [], "\n".join(mismatches)


def check_response(res, caller: str, where: str, mismatches: list[str]) -> None:
    if res.status_int == 401:
        if res.headers.get("WWW-Authenticate") != 'Basic realm="Sumatra Server API"':
            mismatches.append(f"{where}: 401 without the Basic challenge")
    if res.status_int >= 400 and set(res.json) < {"error", "detail"}:
        mismatches.append(f"{where}: error body {res.text[:80]!r} lacks error/detail")
    if caller == "anonymous":
        leaked = [name for name in USERNAMES if name in res.text]
        if leaked:
            mismatches.append(f"{where}: usernames {leaked} shown to an anonymous caller")


def test_project_list_shows_each_caller_only_what_they_may_see(matrix_app):
    app, _ = matrix_app
    visible = {"anonymous": {"Pub"}, "stranger": {"Pub"},
               "reader": {"Pub", "Priv"},
               "root": {"Pub", "Priv"}}
    for caller, ids in visible.items():
        res = app.get("/", headers={"Accept": "application/json", **caller_headers(caller)})
        assert {p["id"] for p in res.json} == ids, caller
