"""History and trash over HTTP: the JSON API, the forms, bounds, and a backend without the hooks."""

from __future__ import annotations

import sys

import pytest
import transaction
from conftest import _CHEAP_HASHER, V4, basic, plugin_module

from pyramid_sumatra.services.tokens import create as create_token
from pyramid_sumatra.storage.hookspecs import HISTORY_HOOKS, TRASH_HOOKS
from pyramid_sumatra.storage.types import UserInfo

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}


def doc(label: str, **fields) -> dict:
    return {"label": label, "timestamp": "2024-05-01 10:00:00", "reason": "first",
            "outcome": "", "tags": ["a"], "user": "testuser", **fields}


def put(app, label: str, status: int = 201, headers=None, **fields):
    return app.put_json(f"/TestProject/{label}/", doc(label, **fields),
                        headers={**basic(), "Content-Type": V4.format("record"),
                                 **(headers or {})}, status=status)


def history(app, label: str = "h1", **query) -> dict:
    return app.get(f"/TestProject/{label}/@@history", query, headers={**basic(), **JSON}).json


def test_each_change_is_an_entry_with_who_what_and_revisions(testapp):
    first = put(testapp, "h1")
    again = put(testapp, "h1", status=200, outcome="worked", reason="second")
    put(testapp, "h1", status=200, outcome="worked", reason="second")  # no change: no entry
    entries = history(testapp)["entries"]
    assert [e["action"] for e in entries] == ["update", "create"]
    update, create = entries
    assert update["user"] == create["user"] == "testuser"
    assert update["changes"] == {"reason": {"old": "first", "new": "second"},
                                 "outcome": {"old": "", "new": "worked"}}
    assert update["revision_before"] == create["revision_after"]
    assert first.headers["ETag"].strip('"').startswith(create["revision_after"])
    assert again.headers["ETag"].strip('"').startswith(update["revision_after"])
    assert update["at"] > create["at"]


def test_an_earlier_revision_is_fetched_whole(testapp):
    put(testapp, "h1", parameters={"content": "a=1", "type": "SimpleParameterSet"})
    put(testapp, "h1", status=200, reason="second", tags=["a", "b"])
    put(testapp, "h1", status=200, reason="third")
    entries = history(testapp)["entries"]
    first_revision = entries[-1]["revision_after"]
    old = testapp.get("/TestProject/h1/@@history", {"revision": first_revision},
                      headers=basic()).json
    assert (old["reason"], old["tags"]) == ("first", ["a"])
    assert old["parameters"] == {"content": "a=1", "type": "SimpleParameterSet"}
    middle = testapp.get("/TestProject/h1/@@history",
                         {"revision": entries[0]["revision_before"]}, headers=basic()).json
    assert (middle["reason"], middle["tags"]) == ("second", ["a", "b"])
    res = testapp.get("/TestProject/h1/@@history", {"revision": "f" * 40}, headers=basic(),
                      status=404)
    assert res.json["error"] == "not found"


@pytest.mark.parametrize(("query", "name"), [
    ({"limit": "0"}, "limit"), ({"limit": "201"}, "limit"), ({"limit": "²"}, "limit"),
    ({"cursor": "x" * 5000}, "cursor"), ({"cursor": "2026-01-01|zz"}, "cursor"),
    ({"revision": "r" * 65}, "revision"), ({"revision": "a/b"}, "revision"),
])
def test_history_parameters_are_bounded(testapp, query, name):
    put(testapp, "h1")
    res = testapp.get("/TestProject/h1/@@history", query, headers={**basic(), **JSON},
                      status=400)
    assert res.json["error"] == f"invalid {name}"
    assert set(res.json) >= {"error", "detail"}


def test_history_pages_with_a_cursor(testapp):
    put(testapp, "h1")
    for i in range(4):
        put(testapp, "h1", status=200, reason=f"r{i}")
    page = history(testapp, limit="2")
    assert len(page["entries"]) == 2 and "next" in page
    seen = [e["id"] for e in page["entries"]]
    while "next" in page:
        page = testapp.get(page["next"], headers={**basic(), **JSON}).json
        seen += [e["id"] for e in page["entries"]]
    assert len(seen) == len(set(seen)) == 5


