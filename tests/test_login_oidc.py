"""OpenID Connect login against a real provider (tests/oidcprovider.py, Node
oidc-provider): the code flow with PKCE, state, nonce, ID token checks, rotated keys,
hostile callbacks, logout, and an API token made after an OpenID login."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import transaction
import webtest
from conftest import basic, unique
from joserfc import jwt
from joserfc.jwk import KeySet
from oidcprovider import (  # noqa: F401 - provider, oidc_app_settings: fixtures
    CALLBACK,
    CLIENT_ID,
    CLIENT_SECRET,
    OidcProvider,
    log_in_at_provider,
    oidc_app_settings,
    provider,
    signing_key,
)

import pyramid_sumatra
from pyramid_sumatra.auth import sessiongroups
from pyramid_sumatra.auth.external import SEEN_FORMAT
from pyramid_sumatra.auth.groups import current_groups
from pyramid_sumatra.auth.oidc import InvalidIdToken, OidcClient, OidcSettings
from pyramid_sumatra.auth.settings import ConfigError
from pyramid_sumatra.storage.types import ProjectInfo, UserInfo

HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/json"}


def start(app, next_path: str = "/") -> str:
    """/_login/oidc: the provider's authorization URL the browser is sent to."""
    return app.get(f"/_login/oidc?next={next_path}", status=303).location


def oidc_login(app, login: str = "carol", status: int = 303):
    callback = log_in_at_provider(start(app), login, CALLBACK)
    return app.get(callback[len("http://localhost"):], headers=HTML, status=status), callback


def test_the_login_page_offers_the_provider(testapp):
    page = testapp.get("/_login", headers=HTML)
    assert page.html.select_one("#oidc-login").text.strip() == "Log in with Example University"


def test_the_authorization_request_uses_pkce_state_and_nonce(testapp, provider):  # noqa: F811
    url = urlsplit(start(testapp))
    query = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}" == provider.issuer
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    assert query["client_id"] == [CLIENT_ID] and query["redirect_uri"] == [CALLBACK]
    assert "openid" in query["scope"][0].split()


def test_a_provider_login_adds_the_user_with_its_groups(testapp, storage, lab):
    res, _ = oidc_login(testapp, "carol")
    assert res.location == "http://localhost/"
    assert testapp.get(f"/{lab}/", headers=JSON).json["id"] == lab  # via group:physics-lab
    with transaction.manager:
        carol = storage.get_user("carol")
    assert (carol.source, carol.display_name, carol.email) == ("oidc", "Carol Curie",
                                                                "carol@example.org")
    assert not carol.is_admin and carol.password_hash.startswith("!")
    testapp.get(f"/{lab}/", headers=basic("carol", ""), status=401)  # no password at all


def test_members_only(testapp, lab):
    oidc_login(testapp, "dave")
    testapp.get(f"/{lab}/", headers=JSON, status=403)


def test_a_replayed_or_forged_callback_is_400(testapp, caplog):
    caplog.set_level(logging.DEBUG)
    res, callback = oidc_login(testapp, "carol")
    path = callback[len("http://localhost"):]
    again = testapp.get(path, headers=JSON, status=400)  # the state was used
    assert again.json["error"] == "login failed" and "state" in again.json["detail"]
    code = parse_qs(urlsplit(callback).query)["code"][0]
    start(testapp)  # a login pending, with another state
    testapp.get(f"/_login/oidc/callback?state=forged&code={code}", headers=JSON, status=400)
    testapp.get("/_login/oidc/callback", headers=JSON, status=400)
    testapp.get("/_login/oidc/callback?state=" + "x" * 5000, headers=JSON, status=400)
    testapp.get("/_login/oidc/callback?error=access_denied&state=x", headers=JSON, status=400)
    assert code not in caplog.text


def test_a_provider_user_never_takes_over_a_local_one(testapp, storage):
    res, _ = oidc_login(testapp, "testuser", status=409)
    with transaction.manager:
        assert storage.get_user("testuser").source == ""  # still the local user
    page = testapp.get("/", headers=HTML)
    assert "testuser" not in page.html.select_one("header").text


def test_a_username_the_server_cannot_take_is_400(testapp):
    res, _ = oidc_login(testapp, "bad name", status=400)
    assert "username" in res.text


def test_rotated_provider_keys_are_fetched(testapp, provider, lab):  # noqa: F811
    oidc_login(testapp, "carol")
    provider.rotate(unique("key-"))  # the old key is gone from the JWKS
    time.sleep(1.1)  # jwks_refetch_seconds = 1
    fresh = type(testapp)(testapp.app)
    oidc_login(fresh, "carol")
    assert fresh.get(f"/{lab}/", headers=JSON).status_int == 200


