"""Writers racing on one label over a real server: one 201, the rest 200, never a 500."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import webtest
from conftest import V4, basic, load_example, plugin_module, served

import pyramid_sumatra
from pyramid_sumatra.storage.hookspecs import hookimpl
from pyramid_sumatra.storage.types import StorageConflict


def put(url: str, doc: dict) -> int:
    request = urllib.request.Request(url, data=json.dumps(doc).encode(), method="PUT",
                                     headers={**basic(), "Content-Type": V4.format("record")})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_concurrent_creates_of_one_label(live_server):
    doc = load_example("example_0.7.json")
    doc.pop("project_id", None)
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def writer(i: int) -> None:
        mine = {**doc, "label": "race", "outcome": f"writer {i}"}
        barrier.wait()
        statuses.append(put(f"{live_server.url}Race/race/", mine))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(statuses) == [200] * 5 + [201]
    request = urllib.request.Request(f"{live_server.url}Race/race/", headers=basic())
    with urllib.request.urlopen(request) as response:
        stored = json.loads(response.read())
    assert stored["outcome"].startswith("writer ")
    request = urllib.request.Request(f"{live_server.url}Race/",
                                     headers={**basic(), "Accept": "application/json"})
    with urllib.request.urlopen(request) as response:
        assert len(json.loads(response.read())["records"]) == 1


class ConflictTwice:
    """A wrapper plugin: the first two record writes lose a (simulated) race."""

    def __init__(self):
        self.calls = 0

    @hookimpl(wrapper=True)
    def sumatra_put_record(self, record, create):
        self.calls += 1
        if self.calls <= 2:
            raise StorageConflict("simulated concurrent writer")
        return (yield)


def test_lost_race_is_replayed_after_a_growing_pause(app_settings, demo, monkeypatch):
    plugin = ConflictTwice()
    name = plugin_module(monkeypatch, "conflict_twice_for_test", plugin)
    pauses: list[float] = []
    monkeypatch.setattr("pyramid_sumatra.retry.time.sleep", pauses.append)
    app = webtest.TestApp(pyramid_sumatra.main(
        {}, **app_settings, **{"sumatra.plugins": name}))
    doc = {**load_example("example_0.7.json"), "label": "replayed"}
    doc.pop("project_id", None)
    app.put("/Replay/replayed/", json.dumps(doc),
            headers={**basic(), "Content-Type": V4.format("record")}, status=201)
    assert plugin.calls == 3
    assert len(pauses) == 2 and 0 <= pauses[0] <= 0.01 and 0 <= pauses[1] <= 0.02
    assert app.get("/Replay/replayed/", headers=basic()).json == served(doc, "Replay")
