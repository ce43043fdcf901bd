"""A served record always carries ``project_id``, as the original server's did, though the
0.8.1 client never sends it; the stored body, its revision and ETag stay as PUT."""

from __future__ import annotations

import html
import io
import json

import transaction
from conftest import V4, basic, load_example

from pyramid_sumatra.records import etag, revision_of, serialise
from pyramid_sumatra.transfer import dump

V3 = "application/vnd.sumatra.record-v3+json"


def without_project_id(label: str) -> dict:
    doc = load_example("example_0.7.json")
    doc.pop("project_id", None)
    return {**doc, "label": label}


def put(testapp, project: str, doc: dict, status: int = 201):
    return testapp.put(f"/{project}/{doc['label']}/", json.dumps(doc), status=status,
                       headers={**basic(), "Content-Type": V4.format("record")})


def get(testapp, url: str, accept: str):
    return testapp.get(url, headers={**basic(), "Accept": accept})


def test_every_representation_carries_project_id(testapp, wsgi_app):
    doc = without_project_id("r1")
    created = put(testapp, "Pid", doc)
    served = {"project_id": "Pid", **doc}
    assert created.json == served
    for url in ("/Pid/r1/", "/Pid/last/"):
        v4 = get(testapp, url, V4.format("record"))
        assert v4.json == served
        assert get(testapp, url, "application/json").json == served
        v3 = get(testapp, url, V3)
        assert v3.content_type == V3 and v3.json["project_id"] == "Pid"
        page = html.unescape(get(testapp, url, "text/html").text)
        assert '"project_id": "Pid"' in page  # the whole record as JSON
    # Stored as PUT: the body, its revision and the ETag derived from it.
    storage = wsgi_app.registry["sumatra.storage"]
    with transaction.manager:
        stored = storage.get_record("Pid", "r1")
    assert stored.body == serialise(doc) and "project_id" not in stored.document
    assert stored.revision == revision_of(stored.body)
    tag = get(testapp, "/Pid/r1/", V4.format("record")).headers["ETag"]
    assert tag.strip('"') == etag(stored.revision, "v4")
    out = io.StringIO()
    with transaction.manager:
        dump(storage, out)
    bodies = [json.loads(line)["body"] for line in out.getvalue().splitlines()
              if json.loads(line).get("kind") == "record"]
    assert serialise(doc) in bodies  # a dump moves the body as stored


def test_a_body_with_project_id_is_served_as_stored(testapp):
    doc = {**without_project_id("r2"), "project_id": "Pid"}
    put(testapp, "Pid", doc)
    res = get(testapp, "/Pid/r2/", V4.format("record"))
    assert res.text == serialise(doc)


def test_an_update_keeps_serving_project_id(testapp):
    doc = without_project_id("r3")
    put(testapp, "Pid", doc)
    updated = put(testapp, "Pid", {**doc, "outcome": "better"}, status=200)
    assert updated.json["project_id"] == "Pid" and updated.json["outcome"] == "better"


def test_a_null_project_id_is_served_as_the_project(testapp, wsgi_app):
    doc = {**without_project_id("r4"), "project_id": None}
    put(testapp, "Pid", doc)
    assert get(testapp, "/Pid/r4/", V4.format("record")).json == {**doc, "project_id": "Pid"}
    with transaction.manager:
        stored = wsgi_app.registry["sumatra.storage"].get_record("Pid", "r4")
    assert stored.document["project_id"] is None  # stored as sent
