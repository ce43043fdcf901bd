"""Contract: storing, reading, replacing and deleting records; transactions; status."""

from __future__ import annotations

import json

import pytest
import transaction

from pyramid_sumatra.records import build_stored_record, validate
from pyramid_sumatra.storage.testing.support import EXAMPLES_DIR, labels, put, record
from pyramid_sumatra.storage.types import RecordQuery, StorageConflict

EXAMPLES = sorted(p.name for p in EXAMPLES_DIR.glob("example_*.json"))


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_round_trips(store, project, example):
    doc = json.loads((EXAMPLES_DIR / example).read_text())
    validate(doc, project, doc["label"])
    rec = build_stored_record(project, doc)
    put(store, rec)
    with transaction.manager:
        got = store.get_record(project, doc["label"])
    assert json.loads(got.body) == doc
    assert got.revision == rec.revision
    for name in ("project_id", "label", "timestamp", "user", "main_file", "version",
                 "executable", "reason", "outcome", "duration"):
        assert getattr(got, name) == getattr(rec, name), name
    assert sorted(got.tags) == sorted(rec.tags)


def test_unusual_documents_round_trip(store, project):
    doc = {"label": "u1", "timestamp": "2024-02-29 23:59:59+02:00",
           "reason": "Ünïcödé ✓ 日本語 😀", "tags": ["é", "a b", "x,y"],
           "future_key": {"nested": [1, 2.5, -0.125, 10**18, None, True, "\t\\\"'"]},
           "parameters": {"content": "a = 1\nb = 'two'\n", "type": "SimpleParameterSet"},
           "duration": 0.1, "empty": {}, "list": []}
    put(store, build_stored_record(project, doc))
    with transaction.manager:
        got = store.get_record(project, "u1")
    assert json.loads(got.body) == doc
    assert got.timestamp == "2024-02-29 21:59:59"  # index fields are UTC
    assert sorted(got.tags) == sorted(["é", "a b", "x,y"])


def test_absent_record_is_none(store, project):
    with transaction.manager:
        assert store.get_record(project, "nope") is None
        assert store.get_record("no-such-project", "nope") is None


def test_replace_updates_body_index_fields_and_tags(store, project):
    put(store, record(project, "r1", reason="first", tags=["a", "b"], duration=1.0))
    new = record(project, "r1", reason="second", outcome="done", tags=["b", "c"], duration=2.5)
    with transaction.manager:
        store.put_record(new, create=False)
    with transaction.manager:
        got = store.get_record(project, "r1")
        by_a = store.query_records(project, RecordQuery(tags=["a"]))
        by_c = store.query_records(project, RecordQuery(tags=["c"]))
        info = store.get_project(project)
    assert got.document["reason"] == "second"
    assert (got.reason, got.outcome, got.duration) == ("second", "done", 2.5)
    assert got.revision == new.revision
    assert sorted(got.tags) == ["b", "c"], "sumatra_put_record(create=False) must store the tags"
    assert labels(by_a) == [] and labels(by_c) == ["r1"]
    assert info.record_count == 1  # a replace is not a new record


def test_removing_every_tag(store, project):
    put(store, record(project, "r1", tags=["a"]))
    with transaction.manager:
        store.put_record(record(project, "r1"), create=False)
    with transaction.manager:
        assert store.get_record(project, "r1").tags == []
        assert store.query_records(project, RecordQuery(tags=["a"])).records == []


def test_create_of_an_existing_label_conflicts_and_keeps_the_first(store, project):
    first = record(project, "r1", reason="first")
    put(store, first)
    with pytest.raises(StorageConflict):
        with transaction.manager:
            store.put_record(record(project, "r1", reason="second"), create=True)
    with transaction.manager:
        got = store.get_record(project, "r1")
        assert got.revision == first.revision
        assert store.get_project(project).record_count == 1


def test_same_label_in_two_projects_is_two_records(store, project):
    from pyramid_sumatra.storage.types import ProjectInfo

    with transaction.manager:
        store.put_project(ProjectInfo(id="Q"))
    put(store, record(project, "r1", reason="in P"), record("Q", "r1", reason="in Q"))
    with transaction.manager:
        assert store.get_record(project, "r1").reason == "in P"
        assert store.get_record("Q", "r1").reason == "in Q"
        assert store.delete_record("Q", "r1") is True
        assert store.get_record(project, "r1") is not None


