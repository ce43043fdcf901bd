"""The groups a logged-in user brings: read at login, refreshed when they are old.

Group grants (``group:NAME``) apply through these: the security policy adds a
``group:NAME`` principal per group. They come from the identity source at login (a
verified LDAP bind, an OpenID ID token), and are asked again once older than
``sumatra.groups_refresh_seconds``, so removing someone from a group in the directory
removes their access within that time without touching the server.

An OpenID provider cannot be asked without the user, so API tokens use the groups the
user's last browser login reported (kept with the user), while younger than
``sumatra.oidc.token_groups_max_age``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..services.users import ensure_external_user
from ..storage import Storage
from ..storage.types import UserInfo
from .external import SEEN_FORMAT, usable_groups

#: Seconds a kept ``groups_seen`` may be ahead of this server's clock.
CLOCK_SKEW = 60


def after_login(storage: Storage, username: str) -> tuple[str, ...]:
    """Groups of a user whose password was just accepted; adds or updates an external
    user (first login). A local user has none."""
    user = storage.get_user(username)
    if user is not None and not user.source:
        return ()
    identity = storage.external_identity(username)
    if identity is None:
        return ()
    ensure_external_user(storage, identity)
    return identity.groups


def current_groups(storage: Storage, user: UserInfo,
                   stored_max_age: float = 0) -> tuple[str, ...] | None:
    """Groups of ``user`` as its source has them now; None when the source no longer
    knows the user, or cannot be asked without the user (OpenID Connect) and the groups
    its last login reported are older than ``stored_max_age`` seconds (0, browser
    sessions: never used; the browser logs in again instead)."""
    if not user.source:
        return ()
    identity = storage.external_identity(user.username)
    if identity is not None and identity.source == user.source:
        return identity.groups
    if identity is not None:  # another source's namesake: not this user
        return None
    return stored_groups(user, stored_max_age)


def stored_groups(user: UserInfo, max_age: float) -> tuple[str, ...] | None:
    """The groups kept with ``user`` at its last login, None if none or not younger than
    ``max_age`` seconds (an unreadable time counts as too old)."""
    if user.groups is None or max_age <= 0:
        return None
    try:
        seen = datetime.strptime(user.groups_seen, SEEN_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    age = (datetime.now(UTC) - seen).total_seconds()
    # A minute ahead covers the clocks of several servers; further ahead (an edited
    # file) would keep the groups for ever.
    return usable_groups(user.groups) if -CLOCK_SKEW < age < max_age else None
