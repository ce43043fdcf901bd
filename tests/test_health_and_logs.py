"""``/_health`` and ``/_ready`` (incl. storage down), and the JSON access log with request ids."""

from __future__ import annotations

import json
import logging
import re

import pytest
import webtest
from conftest import basic

import pyramid_sumatra


def test_health_answers(testapp):
    res = testapp.get("/_health")
    assert res.json == {"status": "ok"}


def test_ready_when_storage_answers(testapp):
    res = testapp.get("/_ready")
    assert res.status_int == 200 and res.json["ok"] is True


@pytest.mark.parametrize("url", [
    "sqlite:///{tmp_path}",  # a directory, not a database file
    "postgresql+psycopg://postgres@127.0.0.1:1/nothing?connect_timeout=2",  # nobody listens
])
def test_ready_is_503_when_storage_is_down(tmp_path, url):
    app = pyramid_sumatra.main({}, **{"sqlalchemy.url": url.format(tmp_path=tmp_path),
                                      "sumatra.secret": "x" * 32})
    try:
        testapp = webtest.TestApp(app)
        res = testapp.get("/_ready", status=503)
        assert res.json == {"ok": False, "status": "unavailable"}  # no details to anyone
        assert res.headers["Retry-After"] == "5"
        assert testapp.get("/_health").json == {"status": "ok"}  # the process still lives
    finally:
        app.registry["sumatra.storage"].dispose()


# -- access log ---------------------------------------------------------------------------


@pytest.fixture
def access_lines(caplog):
    caplog.set_level(logging.INFO, logger="pyramid_sumatra.access")

    def lines() -> list[dict]:
        return [json.loads(r.getMessage()) for r in caplog.records
                if r.name == "pyramid_sumatra.access"]

    return lines


def test_one_json_line_per_request_with_the_callers_request_id(testapp, access_lines):
    res = testapp.get("/TestProject/", headers={**basic(), "X-Request-Id": "lb-1234.abc",
                                                "Accept": "application/json"})
    assert res.headers["X-Request-Id"] == "lb-1234.abc"
    [line] = access_lines()
    assert line["request_id"] == "lb-1234.abc"
    assert (line["method"], line["path"], line["status"], line["user"]) == (
        "GET", "/TestProject/", 200, "testuser")
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert set(line) >= {"time", "method", "path", "status", "duration_ms", "request_id",
                         "user", "remote_addr"}


@pytest.mark.parametrize("given", [None, "", "x" * 200, "has spaces", "new\nline"])
def test_request_id_is_generated_unless_a_plain_token_is_given(testapp, access_lines, given):
    headers = {} if given is None else {"X-Request-Id": given}
    res = testapp.get("/_health", headers=headers)
    request_id = res.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert access_lines()[-1]["request_id"] == request_id


def test_errors_and_anonymous_callers_are_logged_too(testapp, access_lines):
    testapp.get("/TestProject/", headers={"Accept": "application/json"}, status=401)
    testapp.get("/TestProject/", headers={**basic(password="wrong-pw"),
                                          "Accept": "application/json"}, status=401)
    testapp.put("/TestProject/x/", b"{", headers={**basic(), "Content-Type": "application/json"},
                status=400)
    testapp.get("/caf%ff/", status=400)
    lines = access_lines()
    assert [(x["status"], x["user"]) for x in lines] == [
        (401, None), (401, None), (400, "testuser"), (400, None)]
    assert lines[3]["path"] == "/caf\ufffd/"  # bytes that are not UTF-8, still one line
    assert len({x["request_id"] for x in lines}) == 4
    # Neither password is logged (request ids are hex, so "abc123" is checked outside them).
    logged = json.dumps([{k: v for k, v in x.items() if k != "request_id"} for x in lines])
    assert "abc123" not in logged and "wrong-pw" not in json.dumps(lines)
