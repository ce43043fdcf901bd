"""``/_tokens``: a user's personal API tokens (list, create, revoke) for browsers.

Only a person logged in with a password (a session, or Basic with the password)
manages tokens: a request made *with* a token gets 403, so a leaked read token
cannot mint a write token. The secret of a new token is in the response page
only (never in a flash message: the session is a readable cookie).
"""

from __future__ import annotations

from pyramid.httpexceptions import HTTPBadRequest, HTTPForbidden, HTTPNotFound, HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from ..services import tokens
from ..storage.types import TOKEN_SCOPES
from . import json_error
from .errors import wants_html
from .ui import flash


def _account(request: Request) -> str:
    """The username managing tokens; 401/login for anonymous, 403 for a token, 404 when
    the backend has no tokens (forms are answered; the page says so)."""
    identity = request.identity
    if identity is None:
        raise HTTPForbidden()  # the forbidden view: log in (HTML) or 401
    if identity.via == "token":
        raise json_error(HTTPForbidden, "forbidden",
                         "API tokens cannot manage tokens: log in with your password")
    return identity.username


def _unavailable() -> Exception:
    return json_error(HTTPNotFound, "tokens unavailable",
                      "this server's storage backend does not support API tokens")


def _entry(token) -> dict:
    return {"name": token.name, "scope": token.scope, "projects": token.projects,
            "created": token.created[:19], "expires": (token.expires or "")[:19] or None,
            "last_used": (token.last_used or "")[:19] or None, "status": tokens.status(token)}


def _page(request: Request, username: str, **extra) -> dict:
    request.response.headers["Cache-Control"] = "no-store"  # a new secret may be on it
    available = request.storage.tokens_available
    return {"available": available, "scopes": TOKEN_SCOPES,
            "tokens": [_entry(t) for t in request.storage.list_tokens(username)],
            "new_secret": None, "error": None, "form": {}, **extra}


@view_config(route_name="tokens", request_method="GET", renderer="tokens.html")
def token_list(request: Request):
    page = _page(request, _account(request))
    if not wants_html(request):
        request.override_renderer = "json"
        return {"available": page["available"], "tokens": page["tokens"]}
    return page


@view_config(route_name="token_create", request_method="POST", renderer="tokens.html")
def token_create(request: Request):
    username = _account(request)
    if not request.storage.tokens_available:
        raise _unavailable()
    form = {key: request.POST.get(key, "") for key in ("name", "scope", "expires", "projects")}
    try:
        token, secret = tokens.create(
            request.storage, username, form["name"], expires=form["expires"],
            scope=form["scope"] or "write", projects=form["projects"].replace(",", " ").split())
    except tokens.TokenError as exc:
        if not wants_html(request):
            raise HTTPBadRequest(json_body={"error": f"invalid {exc.field}",
                                            "detail": exc.message, "field": exc.field}) from None
        request.response.status_int = 400
        return _page(request, username, error=f"{exc.field}: {exc.message}", form=form)
    request.response.status_int = 201
    if not wants_html(request):
        request.override_renderer = "json"
        return {**_entry(token), "token": secret}
    return _page(request, username, new_secret=secret, new_name=token.name)


@view_config(route_name="token_revoke", request_method="POST")
def token_revoke(request: Request):
    username = _account(request)
    if not request.storage.tokens_available:
        raise _unavailable()
    name = request.POST.get("name", "")
    if tokens.revoke(request.storage, username, name):
        flash(request, f"Token {name!r} revoked: it no longer works.")
    else:
        flash(request, f"You have no token named {name[:64]!r}.", "error")
    return HTTPSeeOther(location=request.route_url("tokens"))


def includeme(config) -> None:
    config.add_route("tokens", "/_tokens")
    config.add_route("token_create", "/_tokens/create")
    config.add_route("token_revoke", "/_tokens/revoke")
