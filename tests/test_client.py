"""The real Sumatra 0.8.1 ``HttpRecordStore`` (httplib2, unchanged) against a live server.

Every step is checked twice: through the client, and through the server's own JSON
(read with urllib), so a test fails when the server stores something wrong even if
the client would not notice.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import httplib2
import pytest
import transaction
from clienthelp import (
    encoded,
    example_record,
    record_labels,
    served_record,
    server_json,
    server_status,
)
from conftest import LiveServer, unique
from sumatra.datastore import DataKey
from sumatra.recordstore.base import RecordStoreAccessError
from sumatra.recordstore.http_store import HttpRecordStore
from sumatra.recordstore.shelve_store import ShelveRecordStore

from pyramid_sumatra.passwords import hash_password
from pyramid_sumatra.storage.types import UserInfo


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """httplib2 keeps its ``.cache`` in the current directory: use a fresh one."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def with_credentials(url: str, user: str = "testuser", password: str = "abc123") -> str:
    return url.replace("http://", f"http://{user}:{password}@", 1)


@pytest.fixture
def client(live_server, workdir) -> HttpRecordStore:
    """The client as ``smt init --store=http://testuser:abc123@host/`` configures it."""
    return HttpRecordStore(with_credentials(live_server.url))


@pytest.fixture
def anon(live_server, workdir) -> HttpRecordStore:
    return HttpRecordStore(live_server.url)


@pytest.fixture
def proj(client) -> str:
    """A new, empty project of testuser."""
    name = unique("client")
    client.create_project(name)
    return name


# -- save / get -----------------------------------------------------------------


def test_save_stores_the_document_the_client_sent(client, live_server):
    name = unique("client")
    record = example_record("20240131-100000", tags=["alpha", "beta"])
    client.save(name, record)  # creates the project first (has_project → 404 → PUT)

    assert server_json(live_server.url, f"{name}/")["access"] == ["testuser"]
    stored = server_json(live_server.url, f"{name}/20240131-100000/")
    assert stored == served_record(record, name)
    assert client.get(name, "20240131-100000") == record  # sumatra's own record comparison


def test_old_format_records_round_trip_through_the_client(client, live_server, proj):
    for version in ("0.3", "0.4", "0.5", "0.6", "0.7"):
        record = example_record(f"old-{version}", version=version)
        client.save(proj, record)
        assert server_json(live_server.url, f"{proj}/old-{version}/") == served_record(record, proj)
        # (sumatra's own Record comparison needs metadata that pre-0.4 records lack)
        assert encoded(client.get(proj, f"old-{version}")) == encoded(record)
    with pytest.raises(KeyError):
        client.get(proj, "no-such-label")


def test_second_save_keeps_run_results(client, live_server, proj):
    """``smt run`` saves a record when it starts and again with its results."""
    record = example_record("run-1")
    record.duration, record.output_data, record.outcome = None, [], ""
    record.stdout_stderr = "Not launched."
    client.save(proj, record)
    first = server_json(live_server.url, f"{proj}/run-1/")
    assert first["duration"] is None and first["output_data"] == []

    record.duration = 12.5
    record.stdout_stderr = "hello from the run\n"
    record.output_data = [DataKey("out/result.dat", "0123abcd", creation=datetime(
        2024, 1, 31, 10, 1, tzinfo=UTC), mimetype="text/plain", size=12)]
    record.outcome = "it worked"
    record.tags = {"done"}
    client.save(proj, record)

    stored = server_json(live_server.url, f"{proj}/run-1/")
    assert stored == served_record(record, proj)
    assert stored["duration"] == 12.5
    assert stored["stdout_stderr"] == "hello from the run\n"
    assert stored["output_data"] == [{"path": "out/result.dat", "digest": "0123abcd",
                                      "metadata": {"mimetype": "text/plain", "size": 12},
                                      "creation": "2024-01-31 10:01:00+0000"}]
    assert client.get(proj, "run-1") == record
    assert record_labels(live_server.url, proj, tags="done") == ["run-1"]


