"""A structured access log: one JSON line per request, with a request id.

The id comes from the caller's ``X-Request-Id`` (a proxy's, when it is a short
token) or is generated, and is echoed in the response's ``X-Request-Id`` so a
person reporting a problem can quote it. Lines go to the logger
``pyramid_sumatra.access`` at INFO; the ini files give it a handler that
prints the bare message.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable

import orjson
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from .intent import WriteUnderReadIntent
from .security import cached_identity

log = logging.getLogger("pyramid_sumatra.access")

REQUEST_ID_HEADER = "X-Request-Id"
_VALID_ID = re.compile(r"[A-Za-z0-9._:@+=\-]{1,128}")  # fullmatch: "$" allows a final "\n"


def request_id(request: Request) -> str:
    """The caller's request id if it is a plain token, else a new one."""
    given = request.environ.get("HTTP_X_REQUEST_ID", "")
    return given if given and _VALID_ID.fullmatch(given) else os.urandom(16).hex()


def _path(request: Request) -> str:
    """The path as sent, even when it is not valid UTF-8 (WSGI gives it as latin-1)."""
    raw = request.environ.get("SCRIPT_NAME", "") + request.environ.get("PATH_INFO", "")
    return raw.encode("latin-1", "replace").decode("utf-8", "replace")


def _utc_now() -> str:
    """ISO 8601 UTC with milliseconds, as datetime.isoformat() gives but 4x cheaper."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + \
        f".{int(now % 1 * 1000):03d}+00:00"


def access_entry(request: Request, status: int, duration: float) -> dict:
    identity = cached_identity(request)
    return {
        "time": _utc_now(),
        "method": request.method,
        "path": _path(request),
        "status": status,
        "duration_ms": round(duration * 1000, 2),
        "request_id": request.request_id,
        "user": identity.username if identity else None,
        # The token's name, never its secret: which credential to revoke if it leaked.
        "token": identity.token.name if identity and identity.token else None,
        "remote_addr": request.client_addr,
    }


def accesslog_tween_factory(handler: Callable, registry) -> Callable:
    def accesslog_tween(request: Request) -> Response:
        start = time.perf_counter()
        request.request_id = request_id(request)
        status = 500  # if the handler raises, the server answers 500
        try:
            response = handler(request)
            status = response.status_int
            response.headers[REQUEST_ID_HEADER] = request.request_id
            return response
        finally:
            # A read that had to write is replayed at once; its dropped answer (503) is
            # nobody's: the replay logs the request.
            if log.isEnabledFor(logging.INFO) and \
                    not isinstance(getattr(request, "exception", None), WriteUnderReadIntent):
                entry = access_entry(request, status, time.perf_counter() - start)
                log.info(orjson.dumps(entry).decode())

    return accesslog_tween


def includeme(config: Configurator) -> None:
    # Outermost: the duration covers everything, and every response gets the id.
    config.add_tween("pyramid_sumatra.accesslog.accesslog_tween_factory",
                     under="INGRESS")
