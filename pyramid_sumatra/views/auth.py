"""Browser login and logout (a session cookie); API clients use HTTP Basic instead."""

from __future__ import annotations

from urllib.parse import urlsplit

from pyramid.csrf import new_csrf_token
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.request import Request
from pyramid.security import forget, remember
from pyramid.view import view_config

from ..auth.groups import after_login
from ..throttle import authenticate
from ..usernames import username_problem


def safe_next(request: Request, target: str | None) -> str:
    """Only redirect within this site (no open redirects)."""
    home = request.resource_url(request.root)
    if not target:
        return home
    parts = urlsplit(target)
    ours = urlsplit(home)
    if parts.scheme and (parts.scheme, parts.netloc) != (ours.scheme, ours.netloc):
        return home
    if not parts.scheme and (parts.netloc or not target.startswith("/")):
        return home
    return target


@view_config(route_name="login", request_method="GET", renderer="login.html")
def login_form(request: Request):
    return {"next": safe_next(request, request.GET.get("next")), "error": None,
            "username": ""}


@view_config(route_name="login", request_method="POST", renderer="login.html")
def login(request: Request):
    username = request.POST.get("username", "")
    password = request.POST.get("password", "")
    target = safe_next(request, request.POST.get("next"))
    if username and authenticate(request, username, password):  # throttled per username
        # A directory user's first login adds it; its groups go into the session.
        headers = remember(request, username, groups=after_login(request.storage, username))
        new_csrf_token(request)
        return HTTPSeeOther(location=target, headers=headers)
    request.response.status_int = 400
    # Echo back only a name someone could have (never a 5 MB one).
    return {"next": target, "error": "Wrong username or password.",
            "username": "" if username_problem(username) else username}


@view_config(route_name="logout", request_method="POST")
def logout(request: Request):
    from .oidc import VIA_KEY, provider_logout_url

    via_provider = request.session.get(VIA_KEY) == "oidc"
    headers = forget(request)
    home = request.resource_url(request.root)
    # An OpenID session also ends at the provider (else its login page lets them back in).
    target = provider_logout_url(request, home) if via_provider else None
    return HTTPSeeOther(location=target or home, headers=headers)


def includeme(config) -> None:
    config.add_route("login", "/_login")
    config.add_route("logout", "/_logout")
