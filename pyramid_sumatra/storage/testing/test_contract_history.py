"""Contract: record history and the trash (the optional history and trash hooks)."""

from __future__ import annotations

import pytest
import transaction

from pyramid_sumatra.storage.testing.support import put, record
from pyramid_sumatra.storage.types import HistoryEntry, ProjectInfo, TrashItem


def entry(label: str, at: str, action: str = "update", project_id: str = "P",
          **fields) -> HistoryEntry:
    return HistoryEntry(project_id=project_id, label=label, at=f"2026-01-01 00:00:{at}",
                        id=fields.pop("id", "00000000000000aa"), action=action, **fields)


@pytest.fixture(autouse=True)
def _capable(store):
    """History and trash are optional capabilities: a backend may lack them."""
    if not (store.history_available and store.trash_available):
        pytest.skip("the backend does not implement the 'history' and 'trash' hooks")


def test_history_is_listed_newest_first_with_every_field(store, project):
    changes = {"reason": {"old": "a", "new": "b ✓"}, "tags": {"new": ["x", 1, None]},
               "gone": {"old": {"deep": [1.5]}}}
    with transaction.manager:
        store.add_history(entry("r1", "01.000000", "create", user="alice", revision_after="1"))
        store.add_history(entry("r1", "02.000000", user="bob", token="ci", changes=changes,
                                revision_before="1", revision_after="2"))
        store.add_history(entry("r2", "03.000000", "create"))
        store.add_history(entry("", "04.000000", "grant", changes={"bob": {"new": "read"}}))
        # its own writes, in the same transaction
        assert [e.action for e in store.list_history("P", "r1", 10)] == ["update", "create"]
    with transaction.manager:
        got = store.list_history("P", "r1", 10)
        project_entries = store.list_history("P", "", 10)
        assert store.list_history("P", "nothing", 10) == []
        assert store.list_history("Q", "r1", 10) == []
    assert [(e.action, e.user, e.token, e.revision_before, e.revision_after) for e in got] == [
        ("update", "bob", "ci", "1", "2"), ("create", "alice", "", "", "1")]
    assert got[0].changes == changes
    assert got[0].project_id == "P" and got[0].label == "r1"
    assert got[0].at == "2026-01-01 00:00:02.000000" and got[0].id == "00000000000000aa"
    assert [(e.label, e.action, e.changes) for e in project_entries] == [
        ("", "grant", {"bob": {"new": "read"}})]


def test_history_pages_by_key_and_ties_break_by_id(store, project):
    with transaction.manager:
        for i in range(5):
            store.add_history(entry("r1", "01.000000", id=f"{i:016x}"))
        store.add_history(entry("r1", "00.000000", id="ffffffffffffffff"))
    with transaction.manager:
        first = store.list_history("P", "r1", 2)
        rest = store.list_history("P", "r1", 10, before=first[-1].key)
    assert [e.id[-1] for e in first] == ["4", "3"]
    assert [e.id[-1] for e in rest] == ["2", "1", "0", "f"]


def test_keep_bounds_the_entries_of_each_record(store, project):
    store.history_keep = 3
    try:
        with transaction.manager:
            for i in range(6):
                store.add_history(entry("r1", f"{i:02d}.000000"))
            store.add_history(entry("r2", "09.000000"))
        with transaction.manager:
            kept = store.list_history("P", "r1", 10)
            assert len(store.list_history("P", "r2", 10)) == 1
    finally:
        store.history_keep = 100
    assert [e.at[-9:-7] for e in kept] == ["05", "04", "03"]


def test_delete_history_of_a_record_or_a_whole_project(store, project):
    with transaction.manager:
        store.add_history(entry("r1", "01.000000"))
        store.add_history(entry("r1", "02.000000"))
        store.add_history(entry("r2", "03.000000"))
        store.add_history(entry("", "04.000000", "update"))
        store.add_history(entry("r1", "05.000000", project_id="Q"))
    with transaction.manager:
        assert store.delete_history("P", "r1") == 2
        assert store.list_history("P", "r1", 10) == []
    with transaction.manager:
        assert len(store.list_history("P", "r2", 10)) == 1
        assert store.delete_history("P", None) == 2
    with transaction.manager:
        assert store.list_history("P", "r2", 10) == []
        assert store.list_history("P", "", 10) == []
        assert len(store.list_history("Q", "r1", 10)) == 1  # another project's stays


