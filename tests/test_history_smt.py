"""The real ``smt`` (Sumatra 0.8.1, unchanged): run, comment, tag, ``smt delete --tag``, then
restore every record from the trash over the API and find each back with its history."""

from __future__ import annotations

import json
import urllib.request

from clienthelp import Smt, record_labels, server_json, server_status
from conftest import basic
from test_smt import smt, wait_for_next_second, workspace  # noqa: F401  (fixtures)


def post_json(base_url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        base_url + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json",
                 **basic()})
    with urllib.request.urlopen(request) as res:
        return json.loads(res.read())


def actions(url: str, project: str, label: str) -> list[str]:
    return [e["action"] for e in server_json(url, f"{project}/{label}/@@history")["entries"]]


def test_smt_delete_by_tag_then_restore_everything_with_history(live_server, smt: Smt):  # noqa: F811
    url, name = live_server.url, smt.project
    out = smt("run", "--label=one", "--reason=first try", "--tag=sweep", "default.param",
              "n=1")
    assert "hello from main.py, n=1" in out.stdout
    wait_for_next_second(server_json(url, f"{name}/one/")["timestamp"])
    smt("run", "--label=two", "--tag=sweep", "default.param", "n=2")
    wait_for_next_second(server_json(url, f"{name}/two/")["timestamp"])
    smt("run", "--label=three", "default.param", "n=3")
    smt("comment", "one", "the baseline")
    smt("tag", "reviewed", "one", "two")
    before = {label: server_json(url, f"{name}/{label}/") for label in ("one", "two")}
    history_before = {label: server_json(url, f"{name}/{label}/@@history")["entries"]
                      for label in ("one", "two")}
    assert history_before["one"][0]["action"] == "update"  # smt tag: a PUT of the record
    assert "tags" in history_before["one"][0]["changes"]
    assert any("outcome" in e["changes"] for e in history_before["one"])  # smt comment

    out = smt("delete", "--tag", "sweep")
    assert "2 records deleted." in out.stdout
    assert record_labels(url, name) == ["three"]
    assert server_status(url, f"{name}/one/") == 404
    assert smt("list").stdout.split() == ["three"]

    trash = server_json(url, f"{name}/@@trash")["records"]
    assert sorted(i["label"] for i in trash) == ["one", "two"]
    assert {i["deleted_by"] for i in trash} == {"testuser"}
    for item in trash:
        done = post_json(url, f"{name}/@@trash", {
            "action": "restore", "label": item["label"], "deleted_at": item["deleted_at"]})
        assert done["restored"] == item["label"]

    assert sorted(record_labels(url, name)) == ["one", "three", "two"]
    for label in ("one", "two"):
        assert server_json(url, f"{name}/{label}/") == before[label]
        entries = server_json(url, f"{name}/{label}/@@history")["entries"]
        assert [e["action"] for e in entries[:2]] == ["restore", "delete"]
        assert entries[2:] == history_before[label]  # the earlier history, intact
    assert sorted(smt("list").stdout.split()) == ["one", "three", "two"]
    assert server_json(url, f"{name}/@@trash")["records"] == []
    assert actions(url, name, "three")[-1] == "create"  # untouched by the delete
