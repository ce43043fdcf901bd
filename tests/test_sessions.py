"""Sessions end when they should (defect 3), and CSRF is skipped only for Basic (defect 8).

Each test logs in with the form, keeps a copy of the session cookie, makes the event
happen, and replays the copy: a private project must then be out of reach (401 for
the API, the login page for a browser), on every backend.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from unittest.mock import patch

import pytest
import transaction
import webtest
from conftest import basic

from pyramid_sumatra.cli import main as cli_main
from pyramid_sumatra.passwords import hash_password
from pyramid_sumatra.storage.types import UserInfo

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}
COOKIE = "sumatra_session"


def login(app: webtest.TestApp, username: str = "testuser", password: str = "abc123") -> str:
    form = app.get("/_login").forms[0]
    form["username"], form["password"] = username, password
    form.submit(status=303)
    return app.cookies[COOKIE]


def csrf_token(app: webtest.TestApp) -> str:
    page = app.get("/", headers=HTML).text
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def replay(wsgi_app, cookie: str) -> webtest.TestApp:
    """Another client holding a copy of the cookie."""
    other = webtest.TestApp(wsgi_app)
    other.set_cookie(COOKIE, cookie)
    return other


def assert_session_dead(wsgi_app, cookie: str) -> None:
    storage = wsgi_app.registry["sumatra.storage"]
    app = replay(wsgi_app, cookie)
    app.get("/TestProject/", headers=JSON, status=401)
    res = app.get("/TestProject/", headers=HTML, status=302)
    assert "/_login" in res.headers["Location"]
    # Nor may it create a project (the old cookie did, for 24 h).
    app = replay(wsgi_app, cookie)
    app.put_json("/Stolen/", {"name": "x"}, headers=JSON, status=401)
    with transaction.manager:
        assert storage.get_project("Stolen") is None


def assert_session_alive(wsgi_app, cookie: str) -> None:
    replay(wsgi_app, cookie).get("/TestProject/", headers=JSON, status=200)


def test_logout_ends_the_copied_session(testapp, wsgi_app):
    cookie = login(testapp)
    assert_session_alive(wsgi_app, cookie)
    testapp.post("/_logout", {"csrf_token": csrf_token(testapp)}, status=303)
    assert_session_dead(wsgi_app, cookie)
    login(testapp)  # a new login works again
    testapp.get("/TestProject/", headers=JSON, status=200)


def test_logout_ends_the_users_other_sessions_too(testapp, wsgi_app):
    other = webtest.TestApp(wsgi_app)
    other_cookie = login(other)
    login(testapp)
    testapp.post("/_logout", {"csrf_token": csrf_token(testapp)}, status=303)
    assert_session_dead(wsgi_app, other_cookie)


def test_a_password_change_by_any_path_ends_sessions(testapp, wsgi_app, storage):
    cookie = login(testapp)
    with transaction.manager:  # not through the CLI: the stamp covers the hash itself
        user = storage.get_user("testuser")
        user.password_hash = hash_password("a new password")
        storage.put_user(user)
    assert_session_dead(wsgi_app, cookie)


def ini_for(settings: dict, tmp_path: Path) -> Path:
    ini = tmp_path / "cli.ini"
    ini.write_text("[app:main]\nuse = egg:pyramid_sumatra\n" + "".join(
        f"{key} = {value}\n" for key, value in settings.items()))
    return ini


def cli(ini: Path, *args: str, stdin: str = "") -> int:
    with patch.object(sys, "stdin", io.StringIO(stdin)):
        return cli_main([str(ini), *args])


def test_cli_passwd_ends_sessions(testapp, wsgi_app, app_settings, tmp_path):
    cookie = login(testapp)
    assert cli(ini_for(app_settings, tmp_path), "passwd", "testuser",
               stdin="another-pw\n") == 0
    assert_session_dead(wsgi_app, cookie)
    login(testapp, password="another-pw")


def test_cli_deluser_ends_sessions(testapp, wsgi_app, app_settings, tmp_path, storage):
    cookie = login(testapp)
    assert cli(ini_for(app_settings, tmp_path), "deluser", "testuser") == 0
    with transaction.manager:  # the same name again, as a new person
        storage.put_user(_user("testuser"))
    assert_session_dead(wsgi_app, cookie)


def _user(name: str) -> UserInfo:
    return UserInfo(username=name, password_hash=hash_password("abc123"))


def test_losing_the_admin_flag_ends_sessions(testapp, wsgi_app, storage):
    with transaction.manager:
        user = storage.get_user("testuser")
        user.is_admin = True
        storage.put_user(user)
    cookie = login(testapp)
    assert_session_alive(wsgi_app, cookie)
    with transaction.manager:
        user = storage.get_user("testuser")
        user.is_admin = False
        storage.put_user(user)
    assert_session_dead(wsgi_app, cookie)


def test_an_unrelated_change_keeps_the_session(testapp, wsgi_app, storage):
    cookie = login(testapp)
    with transaction.manager:
        storage.put_user(_user("someone-else"))
        storage.bump_session_generation("someone-else")
    assert_session_alive(wsgi_app, cookie)


# -- CSRF with an Authorization header that did not authenticate (defect 8) -----------


@pytest.mark.parametrize("header", ["Bearer x", "Basic", "Basic ", "Digest username=\"t\"",
                                    "", "Negotiate abc"])
def test_an_authorization_that_is_not_basic_is_401_not_the_session(testapp, header):
    login(testapp)
    res = testapp.put_json("/ViaSession/", {"name": "x"},
                           headers={**JSON, "Authorization": header}, status=401)
    assert res.json["error"] == "authentication required"
    assert res.headers["WWW-Authenticate"] == 'Basic realm="Sumatra Server API"'
    # A form post (no CSRF token) with the session cookie and such a header: refused too.
    testapp.post("/@@create", {"id": "ViaForm"}, headers={"Authorization": header},
                 status=401)
    for project in ("ViaSession", "ViaForm"):
        testapp.get(f"/{project}/", headers={**JSON, **basic()}, status=404)


def test_session_writes_need_the_csrf_token(testapp):
    login(testapp)
    testapp.put_json("/NoToken/", {"name": "x"}, headers=JSON, status=400)
    testapp.put_json("/WithToken/", {"name": "x"},
                     headers={**JSON, "X-CSRF-Token": csrf_token(testapp)}, status=201)


def test_real_basic_credentials_skip_the_csrf_check_even_with_a_cookie(testapp):
    login(testapp)
    testapp.put_json("/ViaBasic/", {"name": "x"}, headers={**JSON, **basic()}, status=201)
    # A wrong password with the cookie is 401, not the session's identity.
    testapp.put_json("/ViaBadBasic/", {"name": "x"},
                     headers={**JSON, **basic(password="wrong")}, status=401)


def test_logout_in_one_process_ends_the_session_in_another(testapp, wsgi_app, app_settings):
    """Two app instances over one store (two gunicorn workers): nothing is per process."""
    import pyramid_sumatra

    second = pyramid_sumatra.main({}, **{**app_settings, "sumatra.initdb": "false"})
    try:
        cookie = login(testapp)
        assert_session_alive(second, cookie)
        testapp.post("/_logout", {"csrf_token": csrf_token(testapp)}, status=303)
        assert_session_dead(second, cookie)
    finally:
        second.registry["sumatra.storage"].dispose()