def test_a_token_name_is_recorded(testapp, storage):
    with transaction.manager:
        _, secret = create_token(storage, "testuser", "laptop ci")
    put(testapp, "h1", headers=basic("testuser", secret))
    assert history(testapp)["entries"][0]["token"] == "laptop ci"


def test_delete_moves_to_trash_and_restore_brings_it_back_with_history(testapp):
    put(testapp, "h1")
    put(testapp, "h1", status=200, reason="second")
    etag = testapp.get("/TestProject/h1/", headers=basic()).headers["ETag"]
    testapp.delete("/TestProject/h1/", headers=basic(), status=204)
    testapp.get("/TestProject/h1/", headers=basic(), status=404)
    assert "h1" not in testapp.get("/TestProject/", headers={**basic(), **JSON}).json["records"]
    trash = testapp.get("/TestProject/@@trash", headers={**basic(), **JSON}).json
    [item] = [i for i in trash["records"] if i["label"] == "h1"]
    assert item["deleted_by"] == "testuser"
    # the history of a deleted record is still there
    assert history(testapp)["entries"][0]["action"] == "delete"
    res = testapp.post_json("/TestProject/@@trash", {"action": "restore", "label": "h1",
                                                     "deleted_at": item["deleted_at"]},
                            headers=basic())
    assert res.json["restored"] == "h1"
    got = testapp.get("/TestProject/h1/", headers=basic())
    assert got.headers["ETag"] == etag and got.json["reason"] == "second"
    assert [e["action"] for e in history(testapp)["entries"]] == [
        "restore", "delete", "update", "create"]
    assert testapp.get("/TestProject/@@trash", headers={**basic(), **JSON}).json[
        "records"] == []


def test_a_label_in_the_trash_can_be_reused_and_both_kept(testapp):
    put(testapp, "h1")
    testapp.delete("/TestProject/h1/", headers=basic(), status=204)
    put(testapp, "h1", reason="new one")  # 201: the label is free
    [item] = testapp.get("/TestProject/@@trash", headers={**basic(), **JSON}).json["records"]
    res = testapp.post_json("/TestProject/@@trash", {"action": "restore", "label": "h1",
                                                     "deleted_at": item["deleted_at"]},
                            headers=basic(), status=409)
    assert "exists" in res.json["detail"]
    testapp.delete("/TestProject/h1/", headers=basic(), status=204)
    assert len(testapp.get("/TestProject/@@trash", headers={**basic(), **JSON}).json[
        "records"]) == 2


def test_tag_delete_trashes_every_tagged_record(testapp):
    for label in ("t1", "t2", "t3"):
        put(testapp, label, tags=["doomed"] if label != "t3" else ["kept"])
    res = testapp.delete("/TestProject/tag/doomed/", headers=basic())
    assert res.text == "2"
    labels = {i["label"] for i in testapp.get(
        "/TestProject/@@trash", headers={**basic(), **JSON}).json["records"]}
    assert labels == {"t1", "t2"}


def test_purge_takes_the_admin_role_and_destroys(testapp, storage):
    put(testapp, "h1")
    testapp.delete("/TestProject/h1/", headers=basic(), status=204)
    [item] = testapp.get("/TestProject/@@trash", headers={**basic(), **JSON}).json["records"]
    body = {"action": "purge", "label": "h1", "deleted_at": item["deleted_at"]}
    with transaction.manager:
        storage.set_grant("TestProject", "testuser", "write")
    testapp.post_json("/TestProject/@@trash", body, headers=basic(), status=403)
    with transaction.manager:
        storage.set_grant("TestProject", "testuser", "admin")
    assert testapp.post_json("/TestProject/@@trash", body, headers=basic()).json == {
        "purged": "h1"}
    assert testapp.get("/TestProject/@@trash", headers={**basic(), **JSON}).json[
        "records"] == []
    testapp.get("/TestProject/h1/@@history", headers={**basic(), **JSON}, status=404)


