"""Every error as JSON (or an HTML page for browsers); the 401-versus-403 rule."""

from __future__ import annotations

import logging

from pyramid.events import BeforeRender, subscriber
from pyramid.exceptions import BadCSRFToken, PredicateMismatch
from pyramid.httpexceptions import (
    HTTPBadRequest,
    HTTPException,
    HTTPFound,
    HTTPInsufficientStorage,
    HTTPInternalServerError,
    HTTPMethodNotAllowed,
    HTTPNotAcceptable,
    HTTPNotFound,
    HTTPServiceUnavailable,
)
from pyramid.renderers import render_to_response
from pyramid.request import Request
from pyramid.view import exception_view_config, forbidden_view_config, view_config

from ..auth.external import DirectoryUnavailable
from ..intent import WriteUnderReadIntent
from ..resources import InvalidName, Last, Permissions, Resource, TagContainer
from ..security import unauthorized
from ..services.errors import ServiceError
from ..storage.types import StorageConflict, StorageFull, StorageUnavailable
from . import http_error, json_error, representation

log = logging.getLogger(__name__)

_ALLOWED = {
    "Root": "GET, HEAD",
    "Project": "GET, HEAD, PUT, DELETE",
    "Record": "GET, HEAD, PUT, DELETE",
    "Last": "GET, HEAD",
    "TagSet": "GET, HEAD, DELETE",
    "TagContainer": "",
    "Permissions": "GET, HEAD, POST, DELETE",
}


def wants_html(request: Request) -> bool:
    context = request.context if isinstance(getattr(request, "context", None), Resource) else None
    rep = representation(request, context) if context is not None else None
    if rep is None:
        accept = request.headers.get("Accept", "")
        return "text/html" in accept or request.GET.get("format") == "html"
    return rep.is_html


@forbidden_view_config()
def forbidden(exc, request: Request):
    if request.authenticated_userid is None:
        if request.method in ("GET", "HEAD") and wants_html(request):
            return HTTPFound(location=request.route_url("login", _query={"next": request.url}))
        return as_error(unauthorized("log in to access this resource"), request)
    return as_error(json_error(type(exc), "forbidden",
                               f"user {request.authenticated_userid!r} may not do this here"),
                    request)


@exception_view_config(BadCSRFToken)
def bad_csrf(exc, request: Request):
    return as_error(json_error(HTTPBadRequest, "bad CSRF token",
                               "the form is stale or was not sent by this site; reload and retry"),
                    request)


def allowed_methods(request: Request) -> set[str]:
    """The methods some view registered for this request's view name/route and context
    answers (from Pyramid's introspector); empty if any method would do."""
    route = request.matched_route.name if request.matched_route else None
    methods: set[str] = set()
    for item in request.registry.introspector.get_category("views"):
        view = item["introspectable"]
        context = view["context"]
        if view["name"] != request.view_name or view["route_name"] != route or (
                isinstance(context, type) and not isinstance(request.context, context)):
            continue
        wanted = view["request_methods"]
        if not wanted:
            return set()
        methods.update((wanted,) if isinstance(wanted, str) else wanted)
    if "GET" in methods:
        methods.add("HEAD")
    return methods


@exception_view_config(PredicateMismatch)
def predicate_mismatch(exc: PredicateMismatch, request: Request):
    """No view took the request: 405 + Allow for a wrong method, else 400 — never the
    name of the view function Pyramid's own message gives."""
    allowed = allowed_methods(request)
    if allowed and request.method not in allowed:
        listed = ", ".join(sorted(allowed))
        return as_error(json_error(HTTPMethodNotAllowed, "method not allowed",
                                   f"{request.method} is not allowed here; allowed: {listed}",
                                   headers={"Allow": listed}), request)
    return as_error(json_error(HTTPBadRequest, "bad request",
                               f"{request.path} cannot take this request: check its parameters"),
                    request)


@exception_view_config(HTTPException)
def http_exception(exc: HTTPException, request: Request):
    return as_error(exc, request)


@exception_view_config(ServiceError)
def service_error(exc: ServiceError, request: Request):
    """A rule refused (services.errors): 400, 404 or 409 with its error and detail."""
    return as_error(http_error(exc), request)


@exception_view_config(StorageUnavailable)
def storage_unavailable(exc, request: Request):
    log.warning("storage unavailable: %s", exc)
    return as_error(json_error(HTTPServiceUnavailable, "storage unavailable", str(exc),
                               headers={"Retry-After": "5"}), request)


