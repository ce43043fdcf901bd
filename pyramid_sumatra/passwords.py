"""Password hashing (argon2) and the built-in ``sumatra_authenticate`` hook."""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time

import pluggy
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .storage.hookspecs import hookimpl

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    """Constant-time check of ``password`` against an argon2 hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class VerifiedCache:
    """Remembers recent successful checks so HTTP Basic clients are not hashed per request.

    ``smt list`` sends one request per record, each with the password; argon2
    costs tens of milliseconds by design. An entry is keyed by the *stored*
    hash, so changing a password invalidates it, and holds only a keyed digest
    of the password (the key lives in this process's memory only).
    """

    def __init__(self, ttl: float = 300.0, size: int = 1024):
        self.ttl = ttl
        self.size = size
        self._key = os.urandom(32)
        self._entries: dict[tuple[str, str], tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def _digest(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode("utf-8"), hashlib.sha256).digest()

    def hit(self, username: str, password_hash: str, password: str) -> bool:
        entry = self._entries.get((username, password_hash))
        if entry is None or entry[1] < time.monotonic():
            return False
        return hmac.compare_digest(entry[0], self._digest(password))

    def add(self, username: str, password_hash: str, password: str) -> None:
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[(username, password_hash)] = (
                self._digest(password), time.monotonic() + self.ttl)


class BuiltinAuthenticator:
    """Checks the password hash stored by the backend.

    A local user (a real hash) is decided here before any institution plugin is asked:
    a directory entry of the same name cannot take the account over, and local users
    log in while the directory is down. Others (unknown, or external users, whose hash
    matches nothing) are left to the plugins, then refused last.
    """

    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm
        self.cache = VerifiedCache()

    @hookimpl(tryfirst=True)
    def sumatra_authenticate(self, username: str, password: str) -> bool | None:
        user = self.pm.hook.sumatra_get_user(username=username)
        if user is None or user.source or user.password_hash.startswith("!"):
            return None  # not a local password: the institution's plugins, then refuse()
        if self.cache.hit(username, user.password_hash, password):
            return True
        if check_password(user.password_hash, password):
            self.cache.add(username, user.password_hash, password)
            return True
        return False

    @hookimpl(trylast=True, specname="sumatra_authenticate")
    def refuse(self, username: str, password: str) -> bool:
        """No plugin knew the user: refused, at the cost of a real miss (no timing hint)."""
        check_password(_DUMMY_HASH, password)
        return False


_DUMMY_HASH = hash_password("not a password anyone has")
