"""LDAP login against a real OpenLDAP server (tests/ldapserver.py): HTTP Basic and the
login form bind as the user, directory users appear on first login, group grants,
cached binds, injection, a directory that goes away, and start-up errors."""

from __future__ import annotations

import logging
import time

import pytest
import transaction
from conftest import basic, unique
from ldapserver import Slapd, ldap_app_settings, slapd  # noqa: F401 - fixtures

import pyramid_sumatra
from pyramid_sumatra.auth.external import EXTERNAL_PASSWORD, DirectoryUnavailable
from pyramid_sumatra.auth.ldap import Directory, LdapSettings
from pyramid_sumatra.auth.settings import ConfigError
from pyramid_sumatra.services import projects as project_service

HTML = {"Accept": "text/html"}


def pw(name: str) -> dict[str, str]:
    return basic(name, f"{name}-pw")


def ldap_plugin(testapp):
    return testapp.app.registry["sumatra.storage"].pm.get_plugin("plugin:ldap")


def test_a_directory_user_logs_in_with_basic_and_appears_as_an_external_user(
        testapp, storage, lab):
    with transaction.manager:
        assert storage.get_user("ada") is None  # no adduser
    res = testapp.get(f"/{lab}/", headers=pw("ada"))
    assert res.json["id"] == lab
    with transaction.manager:
        ada = storage.get_user("ada")
    assert (ada.source, ada.display_name, ada.email) == ("ldap", "Ada Lovelace",
                                                          "ada@example.org")
    assert ada.password_hash == EXTERNAL_PASSWORD and not ada.is_admin
    assert lab in [p["id"] for p in testapp.get("/", headers=pw("ada")).json]


def test_group_grants_apply_to_members_only(testapp, lab):
    testapp.get(f"/{lab}/", headers=pw("bob"), status=403)  # staff, not physics-lab
    testapp.get(f"/{lab}/", headers=pw("eve"), status=403)
    assert lab not in [p["id"] for p in testapp.get("/", headers=pw("bob")).json]


def test_wrong_empty_and_unknown_credentials_are_401(testapp, lab):
    for headers in (basic("ada", "wrong"), basic("ada", ""), basic("nobody", "x-pw"),
                    basic("", "ada-pw")):
        res = testapp.get(f"/{lab}/", headers=headers, status=401)
        assert res.json["error"] == "authentication required"


def test_a_local_user_is_not_taken_over_by_a_directory_entry_of_that_name(testapp, lab):
    # testuser exists locally (abc123) and in the directory (testuser-pw).
    testapp.get(f"/{lab}/", headers=pw("testuser"), status=401)
    testapp.get(f"/{lab}/", headers=basic(), status=200)


@pytest.mark.parametrize("name", ["*", "ada)(uid=*", "*)(|(uid=*", "ada\x00", "a*a",
                                  "uid=ada,ou=people", "(ada)", "ada\\2a"])
def test_ldap_injection_in_usernames_is_a_401(testapp, lab, name, caplog):
    caplog.set_level(logging.DEBUG)
    res = testapp.get(f"/{lab}/", headers=basic(name, "ada-pw"), status=401)
    assert res.json["error"] == "authentication required"
    assert "ada-pw" not in caplog.text


@pytest.mark.parametrize("name", ["*", "ada)(uid=*", "*)(|(uid=*", "ad*"])
def test_filter_metacharacters_are_escaped_before_the_directory_sees_them(
        slapd, monkeypatch, name):  # noqa: F811 - the fixture
    monkeypatch.setenv("TEST_LDAP_READER_PASSWORD", "reader-secret")
    directory = Directory(LdapSettings.from_settings(slapd.settings()))
    assert directory.find_user_dn(name) is None  # "*" unescaped would match every user
    assert directory.find_user_dn("ada") == "uid=ada,ou=people,dc=example,dc=org"