@exception_view_config(DirectoryUnavailable)
def directory_unavailable(exc, request: Request):
    """The login directory is down: its users wait (local users are not asked about)."""
    log.warning("login directory unavailable: %s", exc)
    return as_error(json_error(HTTPServiceUnavailable, "login directory unavailable",
                               str(exc), headers={"Retry-After": "30"}), request)


@exception_view_config(StorageFull)
def storage_full(exc, request: Request):
    log.warning("storage full: %s", exc)
    return as_error(json_error(HTTPInsufficientStorage, "insufficient storage", str(exc)),
                    request)


@exception_view_config(StorageConflict)
def storage_conflict(exc, request: Request):
    # pyramid_retry replays the request while attempts remain (this answer is then
    # dropped); only the last attempt's conflict reaches the client: busy, try again.
    log.info("write conflict: %s", exc)
    return as_error(json_error(HTTPServiceUnavailable, "storage busy",
                               f"a concurrent write kept conflicting with this one: {exc}",
                               headers={"Retry-After": "1"}), request)


@exception_view_config(WriteUnderReadIntent)
def write_under_read_intent(exc, request: Request):
    # pyramid_retry drops this answer and replays the request with write intent (the
    # last attempt never reads without a transaction): plain, no page to render.
    log.debug("replaying %s %s with write intent: %s", request.method, request.path, exc)
    return json_error(HTTPServiceUnavailable, "storage busy", "try again",
                      headers={"Retry-After": "1"})


@exception_view_config(Exception)
def server_error(exc, request: Request):
    log.exception("unhandled error on %s %s", request.method, request.path_qs)
    return as_error(json_error(HTTPInternalServerError, "internal server error",
                               "the server failed; nothing was stored. The error is logged."),
                    request)


@subscriber(BeforeRender)
def page_user(event: BeforeRender) -> None:
    """``userid`` for the page templates, computed so that an error page never re-raises.

    Asking for the user raises 401 (wrong or malformed credentials) or 429 (locked
    out). On a page that raise becomes the 401/429 page; on that error page itself the
    user is shown as anonymous (asking again would raise again: a 500 with no headers).
    """
    request = event.get("request")
    if request is None or not str(event.get("renderer_name", "")).endswith(".html"):
        return
    try:
        userid = request.authenticated_userid
    except HTTPException:
        if getattr(request, "exception", None) is None:
            raise
        userid = None
    event["userid"] = userid


def as_error(exc: HTTPException, request: Request):
    """Give an HTTP error a JSON body ``{"error", "detail"}``, or the HTML error page."""
    if exc.code < 400:
        return exc
    if wants_html(request) and request.method != "HEAD":
        response = render_to_response(
            "error.html", {"status": exc.status, "detail": _detail(exc)}, request=request)
        response.status = exc.status
        for name in ("WWW-Authenticate", "Retry-After", "Allow"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    if exc.content_type != "application/json" or not exc.body:
        exc.content_type = "application/json"
        exc.json_body = {"error": exc.title.lower(), "detail": _detail(exc)}
    exc.charset = "utf-8"
    return exc


def _detail(exc: HTTPException) -> str:
    if exc.content_type == "application/json" and exc.body:
        return exc.json_body.get("detail", "")
    return exc.detail or exc.explanation


@view_config(context=Resource)
def fallback(context, request: Request):
    """No view matched: the method is not allowed, or no representation is acceptable."""
    allowed = _ALLOWED.get(type(context).__name__, "")
    if request.method == "PUT" and isinstance(context, (Last, Permissions, TagContainer)):
        raise json_error(HTTPBadRequest, "invalid name",
                         f"{context.__name__!r} is reserved and can never be a record label")
    if request.method in ("GET", "HEAD") and "GET" in allowed:
        raise json_error(HTTPNotAcceptable, "not acceptable",
                         "none of the representations offered matches the Accept header: "
                         "application/vnd.sumatra.*-v4+json, -v3+json, application/json, text/html")
    if not allowed:
        raise json_error(HTTPNotFound, "not found", f"nothing at {request.path}")
    raise json_error(HTTPMethodNotAllowed, "method not allowed",
                     f"{request.method} is not allowed here; allowed: {allowed}",
                     headers={"Allow": allowed})


@view_config(context=InvalidName)
def invalid_name(context: InvalidName, request: Request):
    if request.method in ("GET", "HEAD"):
        raise json_error(HTTPNotFound, "not found", context.problem)
    raise json_error(HTTPBadRequest, "invalid name", context.problem)
