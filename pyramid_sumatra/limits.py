"""Request limits: body size (413), tags per record (400), failed logins (429).

The body limit is checked around the Pyramid router, before pyramid_retry
copies the body and before any view, transaction or storage call: first the
declared ``Content-Length`` (the body is then never read), then, for a body
without one (a chunked upload the server passes through), by reading at most
one byte past the limit; a tween answers 413 in JSON. waitress buffers the
whole request body before it calls the app (its own cap is
``max_request_body_size``), so a slow or truncated upload never holds a
database connection or a file lock: it is waiting in waitress.

Failed logins are counted per username *in this process* (one counter per app
instance): after ``sumatra.login_max_failures`` failures in a row, each further
attempt for that username is refused with 429 and ``Retry-After`` for 1, 2, 4,
... seconds (at most ``sumatra.login_lockout_max``), without checking the password.
Several processes behind a load balancer each keep their own counter, so an
attacker gets at most that many more tries; a success resets the counter.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPTooManyRequests
from pyramid.request import Request
from pyramid.response import Response
from webob.request import DisconnectionError

from .records import InvalidRecord, tag_list, unstorable
from .usernames import username_problem

log = logging.getLogger(__name__)

LIMITS_KEY = "sumatra.limits"
THROTTLE_KEY = "sumatra.login_throttle"
T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    max_body_size: int
    max_tags: int
    max_tag_length: int
    max_form_size: int = 1024 * 1024

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Limits:
        return cls(
            max_body_size=int(settings["sumatra.max_body_size"]),
            max_tags=int(settings["sumatra.max_tags"]),
            max_tag_length=int(settings["sumatra.max_tag_length"]),
            max_form_size=int(settings["sumatra.max_form_size"]),
        )


def check_record(doc: Any, limits: Limits) -> None:
    """Raise InvalidRecord (field ``tags``) when a record has too many or too long tags."""
    if not isinstance(doc, dict):
        return  # validation proper says why
    tags = tag_list(doc.get("tags"))
    if len(tags) > limits.max_tags:
        raise InvalidRecord("tags", f"a record may have at most {limits.max_tags} tags, "
                                    f"not {len(tags)}")
    for tag in tags:
        if len(tag) > limits.max_tag_length:
            raise InvalidRecord("tags", f"tag {tag[:20]!r}... is longer than "
                                        f"{limits.max_tag_length} characters")


def record_limits(request: Request) -> Limits:
    return request.registry[LIMITS_KEY]


# -- body size -----------------------------------------------------------------


def _error(status: int, error: str, detail: str) -> Response:
    response = Response(status=status, json_body={"error": error, "detail": detail})
    response.charset = "utf-8"
    return response


TOO_LARGE = "sumatra.body_too_large"
FORM_BODY = "sumatra.form_body"  # the form limit applied
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
BAD_LENGTH = "sumatra.bad_content_length"


class BodyLimitMiddleware:
    """Drops an over-long body before Pyramid sees it; the tween below answers 413.

    It wraps the router because pyramid_retry copies the whole body into a
    seekable file before any tween runs: checking in a tween would come too late.
    """

    def __init__(self, app, limit: int, form_limit: int | None = None):
        self.app, self.limit = app, limit
        self.form_limit = min(limit, form_limit) if form_limit else limit
        self.registry = app.registry  # what tests and tools look up on the app

    def __call__(self, environ: dict, start_response):
        # Forms (login, the web UI's posts) are small: a 5 MB login form is refused
        # unread instead of parsed (WebOb's parse of it cost the process ~90 MB of heap).
        is_form = (environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower() in _FORMS
        limit = self.form_limit if is_form else self.limit
        if is_form and limit < self.limit:
            environ[FORM_BODY] = True
        declared = environ.get("CONTENT_LENGTH") or ""
        if declared:
            try:
                length = int(declared)
            except ValueError:
                length = 0
                environ[BAD_LENGTH] = f"Content-Length {declared[:20]!r} is not a number"
            if length < 0:
                environ[BAD_LENGTH] = "Content-Length is negative"
            elif length > limit:
                environ[TOO_LARGE] = f"{length} bytes"
            if BAD_LENGTH in environ or TOO_LARGE in environ:
                self._drop_body(environ)
        elif environ.get("wsgi.input_terminated"):
            # No length declared: read what the server has, never more than limit + 1.
            data = environ["wsgi.input"].read(limit + 1)
            if len(data) > limit:
                environ[TOO_LARGE] = "more than that"
                data = b""
            environ["wsgi.input"] = io.BytesIO(data)
            environ["CONTENT_LENGTH"] = str(len(data))
        try:
            return self.app(environ, start_response)
        except DisconnectionError as exc:
            # The client went away mid-body (servers that stream bodies, e.g. gunicorn):
            # nothing was stored; answer for the log's sake, nobody reads it.
            log.info("client disconnected before its request body ended: %s", exc)
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [b'{"error": "incomplete body", "detail": "the client disconnected"}']

    @staticmethod
    def _drop_body(environ: dict) -> None:
        environ["wsgi.input"] = io.BytesIO(b"")
        environ["CONTENT_LENGTH"] = "0"


def limit_body(app, settings: dict[str, Any]) -> BodyLimitMiddleware:
    return BodyLimitMiddleware(app, int(settings["sumatra.max_body_size"]),
                               int(settings["sumatra.max_form_size"]))


def url_problem(request: Request) -> str | None:
    """Why no view could use this URL (bytes that are not UTF-8, NUL), or None.

    Checked once here, so no view or backend meets them (found by fuzzing: a 500
    from the decoder, and PostgreSQL refusing NUL in a tag filter).
    """
    try:
        parts = [request.path_info, *(x for item in request.GET.items() for x in item)]
    except UnicodeDecodeError:
        return "the URL is not valid UTF-8"
    if any(unstorable(part) for part in parts):
        return "the URL contains a NUL character"
    return None


def body_limit_tween_factory(handler: Callable, registry) -> Callable:
    """Answers 413/400 for bodies BodyLimitMiddleware dropped and for unusable URLs (inside
    the access log and security headers, so these responses get them too)."""
    limits = registry[LIMITS_KEY]

    def body_limit_tween(request: Request) -> Response:
        if TOO_LARGE in request.environ:
            limit, setting = ((limits.max_form_size, "sumatra.max_form_size")
                              if FORM_BODY in request.environ
                              else (limits.max_body_size, "sumatra.max_body_size"))
            return _error(413, "request body too large",
                          f"the body ({request.environ[TOO_LARGE]}) exceeds the limit of "
                          f"{limit} bytes (setting {setting})")
        if BAD_LENGTH in request.environ:
            return _error(400, "invalid Content-Length", request.environ[BAD_LENGTH])
        problem = url_problem(request)
        if problem:
            return _error(400, "invalid URL", problem)
        return handler(request)

    return body_limit_tween


# -- failed logins -------------------------------------------------------------


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
    config.registry[LIMITS_KEY] = Limits.from_settings(settings)
    config.registry[THROTTLE_KEY] = LoginThrottle(
        max_failures=int(settings["sumatra.login_max_failures"]),
        lockout_max=float(settings["sumatra.login_lockout_max"]),
    )
    config.add_tween("pyramid_sumatra.limits.body_limit_tween_factory",
                     under="pyramid_sumatra.headers.security_headers_tween_factory")
