"""Failed logins (429): one throttle for every credential check.

Failed logins are counted per username *in this process* (one counter per app
instance): after ``sumatra.login_max_failures`` failures in a row, each further
attempt for that username is refused with 429 and ``Retry-After`` for 1, 2, 4,
... seconds (at most ``sumatra.login_lockout_max``), without checking the password.
Several processes behind a load balancer each keep their own counter, so an
attacker gets at most that many more tries; a success resets the counter.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPTooManyRequests
from pyramid.request import Request

from .usernames import username_problem

THROTTLE_KEY = "sumatra.login_throttle"
T = TypeVar("T")


def throttle_key(username: str) -> bytes:
    """The counter's key for a username: 16 bytes whatever the name's length, so the
    counter's memory is bounded in bytes (entries x fixed size), not only in entries."""
    return hashlib.blake2b(username.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class LoginThrottle:
    """Counts failed logins per username; thread-safe, bounded in memory (entries of a
    fixed size: the username's hash, never the username)."""

    def __init__(self, max_failures: int = 5, lockout_max: float = 300.0,
                 forget_after: float = 900.0, size: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.max_failures = max_failures
        self.lockout_max = lockout_max
        self.forget_after = forget_after
        self.size = size
        self.clock = clock
        self._lock = threading.Lock()
        # throttle_key(username) → (consecutive failures, locked until, last failure)
        self._entries: dict[bytes, tuple[int, float, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def retry_after(self, username: str) -> int:
        """Seconds until ``username`` may try again (0: now)."""
        entry = self._entries.get(throttle_key(username))
        if entry is None:
            return 0
        wait = entry[1] - self.clock()
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, username: str) -> None:
        now = self.clock()
        key = throttle_key(username)
        with self._lock:
            failures, _, last = self._entries.pop(key, (0, 0.0, now))
            if now - last > self.forget_after:
                failures = 0
            failures += 1
            locked_until = 0.0
            if failures >= self.max_failures:
                locked_until = now + min(self.lockout_max, 2.0 ** (failures - self.max_failures))
            if len(self._entries) >= self.size:
                del self._entries[next(iter(self._entries))]  # the oldest
            self._entries[key] = (failures, locked_until, now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._entries.pop(throttle_key(username), None)


def throttled(request: Request, username: str, check: Callable[[], T]) -> T:
    """Run a credential ``check`` for ``username`` (a password, an API token) under the
    failed-login throttle: 429 while the username is locked out (``check`` is not run);
    a falsy result counts as a failure, a truthy one resets the count.

    A username no user can have (username_problem: too long, odd characters) is a
    failed login at once: not counted, not looked up, so a flood of 5 MB names costs
    no memory.
    """
    if username_problem(username):
        return None  # type: ignore[return-value] - falsy: a failed check
    throttle: LoginThrottle | None = request.registry.get(THROTTLE_KEY)
    if throttle is not None:
        wait = throttle.retry_after(username)
        if wait:
            raise HTTPTooManyRequests(
                headers={"Retry-After": str(wait)},
                json_body={"error": "too many failed logins",
                           "detail": f"too many failed logins for {username!r}; "
                                     f"try again in {wait} s"})
    result = check()
    if throttle is not None:
        (throttle.succeeded if result else throttle.failed)(username)
    return result


def authenticate(request: Request, username: str, password: str) -> bool:
    """Check a password through storage, refusing (429) a username under lockout."""
    return bool(throttled(request, username,
                          lambda: request.storage.authenticate(username, password)))


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    config.registry[THROTTLE_KEY] = LoginThrottle(
        max_failures=int(settings["sumatra.login_max_failures"]),
        lockout_max=float(settings["sumatra.login_lockout_max"]),
    )
