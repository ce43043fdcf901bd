"""One security policy: HTTP Basic for API clients, a session for browsers, ACLs for permits."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from pyramid.authorization import ACLHelper, Authenticated, Everyone
from pyramid.httpexceptions import HTTPUnauthorized
from pyramid.request import Request

from .limits import authenticate
from .permissions import SERVER_ADMIN, user_principal

REALM = "Sumatra Server API"
CHALLENGE = f'Basic realm="{REALM}"'
SESSION_USER_KEY = "sumatra.user"


@dataclass(frozen=True)
class Identity:
    username: str
    is_admin: bool
    via: str  # "basic" or "session"


def unauthorized(detail: str) -> HTTPUnauthorized:
    """The 401 httplib2 needs before it sends credentials: exactly this challenge."""
    return HTTPUnauthorized(
        headers={"WWW-Authenticate": CHALLENGE},
        json_body={"error": "authentication required", "detail": detail},
    )


def basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized("malformed Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise unauthorized("malformed Basic credentials")
    return username, password


def cached_identity(request: Request) -> Identity | None:
    """The identity if this request has already established it (never asks storage)."""
    return request.__dict__.get("_sumatra_identity")


class SecurityPolicy:
    def identity(self, request: Request) -> Identity | None:
        # Reified per request: storage is asked once.
        if not hasattr(request, "_sumatra_identity"):
            request._sumatra_identity = self._load_identity(request)
        return request._sumatra_identity

    def _load_identity(self, request: Request) -> Identity | None:
        creds = basic_credentials(request)
        if creds is not None:
            username, password = creds
            if not authenticate(request, username, password):  # throttled per username
                # A wrong password is 401 even where anonymous could read.
                raise unauthorized("wrong username or password")
            user = request.storage.get_user(username)
            return Identity(username, bool(user and user.is_admin), "basic")
        if request.cookies and SESSION_USER_KEY in request.session:
            user = request.storage.get_user(request.session[SESSION_USER_KEY])
            if user is None:  # deleted since login
                request.session.invalidate()
                return None
            return Identity(user.username, user.is_admin, "session")
        return None

    def authenticated_userid(self, request: Request) -> str | None:
        identity = self.identity(request)
        return identity.username if identity else None

    def effective_principals(self, request: Request) -> list[str]:
        principals = [Everyone]
        identity = self.identity(request)
        if identity:
            principals += [Authenticated, user_principal(identity.username)]
            if identity.is_admin:
                principals.append(SERVER_ADMIN)
        return principals

    def permits(self, request: Request, context, permission: str):
        return ACLHelper().permits(context, self.effective_principals(request), permission)

    def remember(self, request: Request, userid: str, **kw) -> list:
        request.session.invalidate()  # new session on login: no fixation
        request.session[SESSION_USER_KEY] = userid
        return []

    def forget(self, request: Request, **kw) -> list:
        request.session.invalidate()
        return []
