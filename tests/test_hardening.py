"""Issue 11, security hardening: each defect the outside probe found, reproduced as found.

Every test runs on every backend (the ``testapp`` fixture) unless it is about code
above storage only. A refused request is a 4xx with ``{"error", "detail"}`` naming the
problem, and nothing is stored.
"""

from __future__ import annotations

import base64
import json

import pytest
import transaction
from conftest import basic, load_example
from test_ui_forms import admin_app, csrf, flashes  # noqa: F401 - fixtures
from test_ui_pages import HTML, login  # noqa: F401

from pyramid_sumatra.headers import SECURITY_HEADERS

JSON = {"Accept": "application/json"}
RECORD = "application/vnd.sumatra.record-v4+json"
PROJECT = "application/vnd.sumatra.project-v4+json"


def put(app, url: str, doc, status: int, headers: dict | None = None, ctype: str = RECORD):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return app.put(url, body, headers={**basic(), "Content-Type": ctype, **(headers or {})},
                   status=status)


def record(label: str, **fields) -> dict:
    return {**load_example("example_0.7.json"), "label": label, **fields}


def assert_error(res, *words: str) -> None:
    body = res.json
    assert set(body) >= {"error", "detail"}
    text = (body["error"] + " " + body["detail"] + " " + body.get("field", "")).lower()
    for word in words:
        assert word.lower() in text, (word, body)


# -- 4. the 401/429 page, not a 500 ---------------------------------------------------


@pytest.mark.parametrize(("url", "headers", "status"), [
    ("/TestProject/", basic(password="wrong"), 401),
    ("/", {"Authorization": "Basic !!!"}, 401),
    ("/_login", {"Authorization": "Basic !!!"}, 401),
    ("/_api/", {"Authorization": "Basic !!!"}, 401),
    ("/TestProject2/", basic(password="wrong"), 401),
])
def test_html_pages_answer_401_not_500(testapp, url, headers, status):
    res = testapp.get(url, headers={**headers, "Accept": "text/html"}, status=status)
    assert res.content_type == "text/html"
    assert "401" in res.html.select_one(".error-code").text
    assert res.headers["WWW-Authenticate"].startswith("Basic")
    for name, value in SECURITY_HEADERS.items():
        assert res.headers[name] == value


def test_locked_out_user_gets_the_429_page_on_every_page(testapp):
    for _ in range(5):
        testapp.get("/TestProject/", headers={**JSON, **basic(password="wrong")}, status=401)
    for url in ("/", "/TestProject/", "/_login", "/TestProject/haggling/"):
        res = testapp.get(url, headers={"Accept": "text/html", **basic()}, status=429)
        assert res.content_type == "text/html"
        assert "429" in res.html.select_one(".error-code").text
        assert int(res.headers["Retry-After"]) >= 1
        assert res.headers["X-Frame-Options"] == "DENY"


# -- 5. names ending in a newline --------------------------------------------------------


@pytest.mark.parametrize("url", ["/SecPriv/nl%0A/", "/nl%0A/x/", "/SecPriv/nl%0D/"])
def test_names_ending_in_a_newline_are_refused(testapp, storage, url):
    label = url.rstrip("/").rsplit("/", 1)[1].replace("%0A", "\n").replace("%0D", "\r")
    res = put(testapp, url, record(label), 400)
    assert_error(res, "invalid name")
    with transaction.manager:
        assert storage.get_project("nl\n") is None
        assert storage.get_project("SecPriv") is None
    assert_error(put(testapp, "/nl%0A/", {}, 400, ctype=PROJECT), "project id")


def test_name_rule_is_a_whole_string_match():
    from pyramid_sumatra.records import name_problem, normalise_timestamp

    assert name_problem("nl\n", "label")
    assert name_problem("ok", "label") is None
    from pyramid_sumatra.accesslog import _VALID_ID
    assert not _VALID_ID.fullmatch("abc\n")
    with pytest.raises(ValueError):
        normalise_timestamp("2020-01-01 00:00:00+01:00\nx")


