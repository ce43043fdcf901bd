"""Every row of PROTOCOL.md over WebTest, on every backend of conftest.BACKENDS."""

from __future__ import annotations

import copy
import json

import pytest
from conftest import CLIENT_ACCEPT, V4, basic, load_example

RECORD_ACCEPT = CLIENT_ACCEPT.format(kind="record")
PROJECT_ACCEPT = CLIENT_ACCEPT.format(kind="project")
RECORD_TYPE = V4.format("record")
PROJECT_TYPE = V4.format("project")
EXAMPLES = ["example_0.3.json", "example_0.4.json", "example_0.5.json", "example_0.6.json",
            "example_0.7.json"]


def put_record(testapp, project, doc, status=None, headers=None, content_type=RECORD_TYPE):
    return testapp.put(f"/{project}/{doc['label']}/", json.dumps(doc),
                       headers={**basic(), "Content-Type": content_type, **(headers or {})},
                       status=status)


def get_json(testapp, url, accept=RECORD_ACCEPT, status=200, auth=True):
    headers = {"Accept": accept, **(basic() if auth else {})}
    return testapp.get(url, headers=headers, status=status)


def new_record(label="20240131-101500", **changes):
    doc = load_example("example_0.7.json")
    doc.update(label=label, **changes)
    doc.pop("project_id", None)
    return doc


def assert_error(res, status, word=None):
    assert res.status_int == status
    assert res.content_type == "application/json"
    body = res.json
    assert set(body) >= {"error", "detail"}
    if word:
        assert word in (body["error"] + " " + body["detail"] + " " + body.get("field", ""))


# -- project list --------------------------------------------------------------


def test_project_list_anonymous_sees_public_only(testapp):
    res = testapp.get("/", headers={"Accept": CLIENT_ACCEPT.format(kind="project-list")})
    assert res.content_type == V4.format("project-list")
    assert res.headers["Content-Type"].endswith("charset=utf-8")
    entry, = res.json
    assert entry["id"] == "TestProject2"
    assert set(entry) == {"id", "name", "description", "uri", "last_updated"}
    assert entry["uri"] == "http://localhost/TestProject2/"


def test_project_list_authenticated_sees_granted_newest_first(testapp):
    put_record(testapp, "TestProject2", new_record("new-one"))
    res = testapp.get("/", headers={**basic(), "Accept": "application/json"})
    assert [p["id"] for p in res.json] == ["TestProject2", "TestProject"]


# -- project -------------------------------------------------------------------


def test_project_document_lists_record_urls_newest_first(testapp):
    res = get_json(testapp, "/TestProject/", PROJECT_ACCEPT)
    doc = res.json
    assert res.content_type == PROJECT_TYPE
    assert doc["id"] == "TestProject" and doc["name"] == "Test Project #1"
    assert doc["tags"] is None and doc["user"] == "testuser"
    assert doc["access"] == ["testuser"]
    labels = [u.rstrip("/").rsplit("/", 1)[1] for u in doc["records"]]
    stamps = [get_json(testapp, u).json["timestamp"] for u in doc["records"]]
    assert stamps == sorted(stamps, reverse=True)
    assert all(u.startswith("http://localhost/TestProject/") and u.endswith("/")
               for u in doc["records"])
    assert len(labels) == 4


def test_project_document_quotes_labels_in_record_urls(testapp):
    """Labels may hold '+', '@' and ' ': their URLs quote them (percent-escapes), in the
    order of the record timestamps, and each URL reads its record back."""
    stamps = {"a b": "2024-01-03 10:00:00", "x+y@z": "2024-01-02 10:00:00",
              "plain-1.0_x": "2024-01-01 10:00:00"}
    for label, stamp in stamps.items():
        put_record(testapp, "Q", new_record(label, timestamp=stamp))
    urls = get_json(testapp, "/Q/", PROJECT_ACCEPT).json["records"]
    assert urls == ["http://localhost/Q/a%20b/", "http://localhost/Q/x%2By%40z/",
                    "http://localhost/Q/plain-1.0_x/"]
    assert [get_json(testapp, u).json["label"] for u in urls] == list(stamps)
    assert get_json(testapp, "/Q/?tags=none-has-it", PROJECT_ACCEPT).json["records"] == []


