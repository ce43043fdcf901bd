"""Health endpoints for load balancers."""

from __future__ import annotations

import logging

from pyramid.request import Request
from pyramid.view import view_config

log = logging.getLogger(__name__)


@view_config(route_name="health", renderer="json")
def health(request: Request):
    """Liveness: the process answers."""
    return {"status": "ok"}


@view_config(route_name="ready", renderer="json")
def ready(request: Request):
    """Readiness: storage is reachable.

    Everyone gets the answer; only server administrators the backend, SQL dialect and
    error text (which name the software and where it runs). The error is logged.
    """
    status = request.storage.status()
    ok = bool(status.get("ok"))
    if not ok:
        log.warning("not ready: %s", status.get("detail", status))
        request.response.status_int = 503
        request.response.headers["Retry-After"] = "5"
    # Ask for the caller only while storage answers (a login needs it).
    identity = request.identity if ok else None
    if identity is not None and identity.is_admin:
        return status
    return {"ok": ok, "status": "ok" if ok else "unavailable"}


def includeme(config) -> None:
    config.add_route("health", "/_health")
    config.add_route("ready", "/_ready")