def test_get_then_save_sends_if_match_and_never_gets_412(wsgi_app, workdir):
    """httplib2 adds If-Match from its cache to a PUT of a URL it has read."""
    seen = []

    def recording(environ, start_response):
        if "httplib2" in environ.get("HTTP_USER_AGENT", ""):  # not this test's own checks
            seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"],
                         environ.get("HTTP_IF_MATCH"), environ.get("HTTP_IF_NONE_MATCH")))
        return wsgi_app(environ, start_response)

    with LiveServer(recording) as server:
        client = HttpRecordStore(with_credentials(server.url))
        name = unique("client")
        client.save(name, example_record("etag-1"))
        for reason in ("first edit", "second edit"):
            record = client.get(name, "etag-1")  # a GET again: revalidated with If-None-Match
            record.reason = reason
            client.save(name, record)  # PUT with If-Match of the revision just read
            assert server_json(server.url, f"{name}/etag-1/")["reason"] == reason

    path = f"/{name}/etag-1/"
    puts = [s for s in seen if s[0] == "PUT" and s[1] == path]
    assert len(puts) == 3
    assert puts[0][2] is None  # first save: nothing cached yet
    assert puts[1][2] and puts[2][2]  # after a GET: If-Match sent, and accepted
    gets = [s for s in seen if s[0] == "GET" and s[1] == path]
    assert len(gets) == 2 and all(g[3] is None for g in gets)  # each PUT dropped the cache


def test_a_stale_if_match_gets_412_and_stores_nothing(client, live_server, proj,
                                                      workdir):
    """Two machines: the second one's edit is not silently overwritten by the first."""
    client.save(proj, example_record("race-1"))
    other = HttpRecordStore(with_credentials(live_server.url))
    other.client.cache = httplib2.FileCache(str(workdir / "other-cache"))  # another machine

    mine = client.get(proj, "race-1")
    theirs = other.get(proj, "race-1")
    theirs.reason = "theirs"
    other.save(proj, theirs)
    mine.reason = "mine"
    with pytest.raises(RecordStoreAccessError, match="412"):
        client.save(proj, mine)
    assert server_json(live_server.url, f"{proj}/race-1/")["reason"] == "theirs"
    client.save(proj, mine)  # the failed PUT dropped the cached ETag: a retry goes ahead
    assert server_json(live_server.url, f"{proj}/race-1/")["reason"] == "mine"


# -- list / labels / delete / most_recent ------------------------------------------


@pytest.fixture
def three(client, proj) -> str:
    """Three records, oldest first: a (tags x), b (tags x, y), c (tags y)."""
    for minutes, (label, tags) in enumerate([("a", ["x"]), ("b", ["x", "y"]), ("c", ["y"])]):
        client.save(proj, example_record(label, minutes=minutes, tags=tags))
    return proj


def test_list_and_labels_newest_first(client, live_server, three):
    assert record_labels(live_server.url, three) == ["c", "b", "a"]
    assert client.labels(three) == ["c", "b", "a"]
    records = client.list(three)
    assert [r.label for r in records] == ["c", "b", "a"]
    assert [sorted(r.tags) for r in records] == [["y"], ["x", "y"], ["x"]]


def test_labels_with_tags(client, live_server, three):
    assert client.labels(three, tags="x") == ["b", "a"]
    assert client.labels(three, tags=["y"]) == ["c", "b"]
    assert client.labels(three, tags=["x", "y"]) == ["c", "b", "a"]  # any of the tags
    assert client.labels(three, tags="nothing") == []
    assert record_labels(live_server.url, three, tags="x") == ["b", "a"]
    assert server_json(live_server.url, f"{three}/", query="tags=x,y")["tags"] == "x,y"
    assert server_json(live_server.url, f"{three}/tag/y/")["records"] == [
        f"{live_server.url}{three}/c/", f"{live_server.url}{three}/b/"]


