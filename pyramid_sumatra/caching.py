"""``Cache-Control: private`` on everything not meant for shared caches.

A response to an authenticated caller, one that sets a cookie, or one about a
project that is not public must not be kept by a shared cache (a proxy would hand
one user's page to the next). ``no-cache`` stays where the views set it: httplib2
(Sumatra's client) revalidates with ``If-None-Match`` because of it.
"""

from __future__ import annotations

from pyramid.config import Configurator
from pyramid.events import NewResponse
from pyramid.request import Request
from pyramid.response import Response

from .resources import Project
from .storage.types import ANONYMOUS

SESSION_COOKIE = "sumatra_session"


def is_shareable(request: Request, response: Response) -> bool:
    """Whether any caller would get this same response: anonymous, no cookie, public."""
    if "HTTP_AUTHORIZATION" in request.environ or SESSION_COOKIE in request.cookies:
        return False
    if "Set-Cookie" in response.headers:
        return False
    context = request.__dict__.get("context")
    project = context if isinstance(context, Project) else getattr(context, "project", None)
    if not isinstance(project, Project):
        return True  # the project list (public projects only), health, static files
    # Only what this request already read: after the response, storage is closed.
    known = project.__dict__
    if "info" in known and known["info"] is None:
        return True  # no such project: the same 404 for everyone
    return ANONYMOUS in (known.get("grants") or {})


def mark_private(event: NewResponse) -> None:
    response = event.response
    if is_shareable(event.request, response):
        return
    current = response.headers.get("Cache-Control", "")
    if "private" in current or "no-store" in current:
        return
    response.headers["Cache-Control"] = f"private, {current}" if current else "private"


def includeme(config: Configurator) -> None:
    config.add_subscriber(mark_private, NewResponse)