def test_public_project_for_anonymous_has_no_usernames(testapp):
    doc = get_json(testapp, "/TestProject2/", PROJECT_ACCEPT, auth=False).json
    assert doc["user"] == "anonymous"
    assert "access" not in doc
    doc = get_json(testapp, "/TestProject2/", PROJECT_ACCEPT).json
    assert "anonymous" in doc["access"]


def test_tags_filter_keeps_records_having_any_tag(testapp):
    put_record(testapp, "P", new_record("a", tags=["x"]))
    put_record(testapp, "P", new_record("b", tags=["y", "z"]))
    put_record(testapp, "P", new_record("c", tags=["w"]))
    doc = get_json(testapp, "/P/?tags=x,y", PROJECT_ACCEPT).json
    assert sorted(u.rstrip("/").rsplit("/", 1)[1] for u in doc["records"]) == ["a", "b"]
    assert doc["tags"] == "x,y"


def test_project_put_creates_then_updates(testapp):
    res = testapp.put("/NewProj/", json.dumps({"name": "New", "description": "d"}),
                      headers={**basic(), "Content-Type": PROJECT_TYPE}, status=201)
    assert res.json["name"] == "New"
    testapp.put("/NewProj/", json.dumps({"description": "changed"}),
                headers={**basic(), "Content-Type": PROJECT_TYPE}, status=200)
    doc = get_json(testapp, "/NewProj/", PROJECT_ACCEPT).json
    assert (doc["name"], doc["description"]) == ("New", "changed")
    # the creator was granted access (as admin)
    perms = get_json(testapp, "/NewProj/permissions/", "application/json").json
    assert perms["roles"] == {"testuser": "admin"}


def test_project_put_needs_authentication(testapp):
    res = testapp.put("/NewProj/", "{}", headers={"Content-Type": PROJECT_TYPE}, status=401)
    assert res.headers["WWW-Authenticate"] == 'Basic realm="Sumatra Server API"'
    get_json(testapp, "/NewProj/", PROJECT_ACCEPT, status=404)


def test_delete_project_by_owner(testapp):
    put_record(testapp, "Doomed", new_record("a"))
    testapp.delete("/Doomed/", headers=basic(), status=204)
    get_json(testapp, "/Doomed/", PROJECT_ACCEPT, status=404)


# -- records -------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
def test_compat_examples_round_trip_unchanged(testapp, name):
    doc = load_example(name)
    project = doc.get("project_id") or "Compat"
    res = put_record(testapp, project, doc, status=201)
    served = {"project_id": project, **doc}  # as the original server: always the project
    assert res.json == served
    assert get_json(testapp, f"/{project}/{doc['label']}/").json == served
    assert get_json(testapp, f"/{project}/{doc['label']}/",
                    accept="application/json").json == served


def test_unknown_keys_round_trip(testapp):
    doc = new_record("extra", future_field={"nested": [1, 2.5, None, "é"]},
                     another=12345678901234567890)
    put_record(testapp, "P", doc, status=201)
    assert get_json(testapp, "/P/extra/").json == {**doc, "project_id": "P"}


def test_record_put_creates_missing_project_and_grants_creator(testapp):
    put_record(testapp, "Fresh", new_record("r1"), status=201)
    doc = get_json(testapp, "/Fresh/", PROJECT_ACCEPT).json
    assert doc["access"] == ["testuser"]


