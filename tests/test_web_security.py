"""Web security: headers, cookies, secrets, password hashes, login throttling, CSRF."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import webtest
from apps import make_app  # noqa: F401 - fixture
from conftest import basic

import pyramid_sumatra
from pyramid_sumatra.headers import SECURITY_HEADERS

ROOT = Path(__file__).parent.parent
JSON_ACCEPT = {"Accept": "application/json"}


@pytest.fixture
def app(make_app):  # noqa: F811
    return make_app()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- headers ---------------------------------------------------------------------


@pytest.mark.parametrize("method,url,headers,status", [
    ("GET", "/", JSON_ACCEPT, 200),
    ("GET", "/", {"Accept": "text/html"}, 200),
    ("GET", "/TestProject/", JSON_ACCEPT, 401),
    ("GET", "/TestProject/", {**JSON_ACCEPT, **basic()}, 200),
    ("GET", "/TestProject/", {**JSON_ACCEPT, **basic(password="wrong")}, 401),
    ("GET", "/nope/", JSON_ACCEPT, 404),
    ("GET", "/TestProject2/", {"Accept": "image/png"}, 406),
    ("PUT", "/TestProject/x/", {**basic(), "Content-Type": "text/plain"}, 415),
    ("GET", "/_static/app.css", {}, 200),
    ("GET", "/_static/nothing.js", {}, 404),
    ("GET", "/_health", {}, 200),
    ("GET", "/_login", {}, 200),
    ("GET", "/_api/", {}, 200),
])
def test_security_headers_on_every_response(app, method, url, headers, status):
    res = app.request(url, method=method, headers=headers, status=status, body=b"x"
                      if method == "PUT" else b"")
    for name, value in SECURITY_HEADERS.items():
        assert res.headers[name] == value, name
    assert "Strict-Transport-Security" not in res.headers  # plain HTTP in development


def test_content_security_policy_allows_only_own_scripts_and_styles():
    csp = dict(part.split(" ", 1) for part in SECURITY_HEADERS["Content-Security-Policy"]
               .split("; "))
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in SECURITY_HEADERS["Content-Security-Policy"]


def test_pages_have_no_inline_script_or_style(app):
    """What the CSP would block: inline <script>, <style>, style= and on...= attributes."""
    records = app.get("/TestProject/", headers={**basic(), "Accept": "application/json"})
    record = records.json["records"][0].replace("http://localhost", "")
    labels = ",".join(url.rstrip("/").rsplit("/", 1)[1] for url in records.json["records"][:2])
    pages = ["/", "/TestProject/", record, "/TestProject/permissions/", "/TestProject/last/",
             f"/TestProject/@@compare?labels={labels}", "/TestProject/@@parameters",
             "/_login", "/_api/", "/nothing-here/",
             "/@@compare?records=TestProject/haggling,TestProject2/20141013-172504"]
    for page in pages:
        res = app.get(page, headers={**basic(), "Accept": "text/html"}, status="*")
        assert res.content_type == "text/html", page
        assert not re.search(r"<script(?![^>]*\bsrc=)", res.text), page
        assert "<style" not in res.text and " style=" not in res.text, page
        assert not re.search(r"\son[a-z]+=", res.text), page  # no inline event handlers


def test_hsts_when_served_over_https(make_app):  # noqa: F811
    res = make_app(**{"sumatra.secure_cookies": "true"}).get("/_health")
    assert res.headers["Strict-Transport-Security"].startswith("max-age=")


# -- session cookie, secrets, password hashes ---------------------------------------


def login(app: webtest.TestApp, username: str = "testuser", password: str = "abc123",
          status: int | str = 303) -> webtest.TestResponse:
    form = app.get("/_login").forms[0]
    form["username"], form["password"] = username, password
    return form.submit(status=status)


def test_session_cookie_is_httponly_and_samesite(app):
    res = login(app)
    cookie = res.headers["Set-Cookie"]
    assert cookie.startswith("sumatra_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "secure" not in cookie.lower()  # development serves plain HTTP


@pytest.fixture
def production_env(monkeypatch, tmp_path):
    """production.ini's environment, with SQLite standing in for PostgreSQL."""
    monkeypatch.setenv("SUMATRA_DATABASE_URL", f"sqlite:///{tmp_path}/prod.sqlite")
    monkeypatch.delenv("SUMATRA_SECRET", raising=False)
    monkeypatch.delenv("SUMATRA_BACKEND", raising=False)
    return tmp_path


def production_app():
    from pyramid.paster import get_app

    return get_app(str(ROOT / "production.ini"))


def test_production_refuses_to_start_without_a_secret(production_env):
    with pytest.raises(RuntimeError, match="SUMATRA_SECRET"):
        production_app()


@pytest.mark.parametrize("secret", ["", "change-me", "secret", "short"])
def test_require_secret_refuses_missing_or_default_secrets(tmp_path, secret):
    with pytest.raises(RuntimeError, match="sumatra.secret"):
        pyramid_sumatra.main({}, **{"sqlalchemy.url": f"sqlite:///{tmp_path}/s.sqlite",
                                    "sumatra.require_secret": "true",
                                    "sumatra.secret": secret})