def test_delete_record(store, project):
    put(store, record(project, "r1", tags=["t"]), record(project, "r2", tags=["t"]))
    with transaction.manager:
        assert store.delete_record(project, "r1") is True
    with transaction.manager:
        assert store.delete_record(project, "r1") is False
        assert store.get_record(project, "r1") is None
        assert labels(store.query_records(project, RecordQuery(tags=["t"]))) == ["r2"]
        assert store.get_project(project).record_count == 1


def test_put_moves_project_last_updated(store, project):
    with transaction.manager:
        before = store.get_project(project).last_updated
    put(store, record(project, "r1"))
    with transaction.manager:
        assert store.get_project(project).last_updated >= before


def test_deletes_move_project_last_updated(store, project):
    put(store, record(project, "r1"), record(project, "r2", tags=["t"]))
    for delete in (lambda: store.delete_record(project, "r1"),
                   lambda: store.delete_records_by_tag(project, "t")):
        with transaction.manager:
            before = store.get_project(project).last_updated
        with transaction.manager:
            assert delete()
        with transaction.manager:
            assert store.get_project(project).last_updated > before


def test_most_recent_record(store, project):
    with transaction.manager:
        assert store.most_recent_record(project) is None
    put(store,
        record(project, "old", "2023-01-01 00:00:00"),
        record(project, "b", "2024-05-05 12:00:00", reason="tie b"),
        record(project, "a", "2024-05-05 12:00:00"),
        record(project, "tz", "2024-05-05 13:30:00+02:00"))  # 11:30 UTC: older
    with transaction.manager:
        got = store.most_recent_record(project)
    assert got.label == "b"  # latest timestamp, ties broken by the greatest label
    assert got.document["reason"] == "tie b"  # with its body


def test_delete_records_by_tag(store, project):
    put(store, record(project, "r1", tags=["x", "keep"]), record(project, "r2", tags=["x"]),
        record(project, "r3", tags=["keep"]), record(project, "r4"))
    with transaction.manager:
        assert store.delete_records_by_tag(project, "x") == 2
    with transaction.manager:
        assert store.delete_records_by_tag(project, "x") == 0
        assert store.delete_records_by_tag(project, "never") == 0
        assert labels(store.query_records(project, RecordQuery(order="label"))) == ["r3", "r4"]
        assert store.get_project(project).record_count == 2
        assert labels(store.query_records(project, RecordQuery(tags=["keep"]))) == ["r3"]


def test_delete_by_tag_stays_in_its_project(store, project):
    from pyramid_sumatra.storage.types import ProjectInfo

    with transaction.manager:
        store.put_project(ProjectInfo(id="Q"))
    put(store, record(project, "r1", tags=["x"]), record("Q", "r1", tags=["x"]))
    with transaction.manager:
        assert store.delete_records_by_tag("Q", "x") == 1
    with transaction.manager:
        assert store.get_record(project, "r1") is not None


def test_aborted_transaction_leaves_nothing(store, project):
    from pyramid_sumatra.storage.types import ProjectInfo, UserInfo

    put(store, record(project, "kept", reason="before"))

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with transaction.manager:
            store.put_user(UserInfo(username="ghost", password_hash="h"))
            store.put_project(ProjectInfo(id="GhostProject"))
            store.set_grant(project, "ghost", "write")
            store.put_record(record(project, "new"), create=True)
            store.put_record(record(project, "kept", reason="after"), create=False)
            store.delete_records_by_tag(project, "none")
            raise Boom
    with transaction.manager:
        assert store.get_user("ghost") is None
        assert store.get_project("GhostProject") is None
        assert store.get_grants(project) == {}
        assert store.get_record(project, "new") is None
        assert store.get_record(project, "kept").reason == "before"
        assert store.get_project(project).record_count == 1


def test_explicit_abort_discards_deletes(store, project):
    put(store, record(project, "r1"))
    transaction.begin()
    store.delete_record(project, "r1")
    store.delete_project(project)
    transaction.abort()
    with transaction.manager:
        assert store.get_record(project, "r1") is not None
        assert store.get_project(project).record_count == 1


def test_storage_status_is_ok(store):
    status = store.status()
    assert status["ok"] is True
    assert isinstance(status["backend"], str) and status["backend"]


def test_initialize_is_idempotent_and_keeps_data(store, project):
    put(store, record(project, "r1"))
    assert store.initialize() is True
    assert store.initialize() is True
    with transaction.manager:
        assert store.get_record(project, "r1") is not None


def test_dispose_returns_true(store):
    assert store.hook.sumatra_dispose_storage() is True