def test_second_put_keeps_run_description_and_takes_results(testapp):
    first = new_record("run1", duration=None, output_data=[], stdout_stderr="", outcome="")
    put_record(testapp, "P", first, status=201)
    second = copy.deepcopy(first)
    second.update(duration=12.5, stdout_stderr="done", outcome="good", reason="why",
                  output_data=[{"path": "out.dat", "digest": "abc", "metadata": {},
                                "creation": "2024-01-31 10:20:00"}],
                  tags=["t1"], repeats="run0")
    second["version"] = "CHANGED"
    second["parameters"] = {"content": "{}", "type": "dict"}
    second["main_file"] = "other.py"
    res = put_record(testapp, "P", second, status=200)
    stored = get_json(testapp, "/P/run1/").json
    assert res.json == stored
    for key in ("duration", "stdout_stderr", "outcome", "reason", "output_data", "tags",
                "repeats"):
        assert stored[key] == second[key], key
    for key in ("version", "parameters", "main_file"):
        assert stored[key] == first[key], key


def test_v3_output_has_no_creation_and_v3_input_is_accepted(testapp):
    doc = new_record("v3rec")
    assert "creation" in doc["output_data"][0]
    put_record(testapp, "P", doc)
    v3 = get_json(testapp, "/P/v3rec/", accept=V4.format("record").replace("v4", "v3"))
    assert v3.content_type == "application/vnd.sumatra.record-v3+json"
    assert all("creation" not in entry for entry in v3.json["output_data"])
    legacy = new_record("v3in")
    for entry in legacy["output_data"]:
        entry.pop("creation")
    put_record(testapp, "P", legacy, content_type="application/vnd.sumatra.record-v3+json",
               status=201)
    stored = get_json(testapp, "/P/v3in/").json
    assert all(entry["creation"] is None for entry in stored["output_data"])


def test_delete_record(testapp):
    put_record(testapp, "P", new_record("gone"))
    testapp.delete("/P/gone/", headers=basic(), status=204)
    assert_error(get_json(testapp, "/P/gone/", status=404), 404)
    assert_error(testapp.delete("/P/gone/", headers=basic(), status=404), 404)


def test_last_is_most_recent_by_timestamp(testapp):
    put_record(testapp, "P", new_record("older", timestamp="2020-01-01 00:00:00"))
    put_record(testapp, "P", new_record("newer", timestamp="2021-01-01 00:00:00+02:00"))
    put_record(testapp, "P", new_record("middle", timestamp="2020-06-01 00:00:00"))
    res = get_json(testapp, "/P/last/")
    assert res.content_type == RECORD_TYPE
    assert res.json["label"] == "newer"


def test_last_of_empty_project_is_404(testapp):
    testapp.put("/Empty/", "{}", headers={**basic(), "Content-Type": PROJECT_TYPE})
    assert_error(get_json(testapp, "/Empty/last/", status=404), 404)


@pytest.mark.parametrize("segment", ["tag", "tagged"])
def test_tag_get_and_delete(testapp, segment):
    put_record(testapp, "P", new_record("a", tags=["keep"]))
    put_record(testapp, "P", new_record("b", tags=["drop", "keep"]))
    put_record(testapp, "P", new_record("c", tags=["drop"]))
    doc = get_json(testapp, f"/P/{segment}/drop/", PROJECT_ACCEPT).json
    assert sorted(u.rstrip("/").rsplit("/", 1)[1] for u in doc["records"]) == ["b", "c"]
    res = testapp.delete(f"/P/{segment}/drop/", headers=basic(), status=200)
    assert res.text == "2"
    doc = get_json(testapp, "/P/", PROJECT_ACCEPT).json
    assert [u.rstrip("/").rsplit("/", 1)[1] for u in doc["records"]] == ["a"]
    assert testapp.delete(f"/P/{segment}/drop/", headers=basic()).text == "0"


# -- names -----------------------------------------------------------------------


@pytest.mark.parametrize("label", ["permissions", "tag", "tagged", "last", "_private"])
def test_reserved_labels_are_rejected(testapp, label):
    res = put_record(testapp, "P", new_record(label), status=400)
    assert_error(res, 400, "reserved")


@pytest.mark.parametrize("url", ["/_secret/", "/%2E%2E/", "/P/a%00b/", "/P/..%2Fx/",
                                 "/P/a%0Ab/"])
