"""The groups a logged-in user brings: read at login, refreshed when they are old.

Group grants (``group:NAME``) apply through these: the security policy adds a
``group:NAME`` principal per group. They come from the identity source at login (a
verified LDAP bind, an OpenID ID token), and are asked again once older than
``sumatra.groups_refresh_seconds``, so removing someone from a group in the directory
removes their access within that time without touching the server.
"""

from __future__ import annotations

from ..services.users import ensure_external_user
from ..storage import Storage
from ..storage.types import UserInfo


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


def current_groups(storage: Storage, user: UserInfo) -> tuple[str, ...] | None:
    """Groups of ``user`` as its source has them now; None when the source no longer
    knows the user (or cannot be asked without the user: OpenID Connect)."""
    if not user.source:
        return ()
    identity = storage.external_identity(user.username)
    if identity is None or identity.source != user.source:  # another source's namesake
        return None
    return identity.groups
