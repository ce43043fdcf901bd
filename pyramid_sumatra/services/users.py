"""Users: add (name and password rules), change a password, delete."""

from __future__ import annotations

from ..auth.external import EXTERNAL_PASSWORD, seen_now
from ..passwords import hash_password
from ..sessions import end_sessions
from ..storage import Storage
from ..storage.types import ANONYMOUS, ExternalIdentity, UserInfo
from ..usernames import username_problem
from .errors import Conflict, InvalidInput, UnknownUser

MIN_PASSWORD_LENGTH = 6


def require_user(storage: Storage, username: str) -> UserInfo:
    """The user, or UnknownUser."""
    user = storage.get_user(username)
    if user is None:
        raise UnknownUser(username)
    return user


def check_new_user(storage: Storage, username: str) -> None:
    """Whether ``username`` may be added: a valid, unreserved name no one has."""
    problem = username_problem(username)
    if problem:
        raise InvalidInput("username", problem)
    if username == ANONYMOUS:
        raise InvalidInput("username", f"{ANONYMOUS!r} is reserved for public access")
    if storage.get_user(username) is not None:
        raise Conflict(f"user {username!r} exists")


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password",
                           f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def add_user(storage: Storage, username: str, password: str, *, admin: bool = False) -> UserInfo:
    """Add a user (``admin``: a server-wide administrator); the password is stored hashed."""
    check_new_user(storage, username)
    check_password(password)
    user = UserInfo(username=username, password_hash=hash_password(password), is_admin=admin)
    storage.put_user(user)
    return user


def set_password(storage: Storage, username: str, password: str) -> None:
    """Change the password; the user's browser sessions end (logged in elsewhere too)."""
    user = require_user(storage, username)
    check_password(password)
    user.password_hash = hash_password(password)
    storage.put_user(user)
    end_sessions(storage, username)


def ensure_external_user(storage: Storage, identity: ExternalIdentity, *,
                         keep_groups: bool = False) -> UserInfo:
    """The local user of someone who logged in elsewhere: added at first login (no usable
    password, marked with its source), display name and mail kept current. A user of
    that name from elsewhere (local, another source) is never taken over: Conflict.

    ``keep_groups``: also keep the identity's groups with the time (an OpenID Connect
    login: its provider cannot be asked later, and API tokens need the groups; see
    auth.groups.current_groups). A directory is asked instead, so LDAP keeps none."""
    problem = username_problem(identity.username)
    if problem or identity.username == ANONYMOUS:
        raise InvalidInput("username", problem or f"{ANONYMOUS!r} is reserved")
    display_name, email = identity.display_name[:200], identity.email[:200]
    user = storage.get_user(identity.username)
    if user is not None and user.source != identity.source:
        raise Conflict(f"a {user.source or 'local'} user named {identity.username!r} exists; "
                       "an administrator must rename or remove it first")
    changed = user is None or (user.display_name, user.email) != (display_name, email)
    if user is None:
        user = UserInfo(username=identity.username, password_hash=EXTERNAL_PASSWORD,
                        source=identity.source[:16])
    user.display_name, user.email = display_name, email
    if keep_groups:  # a new login replaces the groups the last one reported
        user.groups, user.groups_seen, changed = identity.groups, seen_now(), True
    if changed:
        storage.put_user(user)
    return user


def delete_user(storage: Storage, username: str) -> None:
    """Delete the user and every grant it holds."""
    if not storage.delete_user(username):
        raise UnknownUser(username)