def test_unsafe_names_are_rejected(testapp, url):
    # Either refused by name (400), or the WSGI layer already resolved ".." and "%2F"
    # into another URL that refuses the request: nothing escapes, nothing is stored.
    res = testapp.put(url, json.dumps(new_record("x")),
                      headers={**basic(), "Content-Type": RECORD_TYPE},
                      status="4*", expect_errors=True)
    assert res.status_int in (400, 404, 405, 415)
    assert res.content_type == "application/json"
    assert [p["id"] for p in testapp.get("/", headers=basic()).json] == [
        "TestProject2", "TestProject"]


def test_label_mismatch_and_project_mismatch(testapp):
    doc = new_record("a")
    res = testapp.put("/P/b/", json.dumps(doc), headers={**basic(),
                      "Content-Type": RECORD_TYPE}, status=400)
    assert_error(res, 400, "label")
    doc["project_id"] = "Other"
    assert_error(put_record(testapp, "P", doc, status=400), 400, "project_id")
    get_json(testapp, "/P/", PROJECT_ACCEPT, status=404)  # nothing stored, not even the project


# -- bad input -------------------------------------------------------------------


@pytest.mark.parametrize("body,field", [
    (b"{not json", "body"),
    (b"[1, 2]", "body"),
    (b"\xff\xfe", "body"),
    (json.dumps({"timestamp": "2020-01-01 00:00:00"}).encode(), "label"),
    (json.dumps({"label": "x"}).encode(), "timestamp"),
    (json.dumps({"label": "x", "timestamp": "yesterday"}).encode(), "timestamp"),
    (json.dumps({"label": "x", "timestamp": "2020-01-01 00:00:00", "tags": [1]}).encode(),
     "tags"),
    (json.dumps({"label": "x", "timestamp": "2020-01-01 00:00:00", "reason": 5}).encode(),
     "reason"),
    (json.dumps({"label": "x", "timestamp": "2020-01-01 00:00:00", "duration": "1"}).encode(),
     "duration"),
])
def test_malformed_records_get_400_naming_the_field(testapp, body, field):
    res = testapp.put("/P/x/", body, headers={**basic(), "Content-Type": RECORD_TYPE},
                      status=400)
    assert_error(res, 400, field)
    get_json(testapp, "/P/", PROJECT_ACCEPT, status=404)


def test_unsupported_body_type_is_415(testapp):
    res = testapp.put("/P/x/", json.dumps(new_record("x")),
                      headers={**basic(), "Content-Type": "text/plain"}, status=415)
    assert_error(res, 415)


def test_plain_json_body_is_accepted(testapp):
    put_record(testapp, "P", new_record("x"), content_type="application/json", status=201)


# -- negotiation -------------------------------------------------------------------