def test_delete(client, live_server, three):
    client.delete(three, "b")
    assert server_status(live_server.url, f"{three}/b/") == 404
    assert record_labels(live_server.url, three) == ["c", "a"]
    assert client.labels(three) == ["c", "a"]
    with pytest.raises(RecordStoreAccessError, match="404"):
        client.delete(three, "b")


def test_delete_by_tag(client, live_server, three):
    assert client.delete_by_tag(three, "x") == 2
    assert record_labels(live_server.url, three) == ["c"]
    assert server_status(live_server.url, f"{three}/a/") == 404
    assert client.delete_by_tag(three, "x") == 0
    assert client.labels(three, tags="y") == ["c"]


def test_most_recent(client, live_server, three):
    assert client.most_recent(three) == "c"
    assert server_json(live_server.url, f"{three}/last/")["label"] == "c"
    client.save(three, example_record("older", minutes=-60))
    assert client.most_recent(three) == "c"  # by timestamp, not by order of saving
    client.delete(three, "c")
    assert client.most_recent(three) == "b"


def test_update_through_the_client(client, live_server, three):
    """RecordStore.update (list, change, save each) reaches the server."""
    client.update(three, "outcome", "checked", tags=["x"])
    outcomes = {label: server_json(live_server.url, f"{three}/{label}/")["outcome"]
                for label in "abc"}
    assert outcomes == {"a": "checked", "b": "checked", "c": "42"}  # c: the example's own


# -- projects ---------------------------------------------------------------------


def test_has_project(client, anon):
    assert client.has_project("TestProject") is True
    assert client.has_project("TestProject2") is True
    assert client.has_project(unique("missing")) is False
    assert anon.has_project("TestProject") is False  # private: 401 for anonymous
    assert anon.has_project("TestProject2") is True  # public
    assert anon.has_project(unique("missing")) is False


def test_list_projects_and_the_demo(client, anon, live_server):
    assert anon.list_projects() == ["TestProject2"]
    # httplib2 sends credentials only after a 401 and "/" never challenges, so the
    # authenticated client sees the public list too (PROTOCOL.md); the server's own
    # list with credentials sent up front includes the private project.
    assert client.list_projects() == ["TestProject2"]
    assert {p["id"] for p in server_json(live_server.url, "")} == {"TestProject",
                                                                   "TestProject2"}
    # The demo data (the old server's fixtures) decodes in the client.
    records = client.list("TestProject")
    assert len(records) == 4
    assert client.most_recent("TestProject") == records[0].label


def test_create_update_and_read_project_info(client, anon, live_server):
    name = unique("client")
    client.create_project(name, "A long name", "What it is for")
    assert client.project_info(name) == {"name": "A long name",
                                         "description": "What it is for"}
    doc = server_json(live_server.url, f"{name}/")
    assert (doc["name"], doc["description"], doc["records"], doc["access"]) == (
        "A long name", "What it is for", [], ["testuser"])

    client.update_project_info(name, "Renamed", "New purpose")
    assert client.project_info(name) == {"name": "Renamed", "description": "New purpose"}
    doc = server_json(live_server.url, f"{name}/")
    assert (doc["name"], doc["description"]) == ("Renamed", "New purpose")

    with pytest.raises(RecordStoreAccessError, match="200"):
        client.create_project(name)  # exists: an update (200), which create reports
    with pytest.raises(RecordStoreAccessError, match="401"):
        anon.create_project(unique("client"))
    assert anon.has_project(name) is False  # private to its creator


def test_anonymous_reads_public_but_cannot_write(anon, live_server):
    labels = anon.labels("TestProject2")
    assert len(labels) == 1
    record = anon.get("TestProject2", labels[0])
    assert encoded(record)["label"] == labels[0]
    record.reason = "vandalised"
    with pytest.raises(RecordStoreAccessError, match="401"):
        anon.save("TestProject2", record)
    with pytest.raises(RecordStoreAccessError, match="401"):
        anon.delete("TestProject2", labels[0])
    assert server_json(live_server.url, f"TestProject2/{labels[0]}/")["reason"] != "vandalised"
    with pytest.raises(RecordStoreAccessError, match="401"):
        anon.list("TestProject")


