"""Ending browser sessions: a per-user generation the session cookie must match.

The session is a signed cookie with no server-side state, so logging out alone
cannot make a copy of the cookie useless. Each user has a ``session_generation``
(stored with the user, which the identity lookup loads anyway: no extra query per
request); the session holds a *stamp* of it taken at login. Logout, a password
change and ``deluser`` bump or remove it, and every process sees that at the
next request.
"""

from __future__ import annotations

import hashlib

from .storage import Storage
from .storage.types import UserInfo

SESSION_STAMP_KEY = "sumatra.stamp"


def stamp(user: UserInfo) -> str:
    """What a session of ``user`` must carry to stay valid.

    The password hash and the admin flag are in it too, so that a change of either
    by *any* path (the CLI, a plugin, a load) ends the sessions without that path
    having to remember to bump the generation. The hash's salt is secret, so the
    digest (readable in the cookie) gives nothing to guess passwords with.
    """
    text = f"{user.session_generation}\0{user.password_hash}\0{user.is_admin}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def end_sessions(storage: Storage, username: str) -> bool:
    """End every session of ``username`` (logout, passwd). False if there is no such user."""
    return storage.bump_session_generation(username) is not None