def test_production_session_cookie_is_secure(production_env, monkeypatch):
    monkeypatch.setenv("SUMATRA_SECRET", os.urandom(32).hex())
    router = production_app()
    from pyramid_sumatra import build_storage, resolve_settings

    # The pipeline's app is the router; its storage needs the schema and a user.
    settings = resolve_settings({"sqlalchemy.url": os.environ["SUMATRA_DATABASE_URL"]})
    storage = build_storage(settings)
    storage.initialize()
    import transaction

    from pyramid_sumatra.demo import load_demo

    with transaction.manager:
        load_demo(storage)
    storage.dispose()
    app = webtest.TestApp(router, extra_environ={"wsgi.url_scheme": "https",
                                                 "HTTP_HOST": "records.example.org"})
    res = login(app)
    cookie = res.headers["Set-Cookie"]
    assert "secure" in cookie.lower() and "HttpOnly" in cookie
    assert res.headers["Strict-Transport-Security"].startswith("max-age=")


def test_passwords_are_stored_as_argon2id(app):
    user = app.app.registry["sumatra.storage"].get_user("testuser")
    assert user.password_hash.startswith("$argon2id$v=19$")
    assert "abc123" not in user.password_hash


# -- failed logins ------------------------------------------------------------------


def throttled_app(make_app, **settings):  # noqa: F811
    app = make_app(**{"sumatra.login_max_failures": "3", **settings})
    clock = FakeClock()
    app.app.registry["sumatra.login_throttle"].clock = clock
    return app, clock


def test_repeated_wrong_basic_passwords_get_429_with_retry_after(make_app):  # noqa: F811
    app, clock = throttled_app(make_app)
    url, accept = "/TestProject/", JSON_ACCEPT
    for _ in range(3):
        app.get(url, headers={**accept, **basic(password="guess")}, status=401)
    res = app.get(url, headers={**accept, **basic(password="abc123")}, status=429)
    assert res.headers["Retry-After"] == "1"
    assert res.json["error"] == "too many failed logins"
    clock.now += 1
    app.get(url, headers={**accept, **basic(password="guess")}, status=401)
    res = app.get(url, headers={**accept, **basic()}, status=429)
    assert res.headers["Retry-After"] == "2"  # the wait doubles
    # Other usernames are not affected.
    app.get(url, headers={**accept, **basic("someone", "x")}, status=401)
    clock.now += 2
    app.get(url, headers={**accept, **basic()}, status=200)  # success resets the count
    app.get(url, headers={**accept, **basic(password="guess")}, status=401)
    app.get(url, headers={**accept, **basic()}, status=200)


def test_lockout_wait_is_capped(make_app):  # noqa: F811
    app, clock = throttled_app(make_app, **{"sumatra.login_lockout_max": "10"})
    throttle = app.app.registry["sumatra.login_throttle"]
    for _ in range(20):
        throttle.failed("testuser")
    assert throttle.retry_after("testuser") == 10


def test_repeated_wrong_form_logins_get_429(make_app):  # noqa: F811
    app, clock = throttled_app(make_app)
    for _ in range(3):
        res = login(app, password="guess", status=400)
        assert "Wrong username or password" in res.text
    res = login(app, status=429)  # even the right password: no check during the lockout
    assert res.headers["Retry-After"] == "1"
    clock.now += 1
    res = login(app)
    assert res.headers["Location"] == "http://localhost/"


# -- CSRF ----------------------------------------------------------------------------


def test_login_form_without_csrf_token_is_400(app):
    app.get("/_login")  # a session with a token exists, but the post does not carry it
    res = app.post("/_login", {"username": "testuser", "password": "abc123"}, status=400)
    assert "sumatra_session" not in res.headers.get("Set-Cookie", "")
    assert app.get("/TestProject/", headers=JSON_ACCEPT, status=401)


def test_logout_without_csrf_token_is_400_and_keeps_the_session(app):
    login(app)
    app.post("/_logout", status=400)
    app.get("/TestProject/", headers=JSON_ACCEPT, status=200)  # still logged in
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      app.get("/", headers={"Accept": "text/html"}).text).group(1)
    app.post("/_logout", {"csrf_token": token}, status=303)
    app.get("/TestProject/", headers=JSON_ACCEPT, status=401)


def test_every_state_changing_form_carries_a_csrf_token(app):
    login(app)
    pages = ["/", "/TestProject/", "/TestProject/permissions/"]
    labels = app.get("/TestProject/", headers=JSON_ACCEPT).json["records"]
    pages.append(labels[0].replace("http://localhost", ""))
    seen = 0
    for page in pages:
        res = app.get(page, headers={"Accept": "text/html"})
        for form in res.forms.values():
            if form.method.upper() == "POST":
                seen += 1
                assert "csrf_token" in form.fields, (page, form.action)
    assert seen >= 3
