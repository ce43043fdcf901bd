"""The web interface's form handlers under WebTest: CSRF, permissions, effects on storage."""

from __future__ import annotations

import pytest
import transaction
from test_ui_pages import HTML, app_settings, login, put_record, record_doc  # noqa: F401

from pyramid_sumatra.passwords import hash_password
from pyramid_sumatra.storage.types import UserInfo


@pytest.fixture
def admin_app(testapp, storage):
    """testuser logged in, with the admin role on TestProject; user alice exists."""
    with transaction.manager:
        storage.set_grant("TestProject", "testuser", "admin")
        storage.put_user(UserInfo("alice", hash_password("alicepw")))
    login(testapp)
    return testapp


def flashes(page) -> list[str]:
    return [p.text.strip() for p in page.html.select("p.flash")]


def csrf(app) -> str:
    return app.get("/", headers=HTML).html.select_one('input[name="csrf_token"]')["value"]


# -- CSRF --------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "fields"), [
    ("/@@create", {"id": "NoCsrf"}),
    ("/TestProject/haggling/@@edit", {"outcome": "x"}),
    ("/TestProject/haggling/@@delete", {}),
    ("/TestProject/@@bulk", {"action": "delete", "label": "haggling"}),
    ("/TestProject/permissions/@@grant", {"user": "alice", "role": "read"}),
    ("/TestProject/permissions/@@revoke", {"user": "testuser"}),
    ("/TestProject/permissions/@@visibility", {"public": "1"}),
    ("/_logout", {}),
])
def test_forms_reject_a_missing_or_wrong_csrf_token(admin_app, storage, url, fields):
    admin_app.post(url, fields, headers=HTML, status=400)
    res = admin_app.post(url, {**fields, "csrf_token": "wrong"}, headers=HTML, status=400)
    assert "form is stale" in res.text
    with transaction.manager:
        assert "apparently" in storage.get_record("TestProject", "haggling").document["outcome"]
        assert storage.get_grants("TestProject") == {"testuser": "admin"}
        assert storage.get_project("NoCsrf") is None


def test_login_with_wrong_password_shows_the_form_again(testapp):
    form = testapp.get("/_login", headers=HTML).forms["login-form"]
    form["username"], form["password"] = "testuser", "nope"
    page = form.submit(status=400)
    assert "Wrong username or password" in page.text
    assert page.forms["login-form"]["username"].value == "testuser"


def test_login_redirects_to_next_and_logout_forgets(testapp):
    res = testapp.get("/TestProject/haggling/", headers=HTML, status=302)
    login_page = testapp.get(res.location, headers=HTML)
    form = login_page.forms["login-form"]
    form["username"], form["password"] = "testuser", "abc123"
    res = form.submit(status=303)
    assert res.location == "http://localhost/TestProject/haggling/"
    page = res.follow(headers=HTML)
    assert page.html.select_one(".who").text.strip().endswith("testuser")
    page.forms[0].submit(status=303)  # the log-out form in the header
    testapp.get("/TestProject/haggling/", headers=HTML, status=302)


def test_login_refuses_an_open_redirect(testapp):
    form = testapp.get("/_login?next=https://evil.example/", headers=HTML).forms["login-form"]
    form["username"], form["password"] = "testuser", "abc123"
    assert form.submit(status=303).location == "http://localhost/"


# -- projects ------------------------------------------------------------------------------


def test_create_project_makes_the_creator_admin(admin_app, storage):
    form = admin_app.get("/", headers=HTML).forms["create-project"]
    form["id"], form["name"], form["description"] = "NewOne", "New one", "<b>desc</b>"
    res = form.submit(status=303)
    assert res.location == "http://localhost/NewOne/"
    page = res.follow(headers=HTML)
    assert "Project 'NewOne' created" in flashes(page)[0]
    assert "&lt;b&gt;desc&lt;/b&gt;" in page.text
    with transaction.manager:
        assert storage.get_project("NewOne").description == "<b>desc</b>"
        assert storage.get_grants("NewOne") == {"testuser": "admin"}


@pytest.mark.parametrize(("project_id", "message"), [
    ("_reserved", "reserved for the server"),
    ("TestProject", "already exists"),
    ("a/b", "may contain only"),
])
def test_create_project_rejects_bad_ids(admin_app, project_id, message):
    form = admin_app.get("/", headers=HTML).forms["create-project"]
    form["id"] = project_id
    page = form.submit(status=303).follow(headers=HTML)
    assert message in flashes(page)[0]