@pytest.mark.parametrize("accept,expected", [
    (None, RECORD_TYPE),
    ("*/*", RECORD_TYPE),
    ("application/json", "application/json"),
    ("application/vnd.sumatra.record-v3+json", "application/vnd.sumatra.record-v3+json"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html"),
])
def test_negotiation(testapp, accept, expected):
    headers = basic() if accept is None else {**basic(), "Accept": accept}
    res = testapp.get("/TestProject/20111013-172503/", headers=headers)
    assert res.content_type == expected
    assert res.headers["Vary"] == "Accept"


def test_format_overrides_accept(testapp):
    res = testapp.get("/TestProject/20111013-172503/?format=json",
                      headers={**basic(), "Accept": "text/html"})
    assert res.content_type == "application/json"
    res = testapp.get("/TestProject/20111013-172503/?format=html",
                      headers={**basic(), "Accept": "application/json"})
    assert res.content_type == "text/html"


def test_unacceptable_is_406(testapp):
    res = testapp.get("/TestProject/", headers={**basic(), "Accept": "image/png"}, status=406)
    assert_error(res, 406)
    assert_error(testapp.get("/?format=xml", status=406), 406)


def test_method_not_allowed_is_405_json(testapp):
    res = testapp.post("/TestProject/20111013-172503/", "{}", headers=basic(), status=405)
    assert_error(res, 405)
    assert "PUT" in res.headers["Allow"]


# -- authentication and authorisation ------------------------------------------------


def test_anonymous_private_project_is_401_with_exact_challenge(testapp):
    for url in ("/TestProject/", "/TestProject/20111013-172503/", "/TestProject/last/",
                "/TestProject/tag/x/"):
        res = testapp.get(url, headers={"Accept": RECORD_ACCEPT}, status=401)
        assert res.headers["WWW-Authenticate"] == 'Basic realm="Sumatra Server API"'
        assert_error(res, 401)


def test_wrong_password_is_401_even_on_public_project(testapp):
    res = testapp.get("/TestProject2/", headers={**basic("testuser", "nope"),
                                                 "Accept": PROJECT_ACCEPT}, status=401)
    assert res.headers["WWW-Authenticate"] == 'Basic realm="Sumatra Server API"'


def test_missing_project_is_404_to_anyone(testapp):
    assert_error(get_json(testapp, "/Nope/", PROJECT_ACCEPT, status=404, auth=False), 404)
    assert_error(get_json(testapp, "/Nope/", PROJECT_ACCEPT, status=404), 404)


def test_authenticated_without_grant_is_403(testapp, storage):
    import transaction

    from pyramid_sumatra.passwords import hash_password
    from pyramid_sumatra.storage.types import UserInfo

    with transaction.manager:
        storage.put_user(UserInfo("other", hash_password("secret1")))
    res = testapp.get("/TestProject/", headers={**basic("other", "secret1"),
                                                "Accept": PROJECT_ACCEPT}, status=403)
    assert_error(res, 403)


def test_anonymous_cannot_write_public_project(testapp):
    doc = new_record("anon")
    res = testapp.put("/TestProject2/anon/", json.dumps(doc),
                      headers={"Content-Type": RECORD_TYPE}, status=401)
    assert res.headers["WWW-Authenticate"] == 'Basic realm="Sumatra Server API"'
    testapp.delete("/TestProject2/20141013-172504/", status=401)
    testapp.delete("/TestProject2/tag/x/", status=401)
    get_json(testapp, "/TestProject2/20141013-172504/", auth=False)  # still there


def test_permissions_get_and_grant(testapp, storage):
    import transaction

    from pyramid_sumatra.passwords import hash_password
    from pyramid_sumatra.storage.types import UserInfo

    with transaction.manager:
        storage.put_user(UserInfo("alice", hash_password("secret1")))
    testapp.put("/Mine/", "{}", headers={**basic(), "Content-Type": PROJECT_TYPE}, status=201)
    doc = get_json(testapp, "/Mine/permissions/", "application/json").json
    assert doc["access"] == ["testuser"]
    res = testapp.post("/Mine/permissions/", {"user": "alice"}, headers=basic())
    assert res.json["access"] == ["alice", "testuser"]
    assert_error(testapp.post("/Mine/permissions/", {"user": "ghost"}, headers=basic(),
                              status=400), 400, "ghost")
    res = testapp.post_json("/Mine/permissions/", {"user": "alice", "role": "read"},
                            headers=basic())
    assert res.json["roles"]["alice"] == "read"
    # a read-only user can read but not write or grant
    get_json(testapp, "/Mine/", PROJECT_ACCEPT)
    alice = basic("alice", "secret1")
    testapp.get("/Mine/", headers={**alice, "Accept": PROJECT_ACCEPT}, status=200)
    testapp.put("/Mine/r/", json.dumps(new_record("r")),
                headers={**alice, "Content-Type": RECORD_TYPE}, status=403)
    testapp.post("/Mine/permissions/", {"user": "alice", "role": "admin"}, headers=alice,
                 status=403)
    get_json(testapp, "/Mine/permissions/", status=401, auth=False)
    testapp.delete("/Mine/permissions/?user=alice", headers=basic(), status=200)
    testapp.get("/Mine/", headers={**alice, "Accept": PROJECT_ACCEPT}, status=403)
    # the only admin cannot be revoked
    assert_error(testapp.delete("/Mine/permissions/?user=testuser", headers=basic(),
                                status=400), 400, "admin")


def test_browser_anonymous_is_redirected_to_login(testapp):
    res = testapp.get("/TestProject/", headers={"Accept": "text/html"}, status=302)
    assert "/_login?next=" in res.location


def test_browser_login_session_and_csrf(testapp):
    form = testapp.get("/_login").forms[0]
    form["username"], form["password"] = "testuser", "abc123"
    res = form.submit(status=303)
    assert res.location == "http://localhost/"
    page = testapp.get("/TestProject/", headers={"Accept": "text/html"})
    assert "Test Project #1" in page.text
    cookie = [c for c in testapp.cookiejar if c.name == "sumatra_session"][0]
    assert cookie.has_nonstandard_attr("HttpOnly") or "httponly" in str(cookie._rest).lower()
    # a state-changing request with the cookie but without a CSRF token is refused
    res = testapp.put("/TestProject/x/", json.dumps(new_record("x")),
                      headers={"Content-Type": RECORD_TYPE}, status=400)
    assert_error(res, 400, "CSRF")
    get_json(testapp, "/TestProject/x/", status=404)


def test_login_wrong_password(testapp):
    form = testapp.get("/_login").forms[0]
    form["username"], form["password"] = "testuser", "wrong"
    res = form.submit(status=400)
    assert "Wrong username or password" in res.text


def test_login_next_is_not_an_open_redirect(testapp):
    form = testapp.get("/_login?next=http://evil.example/").forms[0]
    form["username"], form["password"] = "testuser", "abc123"
    assert form.submit(status=303).location == "http://localhost/"


# -- caching and concurrency -----------------------------------------------------------


def test_etag_304_and_if_match(testapp):
    put_record(testapp, "P", new_record("e"))
    res = get_json(testapp, "/P/e/")
    etag = res.headers["ETag"]
    assert res.headers["Cache-Control"] == "private, no-cache"  # a private project
    testapp.get("/P/e/", headers={**basic(), "Accept": RECORD_ACCEPT, "If-None-Match": etag},
                status=304)
    v3 = get_json(testapp, "/P/e/", accept="application/vnd.sumatra.record-v3+json")
    assert v3.headers["ETag"] != etag  # representations differ
    # PUT with the current ETag (any representation) goes ahead
    put_record(testapp, "P", new_record("e", outcome="one"),
               headers={"If-Match": v3.headers["ETag"]}, status=200)
    # the old ETag now names an older revision: 412, nothing changed
    res = put_record(testapp, "P", new_record("e", outcome="two"), headers={"If-Match": etag},
                     status=412)
    assert_error(res, 412)
    assert get_json(testapp, "/P/e/").json["outcome"] == "one"
    new_etag = get_json(testapp, "/P/e/").headers["ETag"]
    assert new_etag != etag
    testapp.get("/P/e/", headers={**basic(), "Accept": RECORD_ACCEPT, "If-None-Match": etag},
                status=200)


def test_project_etag(testapp):
    res = get_json(testapp, "/TestProject/", PROJECT_ACCEPT)
    testapp.get("/TestProject/", headers={**basic(), "Accept": PROJECT_ACCEPT,
                                          "If-None-Match": res.headers["ETag"]}, status=304)
    put_record(testapp, "TestProject", new_record("changes-list"))
    testapp.get("/TestProject/", headers={**basic(), "Accept": PROJECT_ACCEPT,
                                          "If-None-Match": res.headers["ETag"]}, status=200)


def test_errors_are_json_everywhere(testapp):
    assert_error(testapp.get("/TestProject/tag/", headers=basic(), status=404), 404)
    assert_error(testapp.get("/_nothing_here", status=404), 404)