# -- sync with a local store ---------------------------------------------------------


def test_sync_both_ways_with_a_shelve_store(client, live_server, proj, workdir):
    local = ShelveRecordStore(str(workdir / "records"))
    for minutes, label in enumerate(["local-1", "local-2"]):
        local.save(proj, example_record(label, minutes=minutes, tags=["local"]))
    client.save(proj, example_record("remote-1", minutes=10, tags=["remote"]))
    client.save(proj, example_record("both", minutes=20))
    local.save(proj, example_record("both", minutes=20))
    conflict_remote = example_record("conflict", minutes=30)
    client.save(proj, conflict_remote)
    conflict_local = example_record("conflict", minutes=30)
    conflict_local.main_file = "another.py"  # a different run with the same label
    local.save(proj, conflict_local)

    # HttpRecordStore.sync drops the base class's list of conflicting labels (a
    # client quirk), so the conflict shows in the data and in the reverse sync below.
    client.sync(local, proj)

    everything = ["conflict", "both", "remote-1", "local-2", "local-1"]
    assert record_labels(live_server.url, proj) == everything
    assert local.labels(proj) == everything
    for label in ("local-1", "local-2"):
        assert server_json(live_server.url, f"{proj}/{label}/") == served_record(
            local.get(proj, label), proj)
    assert local.get(proj, "remote-1") == client.get(proj, "remote-1")
    assert server_json(live_server.url, f"{proj}/conflict/") == served_record(conflict_remote, proj)
    assert local.get(proj, "conflict").main_file == "another.py"

    # The other direction, after new records on each side.
    local.save(proj, example_record("local-3", minutes=40))
    client.save(proj, example_record("remote-2", minutes=50))
    assert local.sync(client, proj) == ["conflict"]
    assert record_labels(live_server.url, proj) == ["remote-2", "local-3", *everything]
    assert local.labels(proj) == record_labels(live_server.url, proj)


def test_sync_creates_the_project_on_the_server(client, live_server, workdir):
    name = unique("client")
    local = ShelveRecordStore(str(workdir / "records"))
    local.save(name, example_record("only-local"))
    client.sync(local, name)
    assert server_json(live_server.url, f"{name}/")["access"] == ["testuser"]
    assert record_labels(live_server.url, name) == ["only-local"]
    assert local.sync(client, name) == []  # now identical on both sides


def test_import_of_exported_records(client, live_server, three):
    """``export`` then ``import_`` (smt export / import) into another project."""
    exported = client.export(three)
    target = unique("client")
    client.import_(target, exported)
    assert record_labels(live_server.url, target) == ["c", "b", "a"]
    for label in "abc":
        original = server_json(live_server.url, f"{three}/{label}/")
        assert server_json(live_server.url, f"{target}/{label}/") == {
            **original, "project_id": target}


# -- edge cases a real client meets ---------------------------------------------------


def test_unicode_text_and_tags(client, live_server, proj):
    record = example_record("unicode-1", tags=["café", "ok"])
    record.reason = "Résumé: ça marche ✓ — 漢字"
    record.stdout_stderr = "naïve output\n" * 1000
    client.save(proj, record)
    stored = server_json(live_server.url, f"{proj}/unicode-1/")
    assert stored == served_record(record, proj)
    assert client.get(proj, "unicode-1") == record
    assert client.labels(proj, tags="café") == ["unicode-1"]  # httplib2 %-encodes the IRI
    assert client.delete_by_tag(proj, "café") == 1
    assert record_labels(live_server.url, proj) == []


def test_most_recent_compares_timestamps_across_time_zones(client, live_server, proj):
    utc = example_record("utc", minutes=120)  # 12:00 UTC
    client.save(proj, utc)
    east = example_record("east")
    east.timestamp = datetime(2024, 1, 31, 15, 0, tzinfo=timezone(timedelta(hours=5)))
    client.save(proj, east)  # 15:00+05:00 is 10:00 UTC: older, though later on the clock
    assert server_json(live_server.url, f"{proj}/east/")["timestamp"] == "2024-01-31 15:00:00+0500"
    assert client.most_recent(proj) == "utc"
    assert client.labels(proj) == ["utc", "east"]
    assert client.get(proj, "east").timestamp == east.timestamp