# -- 6. hostile values: 400 naming the field, nothing stored ----------------------------


def _deep(depth: int) -> dict:
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value  # type: ignore[return-value]


@pytest.mark.parametrize("depth", [101, 1_000, 100_000])
def test_deeply_nested_bodies_are_400(testapp, storage, depth):
    with transaction.manager:
        storage.set_grant("TestProject", "testuser", "admin")
    deep = _deep(depth)
    body = ('{"label":"deep","timestamp":"2020-01-01 00:00:00","parameters":'
            + '{"a":' * depth + "1" + "}" * depth + "}").encode()
    res = put(testapp, "/TestProject/deep/", body, 400)
    assert_error(res, "nest", "parameters" if depth < 900 else "body")
    res = put(testapp, "/TestProject/", json.dumps(deep).encode() if depth < 900 else
              b'{"name":' + b"[" * depth + b"]" * depth + b"}", 400, ctype=PROJECT)
    assert_error(res, "nest")
    res = testapp.post("/TestProject/permissions/", b"[" * depth + b"]" * depth,
                       headers={**basic(), "Content-Type": "application/json"}, status=400)
    assert_error(res, "nest")
    with transaction.manager:
        assert storage.get_record("TestProject", "deep") is None


def test_depth_100_is_still_accepted(testapp):
    put(testapp, "/TestProject/deep100/", record("deep100", parameters=_deep(99)), 201)


@pytest.mark.parametrize(("field", "text", "words"), [
    ("repeats", "9" * 5000, ["number"]),
    ("duration", "9" * 400, ["duration", "range"]),
    ("timestamp", '"9999-12-31 23:59:59-23:59"', ["timestamp", "range"]),
    ("timestamp", '"0001-01-01 00:00:00+23:59"', ["timestamp", "range"]),
])
def test_hostile_numbers_and_timestamps_are_400(testapp, storage, field, text, words):
    doc = record("hostile")
    doc[field] = "@@@"
    body = json.dumps(doc).replace('"@@@"', text).encode()
    res = put(testapp, "/TestProject/hostile/", body, 400)
    assert_error(res, *words)
    with transaction.manager:
        assert storage.get_record("TestProject", "hostile") is None


def _cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


BAD_CURSORS = [_cursor([1, [1]]), _cursor([None, None]), _cursor(10**23), _cursor([[], "x"]),
               _cursor(["x", 1]), _cursor([10**400, "x"]), "%%%", "A" * 5000]


@pytest.mark.parametrize("cursor", BAD_CURSORS)
@pytest.mark.parametrize("order", ["", "&order=duration", "&order=-label"])
@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_bad_cursors_are_400(testapp, cursor, order, accept):
    res = testapp.get(f"/TestProject2/?limit=1&cursor={cursor}{order}", headers={"Accept": accept},
                      status=400)
    if accept == "text/html":
        assert "400" in res.html.select_one(".error-code").text
    else:
        assert_error(res, "cursor")


@pytest.mark.parametrize(("cursor", "order"), [
    ([10**23, "x"], "duration"), ([1.5, "x"], "-duration"), ("2020-01-01", "timestamp")])
def test_cursor_of_the_wrong_type_for_the_order_is_400(testapp, cursor, order):
    value = [cursor[0], cursor[1]] if isinstance(cursor, list) else [cursor, "x"]
    right = f"/TestProject2/?limit=1&cursor={_cursor(value)}&order={order}"
    testapp.get(right, headers=HTML, status=200)  # fits the order (the HTML table sorts)
    other = "label" if isinstance(value[0], (int, float)) else "duration"
    res = testapp.get(right.replace(f"order={order}", f"order={other}"), headers=HTML,
                      status=400)
    assert "cursor" in res.text


