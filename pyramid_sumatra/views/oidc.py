"""OpenID Connect login routes: the redirect to the provider and the callback.

The flow itself (PKCE, state, nonce, ID token) is auth/oidc.py; the rule for the user
it logs in is services.users.ensure_external_user.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from pyramid.csrf import new_csrf_token
from pyramid.httpexceptions import HTTPBadRequest, HTTPNotFound, HTTPSeeOther, HTTPUnauthorized
from pyramid.request import Request
from pyramid.security import remember
from pyramid.view import exception_view_config, view_config

from ..auth.oidc import REGISTRY_KEY, InvalidIdToken, LoginFailed, OidcClient, OidcSettings, same
from ..intent import add_unrepeatable_path
from ..services.users import ensure_external_user
from . import json_error
from .auth import safe_next
from .errors import as_error

PENDING_KEY = "sumatra.oidc.pending"
VIA_KEY = "sumatra.via"
PENDING_SECONDS = 600  # a login started longer ago than this starts again
MAX_PARAMETER = 4096  # code, state, error: a provider's values are far shorter
#: The provider sends the browser back here (its one-time code: see includeme).
CALLBACK_PATH = "/_login/oidc/callback"


def client_of(request: Request) -> OidcClient:
    client = request.registry.get(REGISTRY_KEY)
    if client is None:
        raise json_error(HTTPNotFound, "not found", "OpenID Connect login is not configured")
    return client


def _parameter(request: Request, name: str) -> str | None:
    value = request.GET.get(name)
    if value is not None and len(value) > MAX_PARAMETER:
        raise json_error(HTTPBadRequest, f"invalid {name}",
                         f"{name} is longer than {MAX_PARAMETER} characters")
    return value


@view_config(route_name="oidc_login", request_method="GET")
def oidc_login(request: Request):
    client = client_of(request)
    url, pending = client.authorization_url(request.route_url("oidc_callback"))
    target = safe_next(request, (request.GET.get("next") or "")[:2000])
    request.session[PENDING_KEY] = {**pending, "next": target, "at": time.time()}
    return HTTPSeeOther(location=url)


@view_config(route_name="oidc_callback", request_method="GET")
def oidc_callback(request: Request):
    client = client_of(request)
    # Taken out at once: a replayed callback (state, code) finds nothing pending.
    pending = request.session.pop(PENDING_KEY, None)
    state, code, error = (_parameter(request, n) for n in ("state", "code", "error"))
    if error is not None:
        raise LoginFailed(f"the login provider answered {error[:60]!r}")
    if not isinstance(pending, dict) or not same(pending.get("state"), state) or \
            time.time() - float(pending.get("at", 0)) > PENDING_SECONDS:
        raise LoginFailed("this login is unknown, used already or too old (state); "
                          "log in again")
    if not code:
        raise LoginFailed("the login provider sent no code")
    redirect_uri = request.route_url("oidc_callback")
    id_token = client.exchange(redirect_uri, code, pending["verifier"])
    identity = client.identity(client.validate(id_token, pending["nonce"]))
    # First login adds the user; every login keeps its groups for the user's API tokens.
    ensure_external_user(request.storage, identity, keep_groups=True)
    headers = remember(request, identity.username, groups=identity.groups,
                       groups_seconds=client.config.groups_seconds)
    request.session[VIA_KEY] = "oidc"
    new_csrf_token(request)
    return HTTPSeeOther(location=pending.get("next") or request.resource_url(request.root),
                        headers=headers)


def provider_logout_url(request: Request, home: str) -> str | None:
    """Where a logout of an OpenID session continues (the provider's end_session), if
    the provider has one."""
    client = request.registry.get(REGISTRY_KEY)
    endpoint = client.discovery().get("end_session_endpoint") if client else None
    if not isinstance(endpoint, str):
        return None
    return endpoint + "?" + urlencode({"client_id": client.config.client_id,
                                       "post_logout_redirect_uri": home})


@exception_view_config(InvalidIdToken)
def invalid_id_token(exc: InvalidIdToken, request: Request):
    return as_error(json_error(HTTPUnauthorized, "login failed", str(exc)), request)


@exception_view_config(LoginFailed)
def login_failed(exc: LoginFailed, request: Request):
    return as_error(json_error(HTTPBadRequest, "login failed", str(exc)), request)


def includeme(config) -> None:
    settings = OidcSettings.from_settings(config.get_settings())
    if settings is not None:
        config.registry[REGISTRY_KEY] = OidcClient(settings)
    config.add_route("oidc_login", "/_login/oidc")
    config.add_route("oidc_callback", CALLBACK_PATH)
    # Its one-time code is spent before the first login writes the user: a replay with
    # write intent would find it used, so its reads stay in a transaction.
    add_unrepeatable_path(config, CALLBACK_PATH)