def test_anonymous_cannot_create_projects(testapp):
    token = testapp.get("/_login", headers=HTML).html.select_one(
        'input[name="csrf_token"]')["value"]
    testapp.post("/@@create", {"id": "Anon", "csrf_token": token}, headers=HTML, status=401)


# -- records -------------------------------------------------------------------------------


def test_edit_annotations_keeps_everything_else(admin_app, storage):
    with transaction.manager:
        before = storage.get_record("TestProject", "haggling").document
    form = admin_app.get("/TestProject/haggling/", headers=HTML).forms["edit-form"]
    form["outcome"] = "It is worth 3 shekels.\r\nSecond line."
    form["reason"] = "new reason"
    form["tags"] = "foobar, checked,  , checked"
    page = form.submit(status=303).follow(headers=HTML)
    assert flashes(page) == ["Saved."]
    with transaction.manager:
        stored = storage.get_record("TestProject", "haggling")
    after = stored.document
    assert after["outcome"] == "It is worth 3 shekels.\nSecond line."
    assert after["reason"] == "new reason"
    assert after["tags"] == ["foobar", "checked"] and stored.tags == ["checked", "foobar"]
    assert {k: v for k, v in after.items() if k not in ("outcome", "reason", "tags")} == {
        k: v for k, v in before.items() if k not in ("outcome", "reason", "tags")}
    assert list(after) == list(before)  # key order kept
    # Nothing changed → nothing stored.
    form = page.forms["edit-form"]
    page = form.submit(status=303).follow(headers=HTML)
    assert flashes(page) == ["Nothing to save: no field changed."]


def test_edit_refuses_a_stale_form(admin_app, storage):
    form = admin_app.get("/TestProject/haggling/", headers=HTML).forms["edit-form"]
    put_record(storage, "TestProject", {**record_doc("haggling"), "outcome": "changed elsewhere",
                                        "timestamp": "2011-10-13 17:25:07"})
    form["outcome"] = "mine"
    page = form.submit(status=303).follow(headers=HTML)
    assert "Someone changed this record" in flashes(page)[0]
    with transaction.manager:
        assert storage.get_record("TestProject", "haggling").document["outcome"] == \
            "changed elsewhere"


def test_read_only_user_cannot_edit_or_delete(admin_app, storage):
    with transaction.manager:
        storage.set_grant("TestProject", "alice", "read")
    login(admin_app, "alice", "alicepw")
    token = csrf(admin_app)
    for url in ("/TestProject/haggling/@@edit", "/TestProject/haggling/@@delete"):
        admin_app.post(url, {"outcome": "x", "csrf_token": token}, headers=HTML, status=403)
    admin_app.post("/TestProject/@@bulk", {"action": "delete", "label": "haggling",
                                           "csrf_token": token}, headers=HTML, status=403)
    # Reading and comparing stay allowed.
    res = admin_app.post("/TestProject/@@bulk", {"action": "compare", "label": [
        "haggling", "haggling_repeat"], "csrf_token": token}, headers=HTML, status=303)
    assert res.location.endswith("/TestProject/@@compare?labels=haggling%2Chaggling_repeat")
    with transaction.manager:
        assert storage.get_record("TestProject", "haggling") is not None


def test_delete_record(admin_app, storage):
    page = admin_app.get("/TestProject/haggling/", headers=HTML)
    form = page.forms[[k for k, f in page.forms.items() if f.action.endswith("@@delete")][0]]
    res = form.submit(status=303)
    assert res.location == "http://localhost/TestProject/"
    assert flashes(res.follow(headers=HTML)) == ["Deleted record 'haggling'."]
    with transaction.manager:
        assert storage.get_record("TestProject", "haggling") is None


def test_bulk_tag_untag_delete_and_compare(admin_app, storage):
    token = csrf(admin_app)
    labels = ["haggling", "20111013-172503"]

    def bulk(action, **extra):
        return admin_app.post("/TestProject/@@bulk", {"action": action, "label": labels,
                                                      "csrf_token": token, **extra},
                              headers=HTML, status=303)

    assert "Tagged 2 record(s)" in flashes(bulk("tag", tag="good").follow(headers=HTML))[0]
    with transaction.manager:
        assert storage.get_record("TestProject", "haggling").tags == ["foobar", "good"]
        assert storage.get_record("TestProject", "20111013-172503").tags == ["good"]
    bulk("untag", tag="foobar").follow(headers=HTML)
    with transaction.manager:
        assert storage.get_record("TestProject", "haggling").tags == ["good"]
    assert "@@compare?labels=haggling%2C20111013-172503" in bulk("compare").location
    page = bulk("delete").follow(headers=HTML)
    assert flashes(page) == ["Deleted 2 record(s)."]
    with transaction.manager:
        assert storage.query_records("TestProject").total == 2
    res = admin_app.post("/TestProject/@@bulk", {"action": "compare", "label": "one",
                                                 "csrf_token": token}, headers=HTML, status=303)
    assert "two or more" in flashes(res.follow(headers=HTML))[0]