@pytest.mark.parametrize("doc, field", [
    ({"stdout_stderr": "a\x00b"}, "stdout_stderr"),
    ({"parameters": {"content": "x", "type": "\x00"}}, "parameters.type"),
    ({"output_data": [{"path": "ok"}, {"path": "bad\x00"}]}, "output_data.1.path"),
    ({"extra": {"key\x00": 1}}, "extra.key\x00"),
])
def test_nul_characters_never_reach_storage(doc, field):
    """PostgreSQL cannot store NUL, so the app refuses it (400) for every backend alike."""
    from pyramid_sumatra.records import InvalidRecord

    with pytest.raises(InvalidRecord) as caught:
        build_stored_record("P", {"label": "r1", "timestamp": "2024-01-01 00:00:00", **doc})
    assert caught.value.field == field
    # An escaped backslash followed by "u0000" is ordinary text, not a NUL.
    ok = build_stored_record("P", {"label": "r1", "timestamp": "2024-01-01 00:00:00",
                                   "reason": "\\u0000"})
    assert json.loads(ok.body)["reason"] == "\\u0000"



def test_tags_are_stored_once_and_read_sorted(store, project):
    rec = record(project, "r1")
    rec.tags = ["b", "a", "b"]  # the app never sends duplicates; a backend copes anyway
    put(store, rec)
    with transaction.manager:
        assert store.get_record(project, "r1").tags == ["a", "b"], \
            "sumatra_get_record must return the tags once each, sorted"
        page = store.query_records(project, RecordQuery(tags=["b"]))
        assert labels(page) == ["r1"] and page.total == 1
        assert page.records[0].tags == ["a", "b"], "sumatra_query_records: tags once, sorted"


def test_a_record_for_a_missing_project_conflicts_and_stores_nothing(store):
    with pytest.raises(StorageConflict), transaction.manager:
        store.put_record(record("Missing", "r1"), create=True)
    with transaction.manager:
        assert store.get_record("Missing", "r1") is None
        assert store.get_project("Missing") is None


class _FailingVote:
    """Another resource of the transaction whose vote fails, before the backend votes."""

    def __init__(self):
        self.transaction_manager = transaction.manager

    def sortKey(self) -> str:
        return "!"  # sorts first: backends must not have made anything durable yet

    def tpc_vote(self, txn):
        raise StorageConflict("another resource lost a race")

    def abort(self, txn): pass
    def tpc_begin(self, txn): pass
    def commit(self, txn): pass
    def tpc_finish(self, txn): pass
    def tpc_abort(self, txn): pass


def test_nothing_is_durable_before_the_vote(store, project):
    """Joined as the hookspecs say: nothing persists in tpc_begin or commit."""
    put(store, record(project, "kept"))
    with pytest.raises(StorageConflict), transaction.manager:
        store.put_record(record(project, "new"), create=True)
        store.delete_record(project, "kept")
        transaction.get().join(_FailingVote())
    with transaction.manager:
        assert store.get_record(project, "new") is None
        assert store.get_record(project, "kept") is not None
        assert store.get_project(project).record_count == 1


def test_project_record_reads_what_the_three_hooks_read(store, project):
    """``get_project_record``: the project, its grants and the record (or None) at once,
    as get_project, get_grants and get_record give them; None without the project.
    Through the facade, so a backend without the optional hook passes too."""
    put(store, record(project, "r1", reason="first", tags=["b", "a"], duration=1.5))
    with transaction.manager:
        store.set_grant(project, "alice", "admin")
        store.set_grant(project, "anonymous", "read")
    with transaction.manager:
        found = store.get_project_record(project, "r1")
        missing = store.get_project_record(project, "r2")
        nowhere = store.get_project_record("no-such-project", "r1")
    with transaction.manager:
        info, grants = store.get_project(project), store.get_grants(project)
        rec = store.get_record(project, "r1")
    assert found == (info, grants, rec)
    assert found[1] == {"alice": "admin", "anonymous": "read"}
    assert found[2].tags == ["a", "b"] and found[2].body == rec.body
    assert missing == (info, grants, None)
    assert nowhere is None


def test_project_read_with_a_record_sees_later_writes(store, project):
    """A project read once in a transaction is read again after a write changed its
    record count (a backend may remember what it read in the transaction)."""
    with transaction.manager:
        assert store.get_project_record(project, "r1")[2] is None
        store.put_record(record(project, "r1"), create=True)
        assert store.get_project(project).record_count == 1
        store.put_record(record(project, "r2"), create=True)
        assert store.get_project_record(project, "r2")[0].record_count == 2