def test_verified_binds_are_cached(testapp, lab, monkeypatch):
    directory = ldap_plugin(testapp).directory
    binds = []
    real_bind = directory.bind
    monkeypatch.setattr(directory, "bind", lambda dn, p: binds.append(dn) or real_bind(dn, p))
    for _ in range(20):
        testapp.get(f"/{lab}/", headers=pw("ada"))
    assert len(binds) == 1
    testapp.get(f"/{lab}/", headers=basic("ada", "other"), status=401)  # not from the cache
    assert len(binds) == 2


def test_the_login_form_takes_directory_users_and_groups_follow_the_directory(
        app_settings, demo, slapd, lab):  # noqa: F811 - the fixture
    import webtest

    app = webtest.TestApp(pyramid_sumatra.main({}, **{
        **app_settings, "sumatra.ldap.cache_seconds": "0",
        "sumatra.groups_refresh_seconds": "1"}))
    form = app.get("/_login", headers=HTML).forms["login-form"]
    form["username"], form["password"] = "ada", "ada-pw"
    form.submit(status=303)
    assert app.get(f"/{lab}/", headers=HTML).status_int == 200
    slapd.modify("dn: cn=physics-lab,ou=groups,dc=example,dc=org\nchangetype: modify\n"
                 "delete: member\nmember: uid=ada,ou=people,dc=example,dc=org\n")
    try:
        app.get(f"/{lab}/", headers=HTML, status=200)  # within the refresh time
        time.sleep(1.2)
        app.get(f"/{lab}/", headers=HTML, status=403)  # the directory said so: no access
        app.get(f"/{lab}/", headers=pw("ada"), status=403)  # Basic as well (cache 0)
    finally:
        slapd.modify("dn: cn=physics-lab,ou=groups,dc=example,dc=org\nchangetype: modify\n"
                     "add: member\nmember: uid=ada,ou=people,dc=example,dc=org\n")
    app.app.registry["sumatra.storage"].dispose()


def test_the_directory_down_is_503_for_its_users_and_local_users_log_in(
        app_settings, demo, tmp_path, lab, caplog):
    import webtest

    own = Slapd(tmp_path / "own-slapd")
    own.start()
    try:
        app = webtest.TestApp(pyramid_sumatra.main({}, **{
            **app_settings, **own.settings(), "sumatra.ldap.cache_seconds": "0"}))
        app.get(f"/{lab}/", headers=pw("ada"), status=200)
        own.stop()
        caplog.set_level(logging.DEBUG)
        for _ in range(2):
            res = app.get(f"/{lab}/", headers=pw("ada"), status=503)
            assert res.headers["Retry-After"].isdigit()
            assert res.json["error"] == "login directory unavailable"
            assert str(own.port) not in res.text
        app.get(f"/{lab}/", headers=basic(), status=200)  # the local user
        form = app.get("/_login", headers=HTML).forms["login-form"]
        form["username"], form["password"] = "testuser", "abc123"
        form.submit(status=303)
        assert "ada-pw" not in caplog.text
        own.start()
        app.get(f"/{lab}/", headers=pw("ada"), status=200)  # back again
        app.app.registry["sumatra.storage"].dispose()
    finally:
        own.stop()


def test_group_grants_through_the_api_and_the_permissions_page(testapp, storage, lab):
    url = f"/{lab}/permissions/"
    testapp.post_json(url, {"user": "group:staff", "role": "read"}, headers=basic())
    assert testapp.get(url, headers=basic()).json["roles"]["group:staff"] == "read"
    assert testapp.get(f"/{lab}/", headers=pw("bob")).json["id"] == lab
    testapp.put_json(f"/{lab}/nope/", {}, headers=pw("bob"), status=403)  # read only
    page = testapp.get(url, headers={**HTML, **basic()})
    rows = {tr["data-user"] for tr in page.html.select("#grants tr[data-user]")}
    assert {"group:staff", "group:physics-lab", "testuser"} <= rows
    for bad in ("group:", "group:a\x00b", "group:" + "x" * 200, "group:*", "group:(a)"):
        res = testapp.post_json(url, {"user": bad, "role": "read"}, headers=basic(),
                                status=400)
        assert res.json["error"] and len(res.text) < 2000
    testapp.delete(f"{url}?user=group:staff", headers=basic())
    testapp.get(f"/{lab}/", headers=pw("bob"), status=403)