# -- permissions -------------------------------------------------------------------------


def test_grant_change_and_revoke(admin_app, storage):
    page = admin_app.get("/TestProject/permissions/", headers=HTML)
    form = page.forms["grant-form"]
    form["user"], form["role"] = "alice", "read"
    page = form.submit(status=303).follow(headers=HTML)
    assert flashes(page) == ["alice now has the read role."]
    assert [tr["data-user"] for tr in page.html.select("#grants tr[data-user]")] == [
        "alice", "testuser"]
    with transaction.manager:
        assert storage.get_grants("TestProject")["alice"] == "read"
    # change the role through the row's form
    form = [f for f in page.forms.values()
            if f.action.endswith("@@grant") and f.get("user", index=0).value == "alice"][0]
    form["role"] = "write"
    form.submit(status=303)
    with transaction.manager:
        assert storage.get_grants("TestProject")["alice"] == "write"
    token = csrf(admin_app)
    admin_app.post("/TestProject/permissions/@@revoke", {"user": "alice", "csrf_token": token},
                   headers=HTML, status=303)
    with transaction.manager:
        assert "alice" not in storage.get_grants("TestProject")


@pytest.mark.parametrize(("fields", "message"), [
    ({"user": "nobody", "role": "read"}, "there is no user 'nobody'"),
    ({"user": "alice", "role": "owner"}, "role must be one of"),
    ({"user": "testuser", "role": "read"}, "only admin"),
])
def test_grant_errors_are_flashed(admin_app, fields, message):
    token = csrf(admin_app)
    res = admin_app.post("/TestProject/permissions/@@grant", {**fields, "csrf_token": token},
                         headers=HTML, status=303)
    assert message in flashes(res.follow(headers=HTML))[0]


def test_revoking_the_last_admin_is_refused(admin_app, storage):
    token = csrf(admin_app)
    res = admin_app.post("/TestProject/permissions/@@revoke",
                         {"user": "testuser", "csrf_token": token}, headers=HTML, status=303)
    assert "only admin" in flashes(res.follow(headers=HTML))[0]
    with transaction.manager:
        assert storage.get_grants("TestProject") == {"testuser": "admin"}


def test_make_public_then_private(admin_app, testapp, storage):
    page = admin_app.get("/TestProject/permissions/", headers=HTML)
    assert page.html.select_one("#visibility .badge").text == "private"
    page = page.forms[[k for k, f in page.forms.items() if f.action.endswith(
        "@@visibility")][0]].submit(status=303).follow(headers=HTML)
    assert page.html.select_one("#visibility .badge").text == "public"
    with transaction.manager:
        assert storage.get_grants("TestProject")["anonymous"] == "read"
    page.forms[[k for k, f in page.forms.items() if f.action.endswith(
        "@@visibility")][0]].submit(status=303)
    with transaction.manager:
        assert "anonymous" not in storage.get_grants("TestProject")


def test_non_admin_cannot_grant(testapp, storage):
    with transaction.manager:
        storage.put_user(UserInfo("alice", hash_password("alicepw")))
    login(testapp)  # testuser holds "write" on TestProject in the demo
    page = testapp.get("/TestProject/permissions/", headers=HTML)
    assert "grant-form" not in page.forms
    assert page.html.select_one("#grants tr[data-user] td:nth-of-type(2)").text.strip() == "write"
    token = csrf(testapp)
    for url, fields in (("@@grant", {"user": "alice", "role": "admin"}),
                        ("@@revoke", {"user": "testuser"}), ("@@visibility", {"public": "1"})):
        testapp.post(f"/TestProject/permissions/{url}", {**fields, "csrf_token": token},
                     headers=HTML, status=403)
    with transaction.manager:
        assert storage.get_grants("TestProject") == {"testuser": "write"}


def test_edit_applies_the_tag_limits(admin_app, storage):
    form = admin_app.get("/TestProject/haggling/", headers=HTML).forms["edit-form"]
    form["tags"] = "x" * 101
    page = form.submit(status=303).follow(headers=HTML)
    assert "longer than 100 characters" in flashes(page)[0]
    with transaction.manager:
        assert storage.get_record("TestProject", "haggling").tags == ["foobar"]
