"""Contract: personal API tokens and session generations (the optional storage hooks)."""

from __future__ import annotations

import pytest
import transaction

from pyramid_sumatra.storage.types import StorageConflict, TokenInfo, UserInfo


def token(tid: str = "a1b2c3d4e5f6", name: str = "laptop", username: str = "alice",
          **fields) -> TokenInfo:
    return TokenInfo(id=tid, username=username, name=name, secret_hash="9" * 64,
                     created="2026-01-01 00:00:00.000000", **fields)


@pytest.fixture
def alice(store) -> str:
    if not store.tokens_available:  # an optional capability: a backend may lack it
        pytest.skip("the backend does not implement the 'tokens' hooks")
    with transaction.manager:
        store.put_user(UserInfo(username="alice", password_hash="h"))
        store.put_user(UserInfo(username="bob", password_hash="h"))
    return "alice"


def test_create_lookup_by_id_and_list(store, alice):
    with transaction.manager:
        assert store.put_token(token(scope="read", projects=["P", "Q"],
                                     expires="2030-01-01 00:00:00.000000")) is True
        assert store.put_token(token("0000000000aa", "ci", username="bob")) is True
        assert store.put_token(token("0000000000ab", "desktop")) is True
        assert store.get_token("a1b2c3d4e5f6").name == "laptop"  # its own write
    with transaction.manager:
        got = store.get_token("a1b2c3d4e5f6")
        assert store.get_token("ffffffffffff") is None
    assert (got.username, got.name, got.secret_hash, got.scope, got.projects, got.created,
            got.expires, got.last_used) == ("alice", "laptop", "9" * 64, "read", ["P", "Q"],
                                             "2026-01-01 00:00:00.000000",
                                             "2030-01-01 00:00:00.000000", None)
    with transaction.manager:
        assert [t.name for t in store.list_tokens("alice")] == ["desktop", "laptop"]
        assert [(t.username, t.name) for t in store.list_tokens(None)] == [
            ("alice", "desktop"), ("alice", "laptop"), ("bob", "ci")]
        assert store.list_tokens("nobody") == []


def test_a_name_is_unique_per_user(store, alice):
    with transaction.manager:
        assert store.put_token(token()) is True
    with transaction.manager:
        assert store.put_token(token("0000000000cc")) is False  # same user, same name
        assert store.put_token(token("0000000000dd", username="bob")) is True
    with transaction.manager:
        assert store.get_token("0000000000cc") is None
        assert len(store.list_tokens(None)) == 2


def test_an_id_taken_concurrently_is_a_conflict(store, alice):
    with transaction.manager:
        store.put_token(token())
    with pytest.raises(StorageConflict), transaction.manager:
        store.put_token(token(name="other"))  # same id, another name


def test_revoke(store, alice):
    with transaction.manager:
        store.put_token(token())
    with transaction.manager:
        assert store.delete_token("bob", "laptop") is False  # not bob's
        assert store.delete_token("alice", "laptop") is True
        assert store.get_token("a1b2c3d4e5f6") is None  # at once, in the transaction
    with transaction.manager:
        assert store.get_token("a1b2c3d4e5f6") is None
        assert store.delete_token("alice", "laptop") is False


def test_an_aborted_create_leaves_nothing(store, alice):
    txn = transaction.begin()
    store.put_token(token())
    txn.abort()
    with transaction.manager:
        assert store.get_token("a1b2c3d4e5f6") is None and store.list_tokens("alice") == []


def test_last_used_is_touched(store, alice):
    with transaction.manager:
        store.put_token(token())
    with transaction.manager:
        assert store.touch_token("a1b2c3d4e5f6", "2026-02-02 10:00:00.000000") is True
        assert store.touch_token("ffffffffffff", "2026-02-02 10:00:00.000000") is False
    with transaction.manager:
        assert store.get_token("a1b2c3d4e5f6").last_used == "2026-02-02 10:00:00.000000"


def test_a_touch_does_not_bring_back_a_revoked_token(store, alice):
    with transaction.manager:
        store.put_token(token())
    with transaction.manager:
        store.delete_token("alice", "laptop")
        assert store.touch_token("a1b2c3d4e5f6", "2026-02-02 10:00:00.000000") is False
    with transaction.manager:
        assert store.get_token("a1b2c3d4e5f6") is None


def test_expiry_is_stored_as_given(store, alice):
    with transaction.manager:
        store.put_token(token(expires="2020-01-01 00:00:00.000000"))  # the app judges it
        store.put_token(token("0000000000ee", "forever"))
    with transaction.manager:
        assert store.get_token("a1b2c3d4e5f6").expires == "2020-01-01 00:00:00.000000"
        assert store.get_token("0000000000ee").expires is None


def test_deleting_a_user_revokes_its_tokens(store, alice):
    with transaction.manager:
        store.put_token(token())
        store.put_token(token("0000000000ff", username="bob"))
    with transaction.manager:
        assert store.delete_user("alice") is True
    with transaction.manager:
        store.put_user(UserInfo(username="alice", password_hash="new"))  # the name again
    with transaction.manager:
        assert store.get_token("a1b2c3d4e5f6") is None
        assert store.list_tokens("alice") == []
        assert [t.name for t in store.list_tokens("bob")] == ["laptop"]


def test_session_generation_bump(store, alice):
    with transaction.manager:
        assert store.get_user("alice").session_generation == 0
        assert store.bump_session_generation("alice") == 1
        assert store.get_user("alice").session_generation == 1  # seen in the transaction
    with transaction.manager:
        assert store.bump_session_generation("alice") == 2
        assert store.bump_session_generation("nobody") is None
    with transaction.manager:
        user = store.get_user("alice")
        assert (user.session_generation, user.password_hash) == (2, "h")
        assert store.get_user("bob").session_generation == 0


def test_put_user_keeps_the_generation_it_is_given(store, alice):
    with transaction.manager:
        user = store.get_user("alice")
        user.session_generation, user.password_hash = 7, "h2"
        store.put_user(user)
    with transaction.manager:
        got = store.get_user("alice")
        assert (got.session_generation, got.password_hash) == (7, "h2")
        assert [u.session_generation for u in store.list_users()] == [7, 0]
