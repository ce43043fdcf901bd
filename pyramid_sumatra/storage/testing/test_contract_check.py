"""``sumatra_check_storage``: a store written only through the hooks checks clean."""

from __future__ import annotations

import transaction

from pyramid_sumatra.storage.testing.support import put, record
from pyramid_sumatra.storage.types import UserInfo


def test_a_store_written_through_the_hooks_is_consistent(store, project):
    with transaction.manager:
        store.put_user(UserInfo(username="alice", password_hash="x"))
        store.set_grant(project, "alice", "write")
    put(store, record(project, "r1", tags=["a"]), record(project, "r2"))
    with transaction.manager:
        store.delete_record(project, "r2")
    with transaction.manager:
        report = store.check(repair=False)
    assert report["problems"] == [] and report["unrepaired"] == []
    assert isinstance(report["backend"], str)


def test_repair_on_a_consistent_store_changes_nothing(store, project):
    put(store, record(project, "r1", tags=["a"]))
    with transaction.manager:
        assert store.check(repair=True)["problems"] == []
    with transaction.manager:
        assert store.get_project(project).record_count == 1
        assert store.get_record(project, "r1").tags == ["a"]


def test_a_grant_to_a_deleted_user_is_gone_with_the_user(store, project):
    with transaction.manager:
        store.put_user(UserInfo(username="bob", password_hash="x"))
        store.set_grant(project, "bob", "read")
    with transaction.manager:
        store.delete_user("bob")
    with transaction.manager:
        assert store.check(repair=False)["problems"] == []