def test_an_id_token_with_an_unknown_key_is_401_through_the_callback(testapp, monkeypatch):
    client = testapp.app.registry["sumatra.oidc"]
    pending_url = start(testapp)
    state = parse_qs(urlsplit(pending_url).query)["state"][0]
    nonce = parse_qs(urlsplit(pending_url).query)["nonce"][0]
    forged = forge(signing_key("attacker"), client.config, nonce=nonce)
    monkeypatch.setattr(client, "exchange", lambda *a: forged)
    res = testapp.get(f"/_login/oidc/callback?state={state}&code=x", headers=JSON, status=401)
    assert res.json["error"] == "login failed" and "key" in res.json["detail"]


def test_logout_ends_the_session_here_and_at_the_provider(testapp, provider):  # noqa: F811
    oidc_login(testapp, "carol")
    page = testapp.get("/", headers=HTML)
    res = page.forms[0].submit(status=303)  # the log-out form in the header
    assert res.location.startswith(provider.issuer + "/session/end")
    assert "post_logout_redirect_uri=http%3A%2F%2Flocalhost%2F" in res.location
    assert "carol" not in testapp.get("/", headers=HTML).html.select_one("header").text


def make_token(app, name: str = "laptop") -> str:
    """A personal API token made on the Tokens page of the logged-in browser ``app``."""
    page = app.get("/_tokens", headers=HTML).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    res = app.post("/_tokens/create", {"name": name, "scope": "write", "expires": "",
                                       "projects": "", "csrf_token": csrf}, headers=JSON,
                   status=201)
    return res.json["token"]


def test_an_api_token_made_after_an_oidc_login(testapp, storage):
    oidc_login(testapp, "carol")
    secret = make_token(testapp)
    pid = unique("tok")
    api = type(testapp)(testapp.app)
    api.put_json(f"/{pid}/", {"name": "by token"}, headers=basic("carol", secret), status=201)
    altered = secret[:-2] + ("yy" if secret.endswith("xx") else "xx")
    api.get(f"/{pid}/", headers=basic("carol", altered), status=401)  # wrong
    api.get(f"/{pid}/", headers=basic("dave", secret), status=401)  # someone else's


# -- the groups an OpenID login reported, kept for the user's API tokens ------------------


def set_groups_seen(storage, username: str, seconds_ago: float) -> None:
    """Make the kept groups as old as if the user's last login was ``seconds_ago``."""
    with transaction.manager:
        user = storage.get_user(username)
        user.groups_seen = (datetime.now(UTC) - timedelta(seconds=seconds_ago)).strftime(
            SEEN_FORMAT)
        storage.put_user(user)


def test_an_api_token_gets_the_groups_of_the_last_browser_login(testapp, storage, lab):
    """Carol reaches the lab only through group:physics-lab: without the kept groups her
    token was refused (403), so smt could not write there at all."""
    oidc_login(testapp, "carol")
    secret = make_token(testapp)
    with transaction.manager:
        carol = storage.get_user("carol")
    assert carol.groups == ("physics-lab",)
    seen = datetime.strptime(carol.groups_seen, SEEN_FORMAT).replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - seen).total_seconds()) < 60
    api = type(testapp)(testapp.app)  # no session: the token alone
    assert api.get(f"/{lab}/", headers={**JSON, **basic("carol", secret)}).json["id"] == lab
    api.put_json(f"/{lab}/by-token/", {"label": "by-token", "reason": "group write",
                                            "timestamp": "2026-11-30 12:00:00"},
                 headers=basic("carol", secret), status=201)
    oidc_login(testapp, "dave")  # no groups: his token reaches nothing of the lab's
    api.get(f"/{lab}/", headers={**JSON, **basic("dave", make_token(testapp))}, status=403)


def test_kept_groups_older_than_the_max_age_no_longer_apply(testapp, storage, lab):
    oidc_login(testapp, "carol")
    secret = make_token(testapp)
    api = type(testapp)(testapp.app)
    set_groups_seen(storage, "carol", 7 * 86400 - 120)  # the default max age: a week
    api.get(f"/{lab}/", headers={**JSON, **basic("carol", secret)}, status=200)
    set_groups_seen(storage, "carol", 7 * 86400 + 120)
    api.get(f"/{lab}/", headers={**JSON, **basic("carol", secret)}, status=403)
    oidc_login(testapp, "carol")  # a browser login brings them back
    api.get(f"/{lab}/", headers={**JSON, **basic("carol", secret)}, status=200)