@pytest.mark.parametrize("body", [
    {"action": "explode", "label": "h1", "deleted_at": "2026-01-01 00:00:00.000000"},
    {"action": "restore", "label": "../x", "deleted_at": "2026-01-01 00:00:00.000000"},
    {"action": "restore", "label": "h1", "deleted_at": "yesterday"},
    {"action": "restore", "label": ["h1"], "deleted_at": "2026-01-01 00:00:00.000000"},
    {"action": "restore", "label": "h" * 5000, "deleted_at": "2026-01-01 00:00:00.000000"},
    [1, 2],
])
def test_trash_actions_refuse_bad_fields_with_400(testapp, body):
    res = testapp.post_json("/TestProject/@@trash", body, headers=basic(), status=400)
    assert set(res.json) >= {"error", "detail"}


def test_a_missing_trash_item_is_404(testapp):
    res = testapp.post_json("/TestProject/@@trash", {
        "action": "restore", "label": "h1", "deleted_at": "2026-01-01 00:00:00.000000"},
        headers=basic(), status=404)
    assert res.json["error"] == "not found"


def test_project_history_records_grants_and_description_for_admins(testapp, storage):
    with transaction.manager:
        storage.set_grant("TestProject", "testuser", "admin")
        storage.put_user(UserInfo("alice", "x"))
    testapp.post_json("/TestProject/permissions", {"user": "alice", "role": "read"},
                      headers=basic())
    testapp.put_json("/TestProject/", {"description": "new words"},
                     headers={**basic(), "Content-Type": V4.format("project")})
    entries = testapp.get("/TestProject/@@history", headers={**basic(), **JSON}).json[
        "entries"]
    assert [e["action"] for e in entries[:2]] == ["update", "grant"]
    assert entries[0]["changes"]["description"]["new"] == "new words"
    assert entries[1]["changes"] == {"alice": {"new": "read"}}
    assert entries[0]["user"] == "testuser"
    with transaction.manager:
        storage.set_grant("TestProject", "alice", "write")
    testapp.get("/TestProject/@@history", headers={**basic("alice", "x"), **JSON}, status=401)


def test_a_deleted_project_is_restored_whole_by_its_admin(testapp, storage):
    with transaction.manager:
        storage.set_grant("TestProject", "testuser", "admin")
    put(testapp, "h1")
    before = testapp.get("/TestProject/", headers={**basic(), **JSON}).json["records"]
    testapp.delete("/TestProject/", headers=basic(), status=204)
    testapp.get("/TestProject/", headers={**basic(), **JSON}, status=404)
    listed = testapp.get("/_trash", headers={**basic(), **JSON}).json["projects"]
    [item] = [p for p in listed if p["id"] == "TestProject"]
    assert item["admins"] == ["testuser"]
    testapp.post_json("/_trash", {"action": "restore", "project": "TestProject",
                                  "deleted_at": item["deleted_at"]}, headers=basic())
    after = testapp.get("/TestProject/", headers={**basic(), **JSON}).json["records"]
    assert sorted(after) == sorted(before)
    assert [e["action"] for e in history(testapp)["entries"]][:1] == ["create"]
    with transaction.manager:
        assert storage.get_grants("TestProject") == {"testuser": "admin"}


def test_server_trash_shows_others_nothing(testapp, storage):
    with transaction.manager:
        storage.set_grant("TestProject", "testuser", "admin")
        storage.put_user(UserInfo("alice", "x"))
    testapp.delete("/TestProject/", headers=basic(), status=204)
    testapp.get("/_trash", headers=JSON, status=401)
    from pyramid_sumatra.passwords import hash_password
    with transaction.manager:
        storage.put_user(UserInfo("alice", hash_password("alicepw")))
    assert testapp.get("/_trash", headers={**basic("alice", "alicepw"), **JSON}).json == {
        "projects": []}
    [item] = testapp.get("/_trash", headers={**basic(), **JSON}).json["projects"]
    testapp.post_json("/_trash", {"action": "purge", "project": "TestProject",
                                  "deleted_at": item["deleted_at"]},
                      headers=basic("alice", "alicepw"), status=404)


