"""Personal API tokens and session generations in the SQLAlchemy backend.

Plain functions over the transaction's session; the backend's hookimpls call them.
A token is found by its primary key (its public id) on every token request.
"""

from __future__ import annotations

import orjson
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from pyramid_sumatra.storage.types import TokenInfo

from .schema import tokens, users

_GET_TOKEN = select(tokens).where(tokens.c.id == bindparam("b_id"))  # built once: per request
_BUMP = update(users).where(users.c.username == bindparam("b_username")).values(
    session_generation=users.c.session_generation + 1)
_GENERATION = select(users.c.session_generation).where(
    users.c.username == bindparam("b_username"))


def _to_token(row) -> TokenInfo:
    return TokenInfo(id=row.id, username=row.username, name=row.name,
                     secret_hash=row.secret_hash, scope=row.scope,
                     projects=orjson.loads(row.projects), created=row.created,
                     expires=row.expires, last_used=row.last_used)


def bump_session_generation(db: Session, username: str) -> int | None:
    # One UPDATE: concurrent bumps add up, none is lost.
    if not db.execute(_BUMP, {"b_username": username}).rowcount:
        return None
    return db.execute(_GENERATION, {"b_username": username}).scalar()


def put_token(db: Session, token: TokenInfo) -> bool:
    taken = db.execute(select(tokens.c.id).where(
        tokens.c.username == token.username, tokens.c.name == token.name)).first()
    if taken is not None:
        return False
    # A concurrent create of the same name or id is a unique violation: StorageConflict.
    db.execute(insert(tokens).values(
        id=token.id, username=token.username, name=token.name,
        secret_hash=token.secret_hash, scope=token.scope,
        projects=orjson.dumps(list(token.projects)).decode(), created=token.created,
        expires=token.expires, last_used=token.last_used))
    return True


def get_token(db: Session, token_id: str) -> TokenInfo | None:
    row = db.execute(_GET_TOKEN, {"b_id": token_id}).first()
    return None if row is None else _to_token(row)


def list_tokens(db: Session, username: str | None) -> list[TokenInfo]:
    stmt = select(tokens).order_by(tokens.c.username, tokens.c.name)
    if username is not None:
        stmt = stmt.where(tokens.c.username == username)
    return [_to_token(row) for row in db.execute(stmt)]


def delete_token(db: Session, username: str, name: str) -> bool:
    return bool(db.execute(delete(tokens).where(
        tokens.c.username == username, tokens.c.name == name)).rowcount)


def touch_token(db: Session, token_id: str, last_used: str) -> bool:
    return bool(db.execute(update(tokens).where(tokens.c.id == token_id).values(
        last_used=last_used)).rowcount)
