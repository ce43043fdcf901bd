"""The filesystem backend's tokens.json: staged operations re-applied at commit."""

from __future__ import annotations

import json

import pytest
import transaction

from pyramid_sumatra import build_storage, resolve_settings
from pyramid_sumatra.storage.types import StorageConflict, TokenInfo, UserInfo
from pyramid_sumatra_backends.filesystem import tokens as token_file


def token(tid: str = "a1b2c3d4e5f6", name: str = "t") -> TokenInfo:
    return TokenInfo(id=tid, username="alice", name=name, secret_hash="0" * 64, created="c")


def test_a_touch_of_a_token_revoked_meanwhile_does_not_bring_it_back():
    assert token_file.apply({}, [("touch", "a1b2c3d4e5f6", "now")], strict=True) == {}


def test_a_create_that_lost_a_race_is_a_conflict():
    with pytest.raises(StorageConflict):
        token_file.apply({"a1b2c3d4e5f6": token()}, [("create", token("0000000000aa"))],
                         strict=True)


def test_tokens_json_holds_hashes_by_id_and_is_written_only_when_needed(tmp_path):
    store = build_storage(resolve_settings({"sumatra.backend": "filesystem",
                                            "sumatra.filesystem.root": str(tmp_path)}))
    store.initialize()
    try:
        with transaction.manager:
            store.put_user(UserInfo(username="alice", password_hash="h"))
        assert not (tmp_path / "tokens.json").exists()
        with transaction.manager:
            store.put_token(token())
        doc = json.loads((tmp_path / "tokens.json").read_text())
        assert list(doc) == ["a1b2c3d4e5f6"]
        assert doc["a1b2c3d4e5f6"]["secret_hash"] == "0" * 64 and "id" not in doc["a1b2c3d4e5f6"]
        # A concurrent writer's token lands between our read and our commit: both kept.
        txn = transaction.begin()
        store.touch_token("a1b2c3d4e5f6", "2026-01-01 00:00:00.000000")
        other = dict(doc, **{"0000000000bb": {**doc["a1b2c3d4e5f6"], "name": "other"}})
        (tmp_path / "tokens.json").write_text(json.dumps(other))
        txn.commit()
        with transaction.manager:
            assert [t.name for t in store.list_tokens("alice")] == ["other", "t"]
            assert store.get_token("a1b2c3d4e5f6").last_used == "2026-01-01 00:00:00.000000"
    finally:
        store.dispose()