@pytest.mark.parametrize("max_age, age, status", [("3600", 3500, 200), ("3600", 3700, 403),
                                                   ("0", 0, 403)])
def test_the_max_age_is_a_setting(app_settings, demo, storage, lab, max_age, age, status):
    app = webtest.TestApp(pyramid_sumatra.main({}, **{
        **app_settings, "sumatra.oidc.token_groups_max_age": max_age}))
    try:
        oidc_login(app, "carol")
        secret = make_token(app)
        set_groups_seen(storage, "carol", age)
        type(app)(app.app).get(f"/{lab}/", headers={**JSON, **basic("carol", secret)},
                               status=status)
    finally:
        app.app.registry["sumatra.storage"].dispose()


def test_a_new_login_replaces_the_kept_groups(testapp, storage, lab, provider):  # noqa: F811
    chemistry = unique("chem")
    with transaction.manager:
        storage.put_project(ProjectInfo(id=chemistry, name="chemistry"))
        storage.set_grant(chemistry, "group:chemistry", "read")
    oidc_login(testapp, "erin")
    secret = make_token(testapp)
    api, token = type(testapp)(testapp.app), {**JSON, **basic("erin", secret)}
    api.get(f"/{lab}/", headers=token, status=200)
    api.get(f"/{chemistry}/", headers=token, status=403)
    provider.set_groups("erin", ["chemistry"])  # she moved to another lab
    try:
        oidc_login(type(testapp)(testapp.app), "erin")  # another browser, another day
    finally:
        provider.set_groups("erin", ["physics-lab"])
    with transaction.manager:
        assert storage.get_user("erin").groups == ("chemistry",)
    api.get(f"/{lab}/", headers=token, status=403)
    api.get(f"/{chemistry}/", headers=token, status=200)


def test_a_browser_session_does_not_outlive_its_groups_on_kept_ones(testapp, storage, lab,
                                                                     monkeypatch):
    """Sessions are unchanged: past sumatra.oidc.groups_seconds the browser logs in again,
    though the kept groups (for tokens) are still young."""
    oidc_login(testapp, "carol")
    secret = make_token(testapp)
    testapp.get(f"/{lab}/", headers=JSON, status=200)
    later = time.time() + 3601  # the session trusted the groups for an hour
    monkeypatch.setattr(sessiongroups, "time", SimpleNamespace(time=lambda: later))
    assert testapp.get(f"/{lab}/", headers=JSON, expect_errors=True).status_int in (401, 403)
    assert "carol" not in testapp.get("/", headers=HTML).html.select_one("header").text
    type(testapp)(testapp.app).get(f"/{lab}/", headers={**JSON, **basic("carol", secret)},
                                   status=200)


class NoSource:
    """Storage with no identity source plugin (OpenID Connect users only)."""

    def external_identity(self, username: str):
        return None


@pytest.mark.parametrize("groups, seen_ago, max_age, expected", [
    (("physics-lab",), 10, 3600, ("physics-lab",)),
    ((), 10, 3600, ()),  # a login that reported no groups
    (("physics-lab",), 3601, 3600, None),  # too old
    (("physics-lab",), 10, 0, None),  # 0: never (browser sessions)
    (None, 10, 3600, None),  # none kept (a backend that does not store them)
    (("physics-lab",), -3600, 3600, None),  # an hour ahead of our clock: an edited file
    (("physics-lab",), "garbage", 3600, None),
    (("physics-lab", "bad:name"), 10, 3600, ("physics-lab",)),  # names re-checked
])
def test_current_groups_of_an_oidc_user(groups, seen_ago, max_age, expected):
    seen = seen_ago if isinstance(seen_ago, str) else (
        datetime.now(UTC) - timedelta(seconds=seen_ago)).strftime(SEEN_FORMAT)
    user = UserInfo(username="carol", password_hash="!external", source="oidc",
                    groups=groups, groups_seen=seen)
    assert current_groups(NoSource(), user, max_age) == expected
    assert current_groups(NoSource(), UserInfo("local", "h"), max_age) == ()


def test_the_provider_unreachable_is_503(app_settings, demo):
    from conftest import free_port

    app = webtest.TestApp(pyramid_sumatra.main({}, **{
        **app_settings, "sumatra.oidc.issuer": f"http://127.0.0.1:{free_port()}"}))
    res = app.get("/_login/oidc", headers=JSON, status=503)
    assert res.headers["Retry-After"].isdigit()


