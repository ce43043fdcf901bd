"""Personal API tokens: the rules (services/tokens.py), the pages, the policy, the CLI, the log."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest.mock import patch

import pytest
import transaction
import webtest
from apps import make_app  # noqa: F401 - fixture
from conftest import basic

from pyramid_sumatra.cli import main as cli_main
from pyramid_sumatra.services import tokens
from pyramid_sumatra.storage import Storage
from pyramid_sumatra.storage.types import TokenInfo

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}


def make_token(storage, name: str = "laptop", username: str = "testuser", **kw) -> str:
    with transaction.manager:
        return tokens.create(storage, username, name, **kw)[1]


def login(app: webtest.TestApp) -> None:
    form = app.get("/_login").forms[0]
    form["username"], form["password"] = "testuser", "abc123"
    form.submit(status=303)


def csrf(app: webtest.TestApp) -> str:
    page = app.get("/_tokens", headers=HTML).text
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


# -- the rules ---------------------------------------------------------------------------


NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("text, expected", [
    ("30d", "2026-01-31 00:00:00.000000"), ("12h", "2026-01-01 12:00:00.000000"),
    ("90m", "2026-01-01 01:30:00.000000"), ("2w", "2026-01-15 00:00:00.000000"),
    ("2026-03-01", "2026-03-01 00:00:00.000000"), ("", None), ("never", None), (None, None)])
def test_expiry_parsing(text, expected):
    assert tokens.parse_expiry(text, NOW) == expected


@pytest.mark.parametrize("text", ["tomorrow", "30", "-1d", "0d", "2025-12-31", "99999w",
                                  "2026-02-30", "d30"])
def test_bad_expiries_name_the_field(text):
    with pytest.raises(tokens.TokenError) as caught:
        tokens.parse_expiry(text, NOW)
    assert caught.value.field == "expires"


@pytest.mark.parametrize("name", ["", " ", "a" * 65, "-dash-first", "tab\there", "<b>",
                                  "ünïcode", "x/y"])
def test_bad_names(name):
    with pytest.raises(tokens.TokenError, match="name"):
        tokens.check_name(name)


def test_scopes_and_projects():
    assert tokens.check_scope("read") == "read"
    with pytest.raises(tokens.TokenError, match="scope"):
        tokens.check_scope("admin")
    assert tokens.check_projects(["A", " B ", "A", ""]) == ["A", "B"]
    with pytest.raises(tokens.TokenError, match="projects"):
        tokens.check_projects(["ok", "not/ok"])
    with pytest.raises(tokens.TokenError, match="projects"):
        tokens.check_projects([f"p{i}" for i in range(101)])


def test_token_shape_and_hash():
    token = TokenInfo(id="a1b2c3d4e5f6", username="u", name="n", secret_hash="")
    assert tokens.split("smt_a1b2c3d4e5f6_" + "s" * 43) == ("a1b2c3d4e5f6", "s" * 43)
    assert tokens.split("smt_xyz_secret") is None and not tokens.looks_like_token("abc123")
    assert len(tokens.hash_secret("s")) == 64
    assert tokens.allows(token, "view", None) and tokens.allows(token, "edit", "P")
    assert not tokens.allows(token, "manage", "P")
    token.scope, token.projects = "read", ["P"]
    assert tokens.allows(token, "view", "P") and not tokens.allows(token, "edit", "P")
    assert not tokens.allows(token, "view", "Q") and tokens.allows(token, "view", None)
    assert tokens.visible(token, ["P", "Q"]) == {"P"}


def test_the_secret_is_shown_once_and_stored_hashed(storage, demo):
    with transaction.manager:
        token, secret = tokens.create(storage, "testuser", "laptop", scope="read")
    assert re.fullmatch(r"smt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", secret)
    with transaction.manager:
        stored = storage.get_token(token.id)
    assert stored.secret_hash == tokens.hash_secret(secret.split("_", 2)[2])
    assert secret not in json.dumps(stored.__dict__)
    with transaction.manager:
        assert tokens.verify(storage, "testuser", secret).name == "laptop"
        assert tokens.verify(storage, "someone", secret) is None  # another user's name
        altered = secret[:-1] + ("y" if secret.endswith("x") else "x")
        assert tokens.verify(storage, "testuser", altered) is None
    with pytest.raises(tokens.TokenError, match="already has a token"), transaction.manager:
        tokens.create(storage, "testuser", "laptop")
    with pytest.raises(tokens.TokenError, match="no user"), transaction.manager:
        tokens.create(storage, "ghost", "laptop")


def test_last_used_is_written_at_most_once_a_minute(storage, demo):
    secret = make_token(storage)
    touches = []
    original = Storage.touch_token
    with patch.object(Storage, "touch_token",
                      lambda self, *a: touches.append(a) or original(self, *a)):
        for offset in (0, 10, 59, 61):
            with transaction.manager:
                now = datetime.now(UTC) + timedelta(seconds=offset)
                assert tokens.verify(storage, "testuser", secret, now=now) is not None
    assert len(touches) == 2  # the first use, then a minute later
    with transaction.manager:
        assert storage.list_tokens("testuser")[0].last_used == touches[-1][1]


# -- the policy: a token as the Basic password, on every backend ------------------------


def test_a_write_token_reads_and_writes(testapp, storage):
    secret = make_token(storage)
    auth = basic(password=secret)
    testapp.get("/TestProject/", headers={**JSON, **auth}, status=200)
    testapp.put_json("/Tokened/", {"name": "by token"}, headers={**JSON, **auth}, status=201)
    testapp.put_json("/Tokened/r1/", {"label": "r1", "timestamp": "2026-01-01 00:00:00"},
                     headers={**JSON, **auth}, status=201)
    # No token manages: grants and project deletion take the password.
    testapp.delete("/Tokened/", headers={**JSON, **auth}, status=403)
    testapp.post_json("/Tokened/permissions/", {"user": "anonymous"},
                      headers={**JSON, **auth}, status=403)


def test_a_read_token_cannot_write(testapp, storage):
    auth = basic(password=make_token(storage, scope="read"))
    testapp.get("/TestProject/", headers={**JSON, **auth}, status=200)
    res = testapp.put_json("/TestProject/new/", {"label": "new"},
                           headers={**JSON, **auth}, status=403)
    assert res.json["error"] == "forbidden"
    testapp.put_json("/ByReadToken/", {"name": "x"}, headers={**JSON, **auth}, status=403)


def test_a_project_limited_token_reaches_only_its_projects(testapp, storage):
    auth = basic(password=make_token(storage, projects=["TestProject"]))
    testapp.get("/TestProject/", headers={**JSON, **auth}, status=200)
    testapp.get("/TestProject2/", headers={**JSON, **auth}, status=403)
    testapp.put_json("/Elsewhere/", {"name": "x"}, headers={**JSON, **auth}, status=403)
    listed = testapp.get("/", headers={**JSON, **auth}).json
    assert [p["id"] for p in listed] == ["TestProject"]
    assert {p["id"] for p in testapp.get("/", headers={**JSON, **basic()}).json} >= {
        "TestProject", "TestProject2"}


def test_revoked_and_expired_tokens_are_401_at_once(testapp, storage):
    secret = make_token(storage)
    auth = {**JSON, **basic(password=secret)}
    testapp.get("/TestProject/", headers=auth, status=200)
    with transaction.manager:
        assert tokens.revoke(storage, "testuser", "laptop")
    res = testapp.get("/TestProject/", headers=auth, status=401)
    assert "revoked" in res.json["detail"]
    # Expired: stored with a past expiry (create refuses one).
    token_id, raw = tokens.split(make_token(storage, "old"))
    with transaction.manager:
        tokens.revoke(storage, "testuser", "old")
        storage.put_token(TokenInfo(id=token_id, username="testuser", name="old",
                                    secret_hash=tokens.hash_secret(raw), created="x",
                                    expires="2020-01-01 00:00:00.000000"))
    testapp.get("/TestProject/", headers={**JSON, **basic(
        password=f"smt_{token_id}_{raw}")}, status=401)
    # A deleted user's tokens go with it.
    secret = make_token(storage, "third")
    with transaction.manager:
        storage.delete_user("testuser")
    testapp.get("/", headers={**JSON, **basic(password=secret)}, status=401)


def test_token_failures_are_throttled_like_passwords(make_app, tmp_path):  # noqa: F811
    app = make_app(**{"sumatra.login_max_failures": "3"})
    storage = app.app.registry["sumatra.storage"]
    secret = make_token(storage)
    wrong = secret[:-4] + "AAAA"
    for _ in range(3):
        app.get("/TestProject/", headers={**JSON, **basic(password=wrong)}, status=401)
    res = app.get("/TestProject/", headers={**JSON, **basic(password=secret)}, status=429)
    assert res.headers["Retry-After"] == "1"


def test_the_access_log_names_the_token_never_the_secret(testapp, storage, caplog):
    secret = make_token(storage, "ci runner")
    with caplog.at_level(logging.INFO, logger="pyramid_sumatra.access"):
        testapp.get("/TestProject/", headers={**JSON, **basic(password=secret)})
        testapp.get("/TestProject/", headers={**JSON, **basic()})
    token_line, password_line = (json.loads(r.getMessage()) for r in caplog.records
                                 if r.name == "pyramid_sumatra.access")
    assert (token_line["user"], token_line["token"]) == ("testuser", "ci runner")
    assert (password_line["user"], password_line["token"]) == ("testuser", None)
    # split, not str.split: the secret itself may hold "_" (it is URL-safe base64)
    assert secret not in caplog.text and tokens.split(secret)[1] not in caplog.text


# -- the pages --------------------------------------------------------------------------


def test_create_list_and_revoke_in_the_browser(testapp, storage):
    testapp.get("/_tokens", headers=HTML, status=302)  # log in first
    testapp.get("/_tokens", headers=JSON, status=401)
    login(testapp)
    assert 'href="http://localhost/_tokens"' in testapp.get("/", headers=HTML).text
    form = testapp.get("/_tokens", headers=HTML).forms["token-form"]
    form["name"], form["scope"], form["expires"], form["projects"] = \
        "laptop", "read", "30d", "TestProject, TestProject2"
    res = form.submit(headers=HTML, status=201)
    assert res.headers["Cache-Control"] == "no-store"
    secret = res.html.find(id="new-secret").text
    assert tokens.looks_like_token(secret)
    testapp.get("/TestProject/", headers={**JSON, **basic(password=secret)}, status=200)
    listed = testapp.get("/_tokens", headers=JSON).json
    assert listed["available"] is True
    [entry] = listed["tokens"]
    assert (entry["name"], entry["scope"], entry["projects"], entry["status"]) == (
        "laptop", "read", ["TestProject", "TestProject2"], "active")
    assert entry["last_used"] is not None and entry["expires"] > entry["created"]
    assert secret not in testapp.get("/_tokens", headers=HTML).text  # shown once only
    [row] = [f for f in testapp.get("/_tokens", headers=HTML).forms.values()
             if f.action.endswith("/_tokens/revoke")]
    assert row["name"].value == "laptop"
    row.submit(status=303)
    assert testapp.get("/_tokens", headers=JSON).json["tokens"] == []
    testapp.get("/TestProject/", headers={**JSON, **basic(password=secret)}, status=401)


@pytest.mark.parametrize("field, value", [
    ("name", "x" * 65), ("name", "<script>"), ("expires", "soon"), ("expires", "-3d"),
    ("scope", "admin"), ("projects", "a/b")])
def test_bad_input_is_400_naming_the_field(testapp, field, value):
    login(testapp)
    data = {"name": "ok", "scope": "write", "expires": "", "projects": "",
            field: value, "csrf_token": csrf(testapp)}
    res = testapp.post("/_tokens/create", data, headers=JSON, status=400)
    assert set(res.json) >= {"error", "detail"} and res.json["field"] == field
    assert res.json["error"] == f"invalid {field}"
    page = testapp.post("/_tokens/create", data, headers=HTML, status=400)
    assert field in page.html.find(id="token-error").text
    assert testapp.get("/_tokens", headers=JSON).json["tokens"] == []


def test_token_forms_need_csrf_and_a_password_login(testapp, storage):
    login(testapp)
    testapp.post("/_tokens/create", {"name": "x"}, headers=JSON, status=400)  # no CSRF token
    testapp.post("/_tokens/revoke", {"name": "x"}, headers=JSON, status=400)
    auth = basic(password=make_token(storage))
    fresh = webtest.TestApp(testapp.app)
    fresh.get("/_tokens", headers={**JSON, **auth}, status=403)  # no token mints tokens
    fresh.post("/_tokens/create", {"name": "more"}, headers={**JSON, **auth}, status=403)
    fresh.post("/_tokens/create", {"name": "by-password"}, headers={**JSON, **basic()},
               status=201)


def test_a_backend_without_token_hooks_still_works(testapp, storage, monkeypatch):
    secret = make_token(storage)
    monkeypatch.setattr(Storage, "tokens_available", property(lambda self: False))
    testapp.get("/TestProject/", headers={**JSON, **basic(password=secret)}, status=401)
    testapp.get("/TestProject/", headers={**JSON, **basic()}, status=200)
    login(testapp)
    assert testapp.get("/_tokens", headers=HTML).html.find(id="tokens-unavailable")
    res = testapp.get("/_tokens", headers=HTML)
    token = re.search(r'name="csrf_token" value="([^"]+)"', res.text).group(1)
    testapp.post("/_tokens/create", {"name": "x", "csrf_token": token}, headers=JSON,
                 status=404)


# -- the command line -------------------------------------------------------------------


def run_cli(ini: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with patch.object(sys, "stdout", out), patch.object(sys, "stderr", err):
        try:
            code = cli_main([str(ini), *args])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_cli_token_create_list_revoke(app_settings, demo, wsgi_app, tmp_path):
    ini = tmp_path / "cli.ini"
    ini.write_text("[app:main]\nuse = egg:pyramid_sumatra\n" + "".join(
        f"{k} = {v}\n" for k, v in app_settings.items()))
    code, out, _ = run_cli(ini, "token", "create", "testuser", "ci", "--expires", "30d",
                           "--scope", "read", "--project", "TestProject")
    assert code == 0
    secret = out.strip().splitlines()[-1]
    app = webtest.TestApp(wsgi_app)
    app.get("/TestProject/", headers={**JSON, **basic(password=secret)}, status=200)
    app.get("/TestProject2/", headers={**JSON, **basic(password=secret)}, status=403)
    code, out, _ = run_cli(ini, "token", "list", "testuser")
    assert code == 0 and out.startswith("ci\tread\tTestProject\t") and secret not in out
    assert "last used 20" in out  # the request above
    for args, message in [(("create", "testuser", "ci"), "already has a token"),
                          (("create", "testuser", "x", "--expires", "soon"), "expires:"),
                          (("create", "ghost", "x"), "no user 'ghost'"),
                          (("revoke", "testuser", "nope"), "no token named 'nope'")]:
        code, _, err = run_cli(ini, "token", *args)
        assert code == 1 and message in err, (args, err)
    assert run_cli(ini, "token", "create", "testuser", "x", "--scope", "all")[0] == 2
    code, out, _ = run_cli(ini, "token", "revoke", "testuser", "ci")
    assert code == 0 and "revoked" in out
    app.get("/TestProject/", headers={**JSON, **basic(password=secret)}, status=401)