def test_purge_command_logic_empties_old_trash(testapp, storage):
    from pyramid_sumatra.services import trash

    put(testapp, "h1")
    testapp.delete("/TestProject/h1/", headers=basic(), status=204)
    with transaction.manager:
        assert trash.purge_older(storage, trash.older_than("1d", 30)) == 0
        assert trash.purge_older(storage, trash.older_than("0d", 30), "TestProject") == 1
    with transaction.manager:
        assert storage.list_trash("TestProject") == []
    with pytest.raises(ValueError):
        trash.older_than("forever", 30)


# -- pages ------------------------------------------------------------------------------


def test_record_page_shows_history_and_trash_page_restores(testapp):
    from test_ui_pages import login

    put(testapp, "h1")
    put(testapp, "h1", status=200, reason="second ✓")
    login(testapp)
    page = testapp.get("/TestProject/h1/", headers=HTML)
    section = page.html.select_one("#history")
    assert "second ✓" in section.select_one("ins.new").text
    assert section.select_one("del.old").text == "first"
    form = page.forms[[k for k, f in page.forms.items()
                       if f.action.endswith("@@edit")][0]]
    form["outcome"] = "edited in the page"
    form.submit(headers=HTML, status=303)
    full = testapp.get("/TestProject/h1/@@history", headers=HTML)
    assert full.html.select_one(".history-entry")["data-action"] == "edit"
    testapp.post("/TestProject/h1/@@delete", {"csrf_token": csrf_of(page)}, headers=HTML,
                 status=303)
    trash_page = testapp.get("/TestProject/@@trash", headers=HTML)
    row = trash_page.html.select_one('tr[data-label="h1"]')
    assert row is not None
    restore = [f for f in trash_page.forms.values()
               if f.get("label", default=None) is not None and f["label"].value == "h1"][0]
    restore.submit("action", value="restore", headers=HTML, status=303)
    assert testapp.get("/TestProject/h1/", headers=basic()).json["outcome"] == \
        "edited in the page"


def csrf_of(page) -> str:
    return page.html.select_one('input[name="csrf_token"]')["value"]


# -- a backend without the hooks ---------------------------------------------------------


def backend_without_history(settings: dict):
    """A plugin backend lacking the history and trash hooks: the SQLAlchemy backend with
    those hookimpls masked (an attribute that is not a hookimpl is no hook)."""
    from pyramid_sumatra_backends.sqlalchemy import SqlAlchemyBackend

    masked = dict.fromkeys(HISTORY_HOOKS + TRASH_HOOKS)
    return type("NoHistoryBackend", (SqlAlchemyBackend,), masked)(settings)


@pytest.fixture
def bare_app(tmp_path, monkeypatch):
    import webtest

    import pyramid_sumatra
    from pyramid_sumatra import build_storage, resolve_settings
    from pyramid_sumatra.demo import load_demo

    name = plugin_module(monkeypatch, "no_history_backend_for_test", None)
    sys.modules["no_history_backend_for_test"].factory = backend_without_history
    settings = {"sumatra.backend": name, "sqlalchemy.url": f"sqlite:///{tmp_path}/b.sqlite",
                "sumatra.initdb": "true", "sumatra.secret": "x" * 32}
    monkeypatch.setattr("pyramid_sumatra.services.users.hash_password", _CHEAP_HASHER.hash)
    storage = build_storage(resolve_settings(settings))
    storage.initialize()
    assert not storage.history_available and not storage.trash_available
    with transaction.manager:
        load_demo(storage)
    storage.dispose()
    app = pyramid_sumatra.main({}, **settings)
    yield webtest.TestApp(app)
    app.registry["sumatra.storage"].dispose()


