"""Health endpoints for load balancers."""

from __future__ import annotations

from pyramid.request import Request
from pyramid.view import view_config


@view_config(route_name="health", renderer="json")
def health(request: Request):
    """Liveness: the process answers."""
    return {"status": "ok"}


@view_config(route_name="ready", renderer="json")
def ready(request: Request):
    """Readiness: storage is reachable."""
    status = request.storage.status()
    if not status.get("ok"):
        request.response.status_int = 503
        request.response.headers["Retry-After"] = "5"
    return status


def includeme(config) -> None:
    config.add_route("health", "/_health")
    config.add_route("ready", "/_ready")
