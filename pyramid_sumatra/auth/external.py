"""What an identity source (a directory, an OpenID provider) reports about a user."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ..storage.types import StorageUnavailable

#: The stored password hash of a user who logs in elsewhere: not an argon2 hash, so no
#: password ever matches it (check_password returns False).
EXTERNAL_PASSWORD = "!external"
#: Grants to a group are stored under this prefix (usernames cannot contain ':').
GROUP_PREFIX = "group:"
MAX_GROUP_LENGTH = 100
#: The most groups one identity brings (a directory can answer with thousands).
MAX_GROUPS = 200
#: ``UserInfo.groups_seen``: when a login reported the groups kept with the user.
SEEN_FORMAT = "%Y-%m-%d %H:%M:%S"
_GROUP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-+@ ]*")


class DirectoryUnavailable(StorageUnavailable):
    """The identity source cannot be reached now: 503 + Retry-After for its users."""


def group_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a group's name in a grant, or None if it can."""
    if not isinstance(name, str) or not name:
        return "a group name must be a non-empty string"
    if len(name) > MAX_GROUP_LENGTH:
        return f"a group name is at most {MAX_GROUP_LENGTH} characters"
    if not _GROUP_RE.fullmatch(name):
        return (f"group {name[:100]!r} may contain only letters, digits and '_ . - + @ ' "
                "and must start with a letter or digit")
    return None


def usable_groups(names: Any) -> tuple[str, ...]:
    """The names among ``names`` that can be granted to, at most MAX_GROUPS, sorted."""
    if not isinstance(names, (list, tuple, set, frozenset)):
        return ()
    return tuple(sorted({n for n in names if group_problem(n) is None}))[:MAX_GROUPS]


def group_principal(name: str) -> str:
    return f"{GROUP_PREFIX}{name}"


def is_external(password_hash: str) -> bool:
    return password_hash.startswith(EXTERNAL_PASSWORD)


def seen_now() -> str:
    """Now, as ``UserInfo.groups_seen`` keeps it."""
    return datetime.now(UTC).strftime(SEEN_FORMAT)