def test_a_backend_without_the_hooks_destroys_and_says_so(bare_app):
    put(bare_app, "h1")
    bare_app.delete("/TestProject/h1/", headers=basic(), status=204)
    bare_app.get("/TestProject/h1/", headers=basic(), status=404)
    res = bare_app.get("/TestProject/@@trash", headers={**basic(), **JSON}, status=404)
    assert res.json["error"] == "not available"
    bare_app.get("/TestProject/h1/@@history", headers={**basic(), **JSON}, status=404)
    put(bare_app, "h2")
    from test_ui_pages import login
    login(bare_app)
    page = bare_app.get("/TestProject/h2/", headers=HTML)
    assert page.html.select_one("#history-unavailable") is not None
    assert "Delete permanently" in page.text
    assert bare_app.get("/TestProject/@@trash", headers=HTML).html.select_one(
        "#trash-unavailable") is not None
    assert bare_app.delete("/TestProject/tag/a/", headers=basic()).text == "1"



def test_reading_a_record_asks_storage_for_no_history(testapp, wsgi_app, storage):
    put(testapp, "h1")
    put(testapp, "h1", status=200, reason="second")
    called: list[str] = []
    app_storage = wsgi_app.registry["sumatra.storage"]
    undo = app_storage.pm.add_hookcall_monitoring(
        lambda hook_name, impls, kwargs: called.append(hook_name), lambda *args: None)
    try:
        testapp.get("/TestProject/h1/", headers=basic(), status=200)
        testapp.get("/TestProject/", headers={**basic(), **JSON}, status=200)
    finally:
        undo()
    # The record was read (with its project, where the backend reads both at once) ...
    assert {"sumatra_get_record", "sumatra_get_project_record"} & set(called)
    # ... and no history.
    assert not [h for h in called if "history" in h or "trash" in h]



def test_anonymous_readers_of_a_public_project_see_no_usernames(testapp):
    testapp.put_json("/TestProject2/pub/", doc("pub"),
                     headers={**basic(), "Content-Type": V4.format("record")}, status=201)
    entries = testapp.get("/TestProject2/pub/@@history", headers=JSON).json["entries"]
    assert [(e["action"], e["user"]) for e in entries] == [("create", "")]
    assert testapp.get("/TestProject2/pub/@@history", headers={**basic(), **JSON}).json[
        "entries"][0]["user"] == "testuser"
    page = testapp.get("/TestProject2/pub/", headers=HTML)
    assert "testuser" not in page.html.select_one("#history").text
    testapp.get("/TestProject2/@@trash", headers=JSON, status=401)  # the write role only


def test_an_earlier_revision_of_a_deleted_record_skips_a_newer_record_of_its_label(testapp):
    put(testapp, "h1", reason="old one")
    put(testapp, "h1", status=200, reason="old one, edited")
    first = history(testapp)["entries"][-1]["revision_after"]
    testapp.delete("/TestProject/h1/", headers=basic(), status=204)
    old = testapp.get("/TestProject/h1/@@history", {"revision": first}, headers=basic()).json
    assert old["reason"] == "old one"
    put(testapp, "h1", reason="new one")
    put(testapp, "h1", status=200, reason="new one, edited")
    testapp.delete("/TestProject/h1/", headers=basic(), status=204)
    # the newest trashed one is the new record; the old revision is still reachable
    old = testapp.get("/TestProject/h1/@@history", {"revision": first}, headers=basic()).json
    assert old["reason"] == "old one"


def test_tag_delete_pages_through_many_records(testapp, monkeypatch):
    from pyramid_sumatra.services import records

    monkeypatch.setattr(records, "_TAG_PAGE", 2)
    for i in range(5):
        put(testapp, f"m{i}", tags=["many"])
    assert testapp.delete("/TestProject/tag/many/", headers=basic()).text == "5"
    assert len(testapp.get("/TestProject/@@trash", headers={**basic(), **JSON}).json[
        "records"]) == 5