def test_wrong_password_cannot_write(live_server, workdir):
    intruder = HttpRecordStore(with_credentials(live_server.url, password="wrong"))
    name = unique("client")
    assert intruder.has_project("TestProject") is False  # 401 again after the credentials
    with pytest.raises(RecordStoreAccessError, match="401"):
        intruder.save(name, example_record("x"))
    assert server_status(live_server.url, f"{name}/") == 404


def test_another_users_private_project(storage, client, live_server, workdir):
    with transaction.manager:
        storage.put_user(UserInfo(username="other", password_hash=hash_password("s3cret!")))
    other = HttpRecordStore(with_credentials(live_server.url, "other", "s3cret!"))
    other.client.cache = httplib2.FileCache(str(workdir / "other-cache"))
    # Granted nothing on TestProject: 403, which the client reports rather than
    # taking for "no such project" (so it never tries to create it).
    with pytest.raises(RecordStoreAccessError, match="403"):
        other.has_project("TestProject")
    with pytest.raises(RecordStoreAccessError, match="403"):
        other.save("TestProject", example_record("intrusion"))
    assert server_status(live_server.url, "TestProject/intrusion/") == 404
    # Its own project is its own: testuser is refused in turn.
    other.save("otherproject", example_record("mine"))
    assert server_json(live_server.url, "otherproject/", auth=False, user=("other", "s3cret!"))[
        "access"] == ["other"]
    with pytest.raises(RecordStoreAccessError, match="403"):
        client.get("otherproject", "mine")


def test_concurrent_clients_saving_into_one_project(client, live_server, proj, workdir):
    """Several ``smt run``s finishing at once: every record arrives, none is an error."""
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        store = HttpRecordStore(with_credentials(live_server.url))
        store.client.cache = httplib2.FileCache(str(workdir / f"cache-{n}"))
        try:
            for i in range(4):
                record = example_record(f"w{n}-{i}", minutes=n * 10 + i)
                store.save(proj, record)
                record.duration, record.outcome = float(i), f"done {n}"
                store.save(proj, record)
            shared = example_record("shared", minutes=99)  # every worker creates it
            shared.outcome = f"by {n}"
            store.save(proj, shared)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    labels = record_labels(live_server.url, proj)
    assert sorted(labels) == sorted(
        ["shared", *(f"w{n}-{i}" for n in range(4) for i in range(4))])
    assert server_json(live_server.url, f"{proj}/w3-2/")["outcome"] == "done 3"
    assert server_json(live_server.url, f"{proj}/shared/")["outcome"] in {
        f"by {n}" for n in range(4)}


def test_server_mounted_under_a_prefix(wsgi_app, workdir):
    """``--store=http://host/records/``: every URL the server emits keeps the prefix."""

    def mounted(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/records/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"outside the mount"]
        environ["SCRIPT_NAME"], environ["PATH_INFO"] = "/records", path[len("/records"):]
        return wsgi_app(environ, start_response)

    with LiveServer(mounted) as server:
        base = server.url + "records/"
        client = HttpRecordStore(with_credentials(base))
        name = unique("client")
        client.save(name, example_record("p-1", tags=["t"]))
        client.save(name, example_record("p-2", minutes=1))
        assert server_json(base, f"{name}/")["records"] == [f"{base}{name}/p-2/",
                                                            f"{base}{name}/p-1/"]
        assert client.labels(name) == ["p-2", "p-1"]  # follows the record URLs it was given
        assert client.most_recent(name) == "p-2"
        assert client.delete_by_tag(name, "t") == 1
        assert [p["uri"] for p in server_json(base, "") if p["id"] == name] == [
            f"{base}{name}/"]
