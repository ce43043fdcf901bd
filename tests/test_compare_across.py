"""Comparing records of several projects: each record read under its project's permissions."""

from __future__ import annotations

import pytest
import transaction
from conftest import basic
from test_ui_pages import app_settings, put_record, record_doc  # noqa: F401

from pyramid_sumatra.passwords import hash_password
from pyramid_sumatra.storage.types import UserInfo

HTML = {"Accept": "text/html"}
BOTH = "records=TestProject/haggling,TestProject2/20141013-172504"


@pytest.fixture
def alice(storage):
    """A user who may read TestProject2 (public) but not TestProject."""
    with transaction.manager:
        storage.put_user(UserInfo("alice", hash_password("alicepw")))
    return basic("alice", "alicepw")


def columns(page) -> list[str]:
    return [th.text for th in page.html.select("#comparison thead th")]


@pytest.mark.parametrize("path", ["/@@compare", "/TestProject/@@compare",
                                  "/TestProject2/@@compare"])
def test_records_of_two_projects_side_by_side(testapp, path):
    page = testapp.get(f"{path}?{BOTH}", headers={**HTML, **basic()})
    assert columns(page) == ["TestProject/haggling", "TestProject2/20141013-172504"]
    links = [a["href"] for a in page.html.select("#comparison thead a")]
    assert links == ["http://localhost/TestProject/haggling/",
                     "http://localhost/TestProject2/20141013-172504/"]
    assert page.html.select_one("#compare-records-input")["value"] == BOTH.split("=")[1]
    assert page.html.select("#cmp-fields tr.differs")  # timestamps at least


def test_a_bare_label_is_in_the_page_project(testapp):
    page = testapp.get("/TestProject/@@compare?records=haggling,TestProject2/20141013-172504",
                       headers={**HTML, **basic()})
    assert columns(page) == ["TestProject/haggling", "TestProject2/20141013-172504"]


def test_a_record_in_a_project_the_caller_cannot_read_is_refused(testapp, alice):
    for path in ("/@@compare", "/TestProject2/@@compare"):  # alice may read TestProject2
        res = testapp.get(f"{path}?{BOTH}", headers={**HTML, **alice}, status=403)
        assert "gourd" not in res.text and "haggling" not in res.text.replace(
            "records=TestProject/haggling", "")
        res = testapp.get(f"{path}?{BOTH}", headers=alice, status=403)
        assert res.json["error"] == "forbidden"
    # One unreadable record is enough, even with nothing to compare it with.
    testapp.get("/@@compare?records=TestProject/haggling", headers={**HTML, **alice}, status=403)
    # What she may read, she sees.
    page = testapp.get("/@@compare?records=TestProject2/20141013-172504",
                       headers={**HTML, **alice})
    assert page.html.select_one(".empty-state")


def test_anonymous_callers_get_the_login_or_a_401(testapp):
    res = testapp.get(f"/@@compare?{BOTH}", headers=HTML, status=302)
    assert "/_login?next=" in res.location
    res = testapp.get(f"/@@compare?{BOTH}", status=401)
    assert "Basic" in res.headers["WWW-Authenticate"]
    assert "haggling" not in res.text


def test_missing_records_and_projects_are_listed(testapp):
    page = testapp.get(f"/@@compare?{BOTH},TestProject/nope,NoSuchProject/x",
                       headers={**HTML, **basic()})
    assert columns(page) == ["TestProject/haggling", "TestProject2/20141013-172504"]
    assert "No record TestProject/nope, NoSuchProject/x." in page.html.select_one(
        "p.flash.error").text


@pytest.mark.parametrize("query", [
    "records=haggling",  # no project to default to at the root
    "records=TestProject/",
    "records=_bad/x",
    "records=" + ",".join(f"TestProject/l{i}" for i in range(13)),
    "records=" + "TestProject/" + "x" * 4000,
])
def test_bad_record_lists_are_a_400(testapp, query):
    res = testapp.get(f"/@@compare?{query}", headers=basic(), status=400)
    assert res.json["error"] == "invalid records"


def test_one_project_compare_is_unchanged(testapp):
    page = testapp.get("/TestProject/@@compare?labels=haggling,20111013-172503",
                       headers={**HTML, **basic()})
    assert columns(page) == ["haggling", "20111013-172503"]
    assert page.html.select_one("#compare-records-input")["value"] == \
        "TestProject/haggling,TestProject/20111013-172503"
