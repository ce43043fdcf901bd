"""Views: thin layers that negotiate, parse, call services (or read storage) and render.

JSON and HTML views are separate ``view_config``s on the same context, chosen
by the ``representation`` predicate ("json" matches every JSON media type).
"""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.events import NewResponse
from pyramid.httpexceptions import (
    HTTPBadRequest,
    HTTPConflict,
    HTTPException,
    HTTPNotFound,
    HTTPNotModified,
    HTTPPreconditionFailed,
)
from pyramid.request import Request
from pyramid.response import Response
from webob.etag import ETagMatcher

from ..negotiation import Representation, negotiate
from ..records import etag, etag_revision, parse_json_body
from ..services.errors import Conflict, InvalidInput, LastAdmin, NotFound, ServiceError


class RepresentationPredicate:
    """``representation="json"`` or ``"html"``: what negotiation chose for this context."""

    def __init__(self, value: str, config: Configurator):
        self.value = value

    def text(self) -> str:
        return f"representation = {self.value}"

    phash = text

    def __call__(self, context, request: Request) -> bool:
        chosen = representation(request, context)
        if chosen is None:
            return False
        return chosen.is_html == (self.value == "html")


def representation(request: Request, context) -> Representation | None:
    cache = request.__dict__.setdefault("_sumatra_repr", {})
    kind = getattr(context, "kind", "project")
    if kind not in cache:
        cache[kind] = negotiate(request, kind)
    return cache[kind]


def json_error(exc_class, error: str, detail: str, **kw) -> Exception:
    return exc_class(json_body={"error": error, "detail": detail}, **kw)


def require_project(project) -> None:
    """404 (to anyone allowed this far) when the project does not exist."""
    if not project.exists:
        raise json_error(HTTPNotFound, "not found", f"no project {project.id!r}")


#: The HTTP error of each domain error: the first class it is an instance of.
_STATUS: tuple[tuple[type[ServiceError], type[HTTPException]], ...] = (
    (LastAdmin, HTTPBadRequest),  # a conflict, but answered 400 since 0.1.0
    (Conflict, HTTPConflict),
    (NotFound, HTTPNotFound),
    (ServiceError, HTTPBadRequest),  # InvalidInput, UnknownUser
)


def http_error(exc: ServiceError) -> HTTPException:
    """The HTTP error telling a client why a service refused: ``{"error", "detail"[, "field"]}``."""
    body = {"error": exc.error, "detail": exc.detail}
    if isinstance(exc, InvalidInput):
        body["field"] = exc.field
    status = next(cls for kind, cls in _STATUS if isinstance(exc, kind))
    return status(json_body=body)


def read_json(request: Request) -> Any:
    """The request body as JSON; InvalidInput (a 400, see errors.service_error) if it is not."""
    return parse_json_body(request.body)


def render_json(request: Request, rep: Representation, *, body: str | bytes,
                revision: str | None = None, status: int = 200) -> Response:
    """A JSON response with charset, Vary and (given a revision) ETag/304 handling.

    ``body`` is the serialised document (text, or UTF-8 bytes).
    """
    response = request.response
    response.status_int = status
    # Plain header writes: WebOb's content_type/etag/cache_control setters parse and
    # re-serialise, a tenth of a GET record's cost.
    headers = response.headers
    headers["Content-Type"] = f"{rep.media_type}; charset=utf-8"
    headers["Vary"] = "Accept"
    if revision is not None:
        headers["ETag"] = f'"{etag(revision, rep.name)}"'
        headers["Cache-Control"] = "no-cache"
        if request.method in ("GET", "HEAD") and not_modified(request, revision):
            raise HTTPNotModified(headers={"ETag": headers["ETag"], "Vary": "Accept",
                                           "Cache-Control": "no-cache"})
    response.body = body.encode("utf-8") if isinstance(body, str) else body
    return response


def _revisions(matcher) -> set[str] | None:
    """Revisions named by an If-Match/If-None-Match header; None for "*"."""
    if isinstance(matcher, ETagMatcher):
        return {etag_revision(t) for t in matcher.etags}
    return None


def not_modified(request: Request, revision: str) -> bool:
    if "If-None-Match" not in request.headers:
        return False
    named = _revisions(request.if_none_match)
    return named is None or revision in named


def check_if_match(request: Request, current_revision: str | None) -> None:
    """412 when If-Match names a revision other than the stored one."""
    if "If-Match" not in request.headers:
        return
    named = _revisions(request.if_match)
    if current_revision is None or (named is not None and current_revision not in named):
        raise json_error(
            HTTPPreconditionFailed, "precondition failed",
            "the resource changed since you read it (If-Match does not name its current "
            "revision); GET it again and retry")


def check_if_none_match(request: Request, current_revision: str | None) -> None:
    """412 for a write whose If-None-Match matches what is stored (RFC 9110 13.1.2).

    ``If-None-Match: *`` makes a PUT create-only: it must not overwrite an existing resource.
    """
    if "If-None-Match" not in request.headers or current_revision is None:
        return
    named = _revisions(request.if_none_match)
    if named is None or current_revision in named:
        raise json_error(
            HTTPPreconditionFailed, "precondition failed",
            "the resource already exists (If-None-Match: * asks to create it only) or is "
            "the revision If-None-Match names; nothing was changed")


def vary_on_accept(event: NewResponse) -> None:
    """Every negotiated response varies on Accept (HTML pages and errors too)."""
    if "_sumatra_repr" in event.request.__dict__ and "Accept" not in (event.response.vary or ()):
        event.response.vary = (*(event.response.vary or ()), "Accept")


def includeme(config: Configurator) -> None:
    config.add_view_predicate("representation", RepresentationPredicate)
    config.add_subscriber(vary_on_accept, NewResponse)
    config.include(".auth")
    config.include(".oidc")
    config.include(".tokens")
    config.include(".health")
    config.include(".history")
    config.scan(".")
