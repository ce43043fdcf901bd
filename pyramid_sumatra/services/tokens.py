"""Personal API tokens: create, verify, revoke, and what a token may do.

A token is ``smt_<id>_<secret>``: ``id`` (12 hex digits) is its public key in
storage, so a request finds its token with one key lookup; ``secret`` (256 random
bits) is shown once and stored only as its SHA-256. A fast unkeyed hash is right
here, unlike for passwords: argon2 exists to make guessing *low-entropy* passwords
expensive, and would add ~50 ms to every request (``smt list`` sends one per
record); nobody can enumerate 2**256 secrets against a SHA-256, and an unkeyed hash
keeps tokens valid across ``dump``/``load`` and a change of ``sumatra.secret``.

Clients use a token as the HTTP Basic password (``http://alice:smt_…@host/``), so
the unchanged Sumatra 0.8.1 client works; failures are throttled per username
exactly like wrong passwords (``throttle.throttled``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from ..permissions import MANAGE, VIEW
from ..records import name_problem
from ..storage import Storage
from ..storage.types import TOKEN_SCOPES, TokenInfo
from .errors import InvalidInput

PREFIX = "smt_"
_ID_HEX = 12
_TOKEN = re.compile(rf"^{PREFIX}([0-9a-f]{{{_ID_HEX}}})_([A-Za-z0-9_-]{{20,100}})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
_DURATION = re.compile(r"^(\d{1,5})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_LIFETIME = timedelta(days=3650)
MAX_PROJECTS = 100
#: last_used is written at most this often per token: a write on every GET would
#: cost a commit (an fsync'd journal on the filesystem backend) per request.
TOUCH_INTERVAL = timedelta(seconds=60)
_STAMP = "%Y-%m-%d %H:%M:%S.%f"


class TokenError(InvalidInput):
    """Bad input for a token; ``field`` names the form field or CLI option."""

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class TokensUnavailable(RuntimeError):
    """The storage backend does not implement the token hooks."""


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(when: datetime) -> str:
    return when.strftime(_STAMP)


# -- input rules -------------------------------------------------------------------


def check_name(name: str) -> str:
    """A token name: 1-64 letters, digits, space, ``.``, ``_`` or ``-``, starting with a
    letter or digit (shown in pages and the access log, so nothing else)."""
    name = (name or "").strip()
    if not _NAME.match(name):
        raise TokenError("name", "a token name is 1-64 letters, digits, spaces, '.', '_' "
                                 "or '-', starting with a letter or digit")
    return name


def parse_expiry(text: str | None, now: datetime | None = None) -> str | None:
    """``30d``, ``12h``, ``90m``, ``2w`` from now, or a date ``YYYY-MM-DD`` (its start, UTC);
    empty or ``never``: no expiry. Returns the UTC stamp, or None."""
    text = (text or "").strip().lower()
    if text in ("", "never"):
        return None
    now = now or _now()
    match = _DURATION.match(text)
    if match:
        lifetime = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        when = now + lifetime
    else:
        try:
            when = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise TokenError("expires", f"{text[:40]!r} is not a duration such as 30d, 12h, "
                                        "90m or 2w, a date YYYY-MM-DD, or 'never'") from None
        lifetime = when - now
    if lifetime <= timedelta(0):
        raise TokenError("expires", "the expiry must be in the future")
    if lifetime > MAX_LIFETIME:
        raise TokenError("expires", "a token may live at most 3650 days")
    return _stamp(when)


def check_scope(scope: str | None) -> str:
    scope = (scope or "").strip()
    if scope not in TOKEN_SCOPES:
        raise TokenError("scope", f"the scope is one of {', '.join(TOKEN_SCOPES)}, "
                                  f"not {scope[:20]!r}")
    return scope


def check_projects(projects: Iterable[str]) -> list[str]:
    """Project ids (duplicates and blanks dropped); empty means every project."""
    result: list[str] = []
    for project in projects:
        project = project.strip()
        if not project or project in result:
            continue
        problem = name_problem(project, "project id")
        if problem:
            raise TokenError("projects", problem)
        result.append(project)
    if len(result) > MAX_PROJECTS:
        raise TokenError("projects", f"a token may name at most {MAX_PROJECTS} projects")
    return result


# -- the secret --------------------------------------------------------------------


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def split(presented: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a string shaped like a token, else None."""
    match = _TOKEN.match(presented)
    return (match.group(1), match.group(2)) if match else None


