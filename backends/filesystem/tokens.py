"""Personal API tokens in the filesystem backend: ``DIR/tokens.json``, keyed by token id.

A transaction stages *operations* (create, touch, delete), not whole tokens, and
the commit re-applies them to the file as it is then, under the ``tokens`` lock:
a ``last_used`` touch cannot bring back a token revoked meanwhile, and two
creates of one name cannot both land. The file is written only when a token
changes; a store that never had a token has none.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pyramid_sumatra.storage.types import StorageConflict, TokenInfo

from .files import dumps_readable, read_json

FILE_NAME = "tokens.json"
LOCK = "tokens"

#: ("create", TokenInfo) | ("touch", token_id, last_used) | ("delete", token_id)
Op = tuple


def path(root: Path) -> Path:
    return root / FILE_NAME


def _doc(tokens: dict[str, TokenInfo]) -> dict[str, Any]:
    return {tid: {k: v for k, v in dataclasses.asdict(t).items() if k != "id"}
            for tid, t in sorted(tokens.items())}


def read(root: Path) -> dict[str, TokenInfo]:
    """The committed tokens by id (empty when the file does not exist)."""
    doc = read_json(path(root)) or {}
    return {tid: TokenInfo(id=tid, **fields) for tid, fields in doc.items()}


def apply(tokens: dict[str, TokenInfo], ops: list[Op], strict: bool) -> dict[str, TokenInfo]:
    """``tokens`` with ``ops`` applied (in place). ``strict`` (at commit): a create whose
    id or (user, name) another writer took meanwhile raises StorageConflict."""
    for op in ops:
        if op[0] == "create":
            token = op[1]
            clash = token.id in tokens or any(
                t.username == token.username and t.name == token.name for t in tokens.values())
            if clash and strict:
                raise StorageConflict(f"token {token.name!r} of {token.username!r} was "
                                      "created concurrently")
            tokens[token.id] = dataclasses.replace(token, projects=list(token.projects))
        elif op[0] == "touch":
            if op[1] in tokens:  # revoked meanwhile: stays revoked
                tokens[op[1]] = dataclasses.replace(tokens[op[1]], last_used=op[2])
        elif op[0] == "delete":
            tokens.pop(op[1], None)
    return tokens


def write_op(root: Path, relative: str, ops: list[Op]) -> dict[str, Any]:
    """The journal operation rewriting the file with ``ops`` applied to what is on disk."""
    return {"op": "write", "path": relative,
            "text": dumps_readable(_doc(apply(read(root), ops, strict=True)))}


class TokenStore:
    """What the backend's token hooks do, over the committed file and staged ops."""

    def __init__(self, root: Path):
        self.root = root

    def current(self, ops: list[Op]) -> dict[str, TokenInfo]:
        return apply(read(self.root), ops, strict=False)

    def put(self, ops: list[Op], token: TokenInfo) -> bool:
        tokens = self.current(ops)
        if any(t.username == token.username and t.name == token.name for t in tokens.values()):
            return False
        if token.id in tokens:
            raise StorageConflict(f"token id {token.id!r} exists")
        ops.append(("create", dataclasses.replace(token, projects=list(token.projects))))
        return True

    def get(self, ops: list[Op], token_id: str) -> TokenInfo | None:
        return self.current(ops).get(token_id)

    def list(self, ops: list[Op], username: str | None) -> list[TokenInfo]:
        return sorted((t for t in self.current(ops).values()
                       if username is None or t.username == username),
                      key=lambda t: (t.username, t.name))

    def delete(self, ops: list[Op], username: str, name: str) -> bool:
        for t in self.current(ops).values():
            if t.username == username and t.name == name:
                ops.append(("delete", t.id))
                return True
        return False

    def touch(self, ops: list[Op], token_id: str, last_used: str) -> bool:
        if token_id not in self.current(ops):
            return False
        ops.append(("touch", token_id, last_used))
        return True
