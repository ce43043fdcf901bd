"""``GET /<project>/@@plotdata``: rows to plot, the record table's filters, bounded input."""

from __future__ import annotations

import pytest
import transaction
from conftest import basic
from test_ui_pages import app_settings, put_record, record_doc  # noqa: F401

from pyramid_sumatra import plotdata
from pyramid_sumatra.passwords import hash_password
from pyramid_sumatra.storage.types import UserInfo

JSON = {"Accept": "application/json"}


def test_rows_carry_fields_and_flattened_parameters(testapp, storage):
    put_record(storage, "TestProject", record_doc(
        "nested", duration=2.5, tags=["x"], outcome="ok",
        parameters={"content": '{"a": {"b": 1, "c": "s"}, "flag": true, "xs": [1, 2], '
                               '"n": 100}', "type": "JSONParameterSet"}))
    body = testapp.get("/TestProject/@@plotdata", headers={**JSON, **basic()}).json
    assert body["count"] == body["total"] == 5 and body["next"] is None
    row = next(r for r in body["records"] if r["label"] == "nested")
    assert row["parameters"] == {"a.b": 1, "a.c": "s", "flag": "true", "n": 100}  # no lists
    assert (row["duration"], row["tags"], row["outcome"]) == (2.5, ["x"], "ok")
    assert body["parameters"]["n"] == "numeric"  # numbers in every record that has it
    assert body["parameters"]["distr"] == body["parameters"]["flag"] == "categorical"
    assert body["fields"]["timestamp"] == "time"


@pytest.mark.parametrize("query,labels", [
    ("tags=foobar", ["haggling"]),
    ("q=gourd", ["haggling"]),
    ("order=label&until=2011-10-13", ["20111013-172503", "20111013-172514", "haggling",
                                      "haggling_repeat"]),
    ("since=2030-01-01", []),
])
def test_the_record_table_filters_apply(testapp, query, labels):
    body = testapp.get(f"/TestProject/@@plotdata?{query}", headers={**JSON, **basic()}).json
    assert [r["label"] for r in body["records"]] == labels


def test_a_cursor_walks_past_the_cap(testapp, monkeypatch):
    monkeypatch.setattr(plotdata, "MAX_RECORDS", 3)
    first = testapp.get("/TestProject/@@plotdata?order=label&tags=", headers={
        **JSON, **basic()}).json
    assert first["count"] == 3 and first["next"]
    rest = testapp.get(first["next"], headers={**JSON, **basic()}).json
    assert [r["label"] for r in first["records"] + rest["records"]] == [
        "20111013-172503", "20111013-172514", "haggling", "haggling_repeat"]
    assert rest["next"] is None
    res = testapp.get("/TestProject/@@plotdata?limit=4", headers={**JSON, **basic()},
                      status=400)
    assert res.json["parameter"] == "limit" and "1 to 3" in res.json["detail"]


@pytest.mark.parametrize("query,parameter", [
    ("limit=0", "limit"), ("limit=10001", "limit"), ("limit=x", "limit"),
    ("order=body", "order"), ("since=2020-1-1", "since"), ("until=yesterday", "until"),
    ("nope=1", "nope"), ("q=a&q=b", "q"), ("q=" + "x" * 2001, "q"),
    ("tags=" + ",".join(f"t{i}" for i in range(51)), "tags"), ("cursor=garbage", "cursor"),
    ("cursor=" + "c" * 5000, "cursor"),
])
def test_bad_input_is_a_400_naming_the_parameter(testapp, query, parameter):
    res = testapp.get(f"/TestProject/@@plotdata?{query}", headers={**JSON, **basic()},
                      status=400)
    assert res.content_type == "application/json"
    assert set(res.json) >= {"error", "detail"}
    assert res.json["parameter"] == parameter and parameter in res.json["error"]


def test_reading_needs_the_view_permission(testapp, storage):
    with transaction.manager:
        storage.put_user(UserInfo("mallory", hash_password("mallorypw")))
    testapp.get("/TestProject/@@plotdata", headers=JSON, status=401)
    res = testapp.get("/TestProject/@@plotdata", headers={**JSON, **basic("mallory", "mallorypw")},
                      status=403)
    assert "haggling" not in res.text
    public = testapp.get("/TestProject2/@@plotdata", headers=JSON).json  # anonymous, public
    assert public["count"] >= 1
    testapp.get("/NoSuchProject/@@plotdata", headers={**JSON, **basic()}, status=404)


def test_the_project_page_links_the_plots_to_its_filter(testapp):
    page = testapp.get("/TestProject/?tags=foobar&limit=25&order=label",
                       headers={"Accept": "text/html", **basic()})
    plots = page.html.select_one("#plots")
    assert plots["data-plotdata"] == "http://localhost/TestProject/@@plotdata?tags=foobar"
    assert page.html.select_one('script[src$="plots.js"]')
    tag_page = testapp.get("/TestProject/tag/foobar/", headers={"Accept": "text/html", **basic()})
    assert tag_page.html.select_one("#plots")["data-plotdata"].endswith("@@plotdata?tags=foobar")