def looks_like_token(password: str) -> bool:
    return password.startswith(PREFIX) and split(password) is not None


# -- create, verify, revoke ----------------------------------------------------------


def create(storage: Storage, username: str, name: str, *, expires: str | None = None,
           scope: str = "write", projects: Iterable[str] = ()) -> tuple[TokenInfo, str]:
    """Make a token for ``username``; return it and the whole token text (shown once).

    Raises TokenError (bad input, duplicate name) or TokensUnavailable.
    """
    if not storage.tokens_available:
        raise TokensUnavailable("this server's storage backend does not support API tokens")
    token = TokenInfo(id=secrets.token_hex(_ID_HEX // 2), username=username,
                      name=check_name(name), secret_hash="", scope=check_scope(scope),
                      projects=check_projects(projects), created=_stamp(_now()),
                      expires=parse_expiry(expires))
    if storage.get_user(username) is None:
        raise TokenError("user", f"no user {username!r}")
    secret = secrets.token_urlsafe(32)
    token.secret_hash = hash_secret(secret)
    if not storage.put_token(token):
        raise TokenError("name", f"{username!r} already has a token named {token.name!r}")
    return token, f"{PREFIX}{token.id}_{secret}"


def expired(token: TokenInfo, now: datetime | None = None) -> bool:
    return token.expires is not None and token.expires <= _stamp(now or _now())


def verify(storage: Storage, username: str, presented: str,
           now: datetime | None = None) -> TokenInfo | None:
    """The token if ``presented`` is a live token of ``username``, else None.

    Read from storage on every call (a revoked or expired token fails at once, in
    every process); the secret is compared in constant time.
    """
    parts = split(presented)
    if parts is None:
        return None
    token = storage.get_token(parts[0])
    digest = hash_secret(parts[1])
    if token is None or not hmac.compare_digest(token.secret_hash, digest):
        return None
    now = now or _now()
    if token.username != username or expired(token, now):
        return None
    if token.last_used is None or token.last_used < _stamp(now - TOUCH_INTERVAL):
        token.last_used = _stamp(now)
        storage.touch_token(token.id, token.last_used)
    return token


def revoke(storage: Storage, username: str, name: str) -> bool:
    """Delete the user's token ``name``; False if there is none."""
    if not storage.tokens_available:
        raise TokensUnavailable("this server's storage backend does not support API tokens")
    return storage.delete_token(username, name)


# -- what a token may do --------------------------------------------------------------


def allows(token: TokenInfo, permission: str, project_id: str | None) -> bool:
    """Whether ``token`` lets its user use ``permission`` (on top of the user's own ACLs).

    ``read`` tokens only view; no token manages (grants, project deletion: that takes
    the password); a token limited to projects reaches only those (and the project
    list, filtered by ``visible``).
    """
    if permission == MANAGE or (token.scope == "read" and permission != VIEW):
        return False
    if token.projects:
        return project_id in token.projects if project_id is not None else permission == VIEW
    return True


def visible(token: TokenInfo | None, project_ids: Iterable[str]) -> set[str]:
    """Which of ``project_ids`` a request with ``token`` may list."""
    if token is None or not token.projects:
        return set(project_ids)
    return set(project_ids) & set(token.projects)


def status(token: TokenInfo, now: datetime | None = None) -> str:
    """``active`` or ``expired`` (for the token list)."""
    return "expired" if expired(token, now) else "active"