@pytest.mark.parametrize("limit", ["%C2%B2", "%D9%A3", "9" * 5000, "-1", "0", "1.5"])
def test_bad_limits_are_400(testapp, limit):
    res = testapp.get(f"/TestProject2/?limit={limit}", headers=JSON, status=400)
    assert_error(res, "limit")
    # the HTML page falls back to its default page size
    testapp.get(f"/TestProject2/?limit={limit}&n={limit}", headers={"Accept": "text/html"},
                status=200)


# -- 9. NUL through the web forms ------------------------------------------------------


def test_create_form_refuses_nul_like_the_api(admin_app, storage):  # noqa: F811
    for field in ("name", "description"):
        page = admin_app.post("/@@create", {"id": f"Nul{field}", field: "\x00nul",
                                            "csrf_token": csrf(admin_app)},
                              headers=HTML, status=303).follow(headers=HTML)
        assert any(field in f.lower() and "NUL" in f for f in flashes(page)), flashes(page)
        with transaction.manager:
            assert storage.get_project(f"Nul{field}") is None
    res = put(admin_app, "/NulApi/", {"description": "\x00nul"}, 400, ctype=PROJECT)
    assert_error(res, "description", "NUL")


@pytest.mark.parametrize("field", ["reason", "outcome", "tags"])
def test_edit_form_refuses_nul(admin_app, storage, field):  # noqa: F811
    with transaction.manager:
        before = storage.get_record("TestProject", "haggling").body
    page = admin_app.post("/TestProject/haggling/@@edit", {field: "a\x00b",
                          "csrf_token": csrf(admin_app)}, headers=HTML,
                          status=303).follow(headers=HTML)
    assert any("NUL" in f for f in flashes(page)), flashes(page)
    with transaction.manager:
        assert storage.get_record("TestProject", "haggling").body == before


def test_grant_form_refuses_nul_and_huge_usernames(admin_app, storage):  # noqa: F811
    for user in ("al\x00ice", "a" * 100_000):
        page = admin_app.post("/TestProject/permissions/@@grant",
                              {"user": user, "role": "read", "csrf_token": csrf(admin_app)},
                              headers=HTML, status=303).follow(headers=HTML)
        assert any("username" in f for f in flashes(page)), flashes(page)
        assert user not in page.text
    res = admin_app.post("/TestProject/permissions/", json.dumps({"user": "a\x00"}),
                         headers={**basic(), "Content-Type": "application/json"}, status=400)
    assert_error(res, "user")
    with transaction.manager:
        assert set(storage.get_grants("TestProject")) == {"testuser"}


# -- 10. If-None-Match: * makes a PUT create-only ----------------------------------------


def test_if_none_match_star_refuses_to_overwrite_a_record(testapp, storage):
    with transaction.manager:
        before = storage.get_record("TestProject", "haggling").body
    res = put(testapp, "/TestProject/haggling/", record("haggling", outcome="overwritten"), 412,
              headers={"If-None-Match": "*"})
    assert_error(res, "precondition")
    with transaction.manager:
        assert storage.get_record("TestProject", "haggling").body == before
    put(testapp, "/TestProject/fresh/", record("fresh"), 201, headers={"If-None-Match": "*"})


def test_if_none_match_naming_the_current_revision_is_412(testapp):
    etag = testapp.get("/TestProject/haggling/", headers=basic()).headers["ETag"]
    put(testapp, "/TestProject/haggling/", record("haggling"), 412, headers={"If-None-Match": etag})


def test_if_none_match_star_on_project_put(testapp, storage):
    res = put(testapp, "/TestProject/", {"description": "changed"}, 412,
              headers={"If-None-Match": "*"}, ctype=PROJECT)
    assert_error(res, "precondition")
    with transaction.manager:
        assert storage.get_project("TestProject").description != "changed"
    put(testapp, "/Brand/", {"description": "new"}, 201, headers={"If-None-Match": "*"},
        ctype=PROJECT)
