"""Writers racing on one label over a real server: one 201, the rest 200, never a 500."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

from conftest import V4, basic, load_example


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