def test_a_project_created_by_a_directory_user_lists_it_as_its_admin(testapp, storage):
    pid = unique("mine")
    testapp.put_json(f"/{pid}/", {"name": "mine"}, headers=pw("ada"), status=201)
    with transaction.manager:
        assert project_service.require_project(storage, pid).id == pid
        assert storage.get_grants(pid) == {"ada": "admin"}


@pytest.mark.parametrize("change, message", [
    ({"sumatra.ldap.url": ""}, "sumatra.ldap.url is required"),
    ({"sumatra.ldap.url": "http://x"}, "must start with ldap://"),
    ({"sumatra.ldap.user_dn_template": "uid={username},dc=x"}, "exactly one of"),
    ({"sumatra.ldap.bind_password": "in-the-ini"}, "must not be in the ini"),
    ({"sumatra.ldap.bind_password_env": "TEST_LDAP_UNSET_VARIABLE"}, "is not set"),
    ({"sumatra.ldap.timeout": "soon"}, "must be a number"),
    ({"sumatra.ldap.starttls": "maybe"}, "must be true or false"),
    ({"sumatra.ldap.user_filter": "(uid=*)"}, "must contain {username}"),
])
def test_a_missing_or_wrong_setting_stops_start_up_with_its_name(app_settings, change,
                                                                 message):
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        pyramid_sumatra.main({}, **{**app_settings, **change})



@pytest.fixture(scope="module")
def tls_slapd(tmp_path_factory):
    server = Slapd(tmp_path_factory.mktemp("tls-slapd"), tls=True)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("transport", ["starttls", "ldaps"])
def test_starttls_and_ldaps_verify_the_directory_certificate(tls_slapd, monkeypatch,
                                                             transport, tmp_path):
    from pyramid_sumatra.auth.ldap import LdapAuthenticator

    monkeypatch.setenv("TEST_LDAP_READER_PASSWORD", "reader-secret")
    tls = ({"sumatra.ldap.starttls": "true"} if transport == "starttls"
           else {"sumatra.ldap.url": tls_slapd.ldaps_url})
    settings = tls_slapd.settings(**tls, **{"sumatra.ldap.ca_file": str(tls_slapd.cert)})
    plugin = LdapAuthenticator(LdapSettings.from_settings(settings))
    assert plugin.sumatra_authenticate("ada", "ada-pw") is True
    assert plugin.sumatra_authenticate("ada", "wrong") is False
    # A certificate the configured CA did not sign: no password goes over that connection.
    from ldapserver import self_signed

    other_ca, _ = self_signed(tmp_path)
    distrust = LdapAuthenticator(LdapSettings.from_settings(
        {**settings, "sumatra.ldap.ca_file": str(other_ca)}))
    with pytest.raises(DirectoryUnavailable):
        distrust.sumatra_authenticate("ada", "ada-pw")


def test_api_token_requests_read_the_directory_once_per_cache_time(testapp, storage, lab,
                                                                   monkeypatch):
    from pyramid_sumatra.services import tokens

    testapp.get(f"/{lab}/", headers=pw("ada"))  # ada's first login adds her
    with transaction.manager:
        secret = tokens.create(storage, "ada", "sweep")[1]
    plugin = ldap_plugin(testapp)
    plugin.cache._entries.clear()  # as if the password bind were long ago
    reads = []
    real = plugin.directory.identity
    monkeypatch.setattr(plugin.directory, "identity",
                        lambda *a: reads.append(a) or real(*a))
    for _ in range(20):
        assert testapp.get(f"/{lab}/", headers=basic("ada", secret)).json["id"] == lab
    assert len(reads) == 1  # the group grant holds for the token, read once