def test_history_outlives_deleting_the_record_and_the_project(store, project):
    put(store, record("P", "r1"))
    with transaction.manager:
        store.add_history(entry("r1", "01.000000"))
    with transaction.manager:
        store.delete_record("P", "r1")
    with transaction.manager:
        assert len(store.list_history("P", "r1", 10)) == 1
        store.delete_project("P")
    with transaction.manager:
        assert len(store.list_history("P", "r1", 10)) == 1


def item(label: str, at: str, project_id: str = "P", body: str = '{"label": "r1"}',
         **fields) -> TrashItem:
    return TrashItem(project_id=project_id, label=label,
                     deleted_at=f"2026-01-0{at} 10:00:00.000000", body=body, **fields)


def test_trash_keeps_items_with_bodies_and_lists_them_without(store, project):
    body = '{"label": "r1", "reason": "✓", "n": 6.68e+250}'
    with transaction.manager:
        store.put_trash(item("r1", "1", body=body, deleted_by="alice", revision="abc",
                             timestamp="2024-01-01 10:00:00"))
        store.put_trash(item("r1", "3"))  # the same label deleted again later
        store.put_trash(item("r2", "2"))
        store.put_trash(item("", "4", project_id="Q", body='{"id": "Q"}', revision="alice"))
        assert len(store.list_trash("P")) == 3  # its own writes
    with transaction.manager:
        listed = store.list_trash("P")
        everything = store.list_trash(None)
        old = store.list_trash(None, older_than="2026-01-03 00:00:00")
        one = store.list_trash("P", limit=1)
        got = store.get_trash("P", "r1", "2026-01-01 10:00:00.000000")
        assert store.get_trash("P", "r1", "2026-01-05 10:00:00.000000") is None
        assert store.list_trash("nothing") == []
    assert [(i.label, i.deleted_at[8:10]) for i in listed] == [
        ("r1", "03"), ("r2", "02"), ("r1", "01")]
    assert all(i.body is None for i in listed + everything)
    assert [(i.project_id, i.label) for i in everything] == [
        ("Q", ""), ("P", "r1"), ("P", "r2"), ("P", "r1")]
    assert [i.deleted_at[8:10] for i in old] == ["02", "01"]
    assert [i.deleted_at[8:10] for i in one] == ["03"]
    assert (got.body, got.deleted_by, got.revision, got.timestamp) == (
        body, "alice", "abc", "2024-01-01 10:00:00")


def test_delete_trash_removes_one_item(store, project):
    with transaction.manager:
        store.put_trash(item("r1", "1"))
        store.put_trash(item("r1", "2"))
    with transaction.manager:
        assert store.delete_trash("P", "r1", "2026-01-01 10:00:00.000000") is True
        assert store.get_trash("P", "r1", "2026-01-01 10:00:00.000000") is None
        assert store.delete_trash("P", "r1", "2026-01-01 10:00:00.000000") is False
    with transaction.manager:
        assert [i.deleted_at[8:10] for i in store.list_trash("P")] == ["02"]


def test_an_aborted_transaction_leaves_history_and_trash_as_they_were(store, project):
    with transaction.manager:
        store.put_trash(item("r1", "1"))
    txn = transaction.begin()
    store.add_history(entry("r1", "01.000000"))
    store.put_trash(item("r2", "2"))
    store.delete_trash("P", "r1", "2026-01-01 10:00:00.000000")
    txn.abort()
    with transaction.manager:
        assert store.list_history("P", "r1", 10) == []
        assert [i.label for i in store.list_trash("P")] == ["r1"]


def test_trash_outlives_deleting_the_project(store, project):
    with transaction.manager:
        store.put_trash(item("r1", "1"))
        store.put_trash(item("", "2", body='{"id": "P"}'))
    with transaction.manager:
        store.delete_project("P")
    with transaction.manager:
        assert len(store.list_trash("P")) == 2
        store.put_project(ProjectInfo(id="P"))
    with transaction.manager:
        assert store.get_trash("P", "", "2026-01-02 10:00:00.000000").body == '{"id": "P"}'
