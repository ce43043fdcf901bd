"""Contract: projects, grants and visibility, users."""

from __future__ import annotations

import re

import pytest
import transaction

from pyramid_sumatra.storage.testing.support import put, record
from pyramid_sumatra.storage.types import ProjectInfo, RecordQuery, StorageConflict, UserInfo

STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{6})?$")  # UTC


def ids(projects) -> list[str]:
    return [p.id for p in projects]


def test_project_create_get_update(store):
    with transaction.manager:
        assert store.get_project("A") is None
        assert store.put_project(ProjectInfo(id="A", name="Alpha", description="first")) is True
    with transaction.manager:
        got = store.get_project("A")
    assert (got.id, got.name, got.description, got.record_count) == ("A", "Alpha", "first", 0)
    assert STAMP.match(got.created) and STAMP.match(got.last_updated)
    assert got.last_updated >= got.created
    with transaction.manager:
        assert store.put_project(ProjectInfo(id="A", name="Alpha 2", description="")) is False
    with transaction.manager:
        again = store.get_project("A")
    assert (again.name, again.description, again.created) == ("Alpha 2", "", got.created)
    assert again.last_updated >= got.last_updated


def test_record_count_follows_puts_and_deletes(store, project):
    put(store, *(record(project, f"r{i}", tags=["odd"] if i % 2 else []) for i in range(6)))
    with transaction.manager:
        assert store.get_project(project).record_count == 6
        store.delete_record(project, "r0")
        store.delete_records_by_tag(project, "odd")
    with transaction.manager:
        info = store.get_project(project)
        assert info.record_count == 2
        assert store.query_records(project, RecordQuery()).total == 2
        assert [p.record_count for p in store.list_projects(None)] == [2]


def test_list_projects_newest_first(store):
    for pid in ("C", "A", "B"):
        with transaction.manager:
            store.put_project(ProjectInfo(id=pid))
    with transaction.manager:
        assert ids(store.list_projects(None)) == ["B", "A", "C"]
    put(store, record("A", "r1"))
    with transaction.manager:
        projects = store.list_projects(None)
        assert ids(projects) == ["A", "B", "C"]
        assert projects[0].last_updated > projects[1].last_updated
        store.put_project(ProjectInfo(id="C", name="renamed"))  # an update moves it too
    with transaction.manager:
        assert ids(store.list_projects(None)) == ["C", "A", "B"]


def test_delete_project_removes_records_and_grants(store, project):
    put(store, record(project, "r1", tags=["t"]))
    with transaction.manager:
        store.put_project(ProjectInfo(id="Keep"))
        store.set_grant(project, "alice", "write")
        store.set_grant("Keep", "alice", "read")
    with transaction.manager:
        assert store.delete_project(project) is True
    with transaction.manager:
        assert store.delete_project(project) is False
        assert store.get_project(project) is None
        assert store.get_record(project, "r1") is None
        assert store.get_grants(project) == {}
        assert ids(store.list_projects(["alice"])) == ["Keep"]
        assert store.most_recent_record(project) is None
    # The id can be used again, from scratch.
    with transaction.manager:
        assert store.put_project(ProjectInfo(id=project)) is True
    with transaction.manager:
        assert store.get_project(project).record_count == 0
        assert store.query_records(project, RecordQuery(tags=["t"])).records == []


def test_grants(store, project):
    with transaction.manager:
        assert store.get_grants(project) == {}
        assert store.get_grants("no-such-project") == {}
        store.set_grant(project, "alice", "read")
        store.set_grant(project, "anonymous", "read")
    with transaction.manager:
        assert store.get_grants(project) == {"alice": "read", "anonymous": "read"}
        store.set_grant(project, "alice", "admin")  # replaces the earlier role
    with transaction.manager:
        assert store.get_grants(project) == {"alice": "admin", "anonymous": "read"}
        assert store.revoke_grant(project, "anonymous") is True
    with transaction.manager:
        assert store.revoke_grant(project, "anonymous") is False
        assert store.get_grants(project) == {"alice": "admin"}


def test_list_projects_by_principals(store):
    with transaction.manager:
        for pid in ("Public", "Alices", "Shared", "Nobodys"):
            store.put_project(ProjectInfo(id=pid))
        store.set_grant("Public", "anonymous", "read")
        store.set_grant("Alices", "alice", "admin")
        store.set_grant("Shared", "alice", "read")
        store.set_grant("Shared", "bob", "write")
    with transaction.manager:
        # Newest first: the reverse of creation.
        assert ids(store.list_projects(None)) == ["Nobodys", "Shared", "Alices", "Public"]
        assert ids(store.list_projects(["anonymous"])) == ["Public"]
        assert ids(store.list_projects(["alice"])) == ["Shared", "Alices"]
        assert ids(store.list_projects(["alice", "bob", "anonymous"])) == [
            "Shared", "Alices", "Public"]  # any of them, each project once
        assert ids(store.list_projects(["carol"])) == []
        assert ids(store.list_projects([])) == []


def test_users(store):
    with transaction.manager:
        assert store.get_user("alice") is None
        assert store.list_users() == []
        assert store.put_user(UserInfo(username="bob", password_hash="$argon2id$bob")) is True
        assert store.put_user(UserInfo(username="alice", password_hash="$argon2id$a1",
                                       is_admin=True, created="2020-01-02 03:04:05")) is True
    with transaction.manager:
        alice = store.get_user("alice")
        assert (alice.password_hash, alice.is_admin, alice.created) == (
            "$argon2id$a1", True, "2020-01-02 03:04:05")
        assert STAMP.match(store.get_user("bob").created)
        assert [u.username for u in store.list_users()] == ["alice", "bob"]
        # Replacing keeps the user (and its creation time), with the new hash and flag.
        assert store.put_user(UserInfo(username="alice", password_hash="$argon2id$a2")) is False
    with transaction.manager:
        alice = store.get_user("alice")
        assert (alice.password_hash, alice.is_admin, alice.created) == (
            "$argon2id$a2", False, "2020-01-02 03:04:05")


def test_delete_user_removes_its_grants(store, project):
    with transaction.manager:
        store.put_user(UserInfo(username="alice", password_hash="h"))
        store.put_user(UserInfo(username="bob", password_hash="h"))
        store.set_grant(project, "alice", "write")
        store.set_grant(project, "bob", "read")
    with transaction.manager:
        assert store.delete_user("alice") is True
    with transaction.manager:
        assert store.delete_user("alice") is False
        assert store.get_user("alice") is None
        assert store.get_grants(project) == {"bob": "read"}
        assert ids(store.list_projects(["alice"])) == []
        assert [u.username for u in store.list_users()] == ["bob"]


def test_put_user_keeps_created_when_replacing(store):
    with transaction.manager:
        assert store.put_user(UserInfo(username="u", password_hash="h1",
                                       created="2020-01-01 00:00:00")) is True
        assert store.put_user(UserInfo(username="v", password_hash="h")) is True
    with transaction.manager:
        assert store.put_user(UserInfo(username="u", password_hash="h2", is_admin=True,
                                       created="2030-01-01 00:00:00")) is False
    with transaction.manager:
        u, v = store.get_user("u"), store.get_user("v")
    assert (u.password_hash, u.is_admin, u.created) == ("h2", True, "2020-01-01 00:00:00")
    assert STAMP.match(v.created), "a new user without created gets now"


def test_a_grant_on_a_missing_project_conflicts(store):
    with pytest.raises(StorageConflict), transaction.manager:
        store.set_grant("Missing", "anonymous", "read")
    with transaction.manager:
        assert store.get_grants("Missing") == {}