# -- the ID token checks, with keys of our own --------------------------------------------

CONFIG = OidcSettings(issuer="https://id.example.org", client_id="sumatra",
                      client_secret="s", name="x", scopes="openid", username_claim="sub",
                      groups_claim="groups", timeout=1, groups_seconds=60,
                      jwks_refetch_seconds=60)


def forge(key, config=CONFIG, nonce="n", alg="RS256", **claims) -> str:
    now = int(time.time())
    payload = {"iss": config.issuer, "aud": config.client_id, "sub": "carol", "iat": now,
               "exp": now + 300, "nonce": nonce, **claims}
    return jwt.encode({"alg": alg, "kid": key.kid}, payload, key)


@pytest.fixture
def checker():
    key = signing_key("good")
    client = OidcClient(CONFIG)
    fetches = []

    def fetch():
        fetches.append(1)
        client._keys, client._keys_at = KeySet([key]), time.monotonic()
        return client._keys

    client._fetch_keys = fetch
    return client, key, fetches


def test_a_good_id_token_passes(checker):
    client, key, _ = checker
    assert client.validate(forge(key), "n")["sub"] == "carol"


@pytest.mark.parametrize("claims", [
    {"exp": int(time.time()) - 3600}, {"aud": "someone-else"}, {"iss": "https://evil"},
    {"nonce": "replayed"}, {"iat": None}, {"sub": None},
])
def test_a_bad_id_token_is_refused(checker, claims):
    client, key, _ = checker
    token = forge(key, **{k: v for k, v in claims.items() if v is not None})
    if None in claims.values():  # a missing claim
        name = next(k for k, v in claims.items() if v is None)
        now = int(time.time())
        payload = {"iss": CONFIG.issuer, "aud": "sumatra", "sub": "carol", "iat": now,
                   "exp": now + 300, "nonce": "n"}
        del payload[name]
        token = jwt.encode({"alg": "RS256", "kid": key.kid}, payload, key)
    with pytest.raises(InvalidIdToken):
        client.validate(token, "n")


@pytest.mark.parametrize("token", ["", "x", "a.b.c", "a.b.c.d.e", "." * 3000,
                                   "eyJhbGciOiJub25lIn0.eyJzdWIiOiJjYXJvbCJ9."])
def test_garbage_and_unsigned_tokens_are_refused(checker, token):
    client, _, _ = checker
    with pytest.raises(InvalidIdToken):
        client.validate(token, "n")


def test_an_unknown_key_refetches_the_jwks_at_most_once_a_minute(checker):
    client, _, fetches = checker
    stranger = signing_key("stranger")
    for _ in range(5):
        with pytest.raises(InvalidIdToken, match="key"):
            client.validate(forge(stranger), "n")
    assert len(fetches) == 1  # the first load; the refetch waits jwks_refetch_seconds


def test_a_symmetric_token_made_with_public_key_material_is_refused(checker):
    """The classic key confusion: HS256 with the provider's public key as the secret."""
    import base64
    import hashlib
    import hmac
    import json

    client, key, _ = checker

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    now = int(time.time())
    signing_input = b64(json.dumps({"alg": "HS256", "kid": "good"}).encode()) + b"." + b64(
        json.dumps({"iss": CONFIG.issuer, "aud": "sumatra", "sub": "carol", "iat": now,
                    "exp": now + 300, "nonce": "n"}).encode())
    signature = hmac.new(key.as_pem(private=False), signing_input, hashlib.sha256).digest()
    with pytest.raises(InvalidIdToken):
        client.validate((signing_input + b"." + b64(signature)).decode(), "n")


@pytest.mark.parametrize("change, message", [
    ({"sumatra.oidc.client_id": ""}, "client_id is required"),
    ({"sumatra.oidc.client_secret": "inline"}, "must not be in the ini"),
    ({"sumatra.oidc.client_secret_env": ""}, "client_secret_env is required"),
    ({"sumatra.oidc.issuer": "http://id.example.org"}, "must be an https:// URL"),
    ({"sumatra.oidc.scopes": "profile"}, "must include openid"),
    ({"sumatra.oidc.token_groups_max_age": "-1"}, "token_groups_max_age must be between"),
    ({"sumatra.oidc.token_groups_max_age": "a week"}, "token_groups_max_age must be a number"),
])
def test_a_missing_or_wrong_oidc_setting_stops_start_up(app_settings, change, message):
    with pytest.raises(ConfigError, match=message):
        pyramid_sumatra.main({}, **{**app_settings, **change})
