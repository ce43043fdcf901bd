"""The app starts on a fresh store, serves the demo, and the live server answers."""

import json
import urllib.request

from conftest import CLIENT_ACCEPT, basic


def test_demo_project_list_shows_public_project_to_anonymous(testapp):
    res = testapp.get("/", headers={"Accept": CLIENT_ACCEPT.format(kind="project-list")})
    assert [p["id"] for p in res.json] == ["TestProject2"]


def test_demo_private_project_lists_four_records(testapp):
    res = testapp.get("/TestProject/", headers={**basic(),
                      "Accept": CLIENT_ACCEPT.format(kind="project")})
    assert len(res.json["records"]) == 4


def test_live_server_answers(live_server):
    with urllib.request.urlopen(live_server.url + "TestProject2/") as res:
        body = json.loads(res.read())
    assert body["id"] == "TestProject2"


def test_startup_objects_are_frozen_once_per_process(testapp):
    import gc

    from pyramid_sumatra import freeze_startup_objects

    # The app the fixture built froze what existed then; a second app does not again
    # (frozen objects are never collected: a test run building many apps must not pin them).
    assert gc.get_freeze_count() > 0
    assert freeze_startup_objects() is False
