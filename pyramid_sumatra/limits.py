"""Request limits: body size (413), tags per record (400). Failed logins: throttle.py.

The body limit is checked around the Pyramid router, before pyramid_retry
copies the body and before any view, transaction or storage call: first the
declared ``Content-Length`` (the body is then never read), then, for a body
without one (a chunked upload the server passes through), by reading at most
one byte past the limit; a tween answers 413 in JSON. waitress buffers the
whole request body before it calls the app (its own cap is
``max_request_body_size``), so a slow or truncated upload never holds a
database connection or a file lock: it is waiting in waitress.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from webob.request import DisconnectionError

from .records import InvalidRecord, tag_list, unstorable

log = logging.getLogger(__name__)

LIMITS_KEY = "sumatra.limits"


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


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    config.registry[LIMITS_KEY] = Limits.from_settings(settings)
    config.add_tween("pyramid_sumatra.limits.body_limit_tween_factory",
                     under="pyramid_sumatra.headers.security_headers_tween_factory")
