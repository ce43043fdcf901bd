"""One security policy: HTTP Basic (a password or an API token) for API clients, a session
for browsers, ACLs (narrowed by a token's scope) for permits."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from pyramid.authorization import ACLHelper, Authenticated, Everyone
from pyramid.httpexceptions import HTTPUnauthorized
from pyramid.request import Request
from pyramid.security import Denied

from .auth.external import group_principal
from .auth.groups import after_login, current_groups
from .auth.oidc import token_groups_max_age
from .auth.sessiongroups import remember_groups, session_groups
from .permissions import SERVER_ADMIN, user_principal
from .resources import Project
from .services import tokens
from .sessions import SESSION_STAMP_KEY, end_sessions, stamp
from .storage.types import TokenInfo
from .throttle import authenticate, throttled
from .usernames import username_problem

REALM = "Sumatra Server API"
CHALLENGE = f'Basic realm="{REALM}"'
SESSION_USER_KEY = "sumatra.user"


@dataclass(frozen=True)
class Identity:
    username: str
    is_admin: bool
    via: str  # "basic" (a password), "token" (an API token as the Basic password), "session"
    token: TokenInfo | None = None
    #: Directory or OpenID groups (auth/groups.py): ``group:NAME`` principals.
    groups: tuple[str, ...] = ()


def unauthorized(detail: str) -> HTTPUnauthorized:
    """The 401 httplib2 needs before it sends credentials: exactly this challenge."""
    return HTTPUnauthorized(
        headers={"WWW-Authenticate": CHALLENGE},
        json_body={"error": "authentication required", "detail": detail},
    )


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """The Basic credentials sent, None without an Authorization header; 401 for any other
    Authorization (Bearer, Digest, an empty Basic): never fall back to the session then."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise unauthorized(f"unsupported Authorization scheme {scheme[:20]!r}: use Basic "
                           "with a password or an API token")
    if not value.strip():
        raise unauthorized("malformed Basic credentials")
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
            return self._basic_identity(request, *creds)
        if request.cookies and SESSION_USER_KEY in request.session:
            session = request.session
            user = request.storage.get_user(session[SESSION_USER_KEY])
            # Deleted, logged out elsewhere, password or admin flag changed: the session ends.
            if user is None or session.get(SESSION_STAMP_KEY) != stamp(user):
                session.invalidate()
                return None
            groups = session_groups(request, user)
            if groups is None:  # an external user its source no longer knows: log in again
                session.invalidate()
                return None
            return Identity(user.username, user.is_admin, "session", groups=groups)
        return None

    @staticmethod
    def _basic_identity(request: Request, username: str, password: str) -> Identity:
        storage = request.storage
        if tokens.looks_like_token(password) and storage.tokens_available:
            token = throttled(request, username,  # throttled like a password
                              lambda: tokens.verify(storage, username, password))
            if token is None:
                raise unauthorized("wrong username or token (or the token expired or was "
                                   "revoked)")
            user = storage.get_user(username)
            if user is None:
                raise unauthorized("wrong username or token")
            # An OpenID user's groups: those its last browser login reported, if recent.
            groups = current_groups(storage, user, token_groups_max_age(request.registry))
            return Identity(username, user.is_admin, "token", token, groups=groups or ())
        if not authenticate(request, username, password):  # throttled per username
            # A wrong password is 401 even where anonymous could read.
            raise unauthorized("wrong username or password")
        groups = after_login(storage, username)  # an external user's first login adds it
        user = storage.get_user(username)
        return Identity(username, bool(user and user.is_admin), "basic", groups=groups)

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
            principals += [group_principal(g) for g in identity.groups]
        return principals

    def permits(self, request: Request, context, permission: str):
        if "_sumatra_identity" not in request.__dict__:
            read_context_first(request, context)
        allowed = ACLHelper().permits(context, self.effective_principals(request), permission)
        token = getattr(cached_identity(request), "token", None)
        if allowed and token is not None and \
                not tokens.allows(token, permission, project_of(context)):
            return Denied(f"token {token.name!r} ({token.scope}) does not allow "
                          f"{permission} here")
        return allowed

    def remember(self, request: Request, userid: str, groups: tuple[str, ...] = (),
                 groups_seconds: float | None = None, **kw) -> list:
        """Start a session; ``groups``: the user's groups as its source reported them,
        trusted for ``groups_seconds`` (default: sumatra.groups_refresh_seconds)."""
        request.session.invalidate()  # new session on login: no fixation
        user = request.storage.get_user(userid)
        request.session[SESSION_USER_KEY] = userid
        request.session[SESSION_STAMP_KEY] = stamp(user) if user else ""
        remember_groups(request, groups, groups_seconds)
        return []

    def forget(self, request: Request, **kw) -> list:
        """Log out: every session of the user ends (a copied cookie too, in every process)."""
        identity = self.identity(request)
        if identity is not None and identity.via == "session":
            end_sessions(request.storage, identity.username)
        request.session.invalidate()
        return []


def read_context_first(request: Request, context) -> None:
    """Read a record's project, grants and record before the identity, naming the user
    of the Basic credentials: the backend may read that user in the same query
    (``sumatra_get_project_record``), a statement (on PostgreSQL a round trip) less per
    request. The user is read in this request's transaction all the same: a password
    change, ``deluser`` or a revoked token still takes effect at once."""
    project = getattr(context, "project", None)
    if not isinstance(project, Project) or project._label is None \
            or "info" in project.__dict__:
        return
    try:
        credentials = basic_credentials(request)
    except HTTPUnauthorized:
        return  # the identity answers the 401
    if credentials is not None and not username_problem(credentials[0]):
        project.user_hint = credentials[0]  # a name no user can have is never looked up
    project.info  # noqa: B018 - read now, with the user


def project_of(context) -> str | None:
    """The id of the project a traversal context belongs to (None: the root, or no project)."""
    while context is not None:
        if isinstance(context, Project):
            return context.id
        context = getattr(context, "__parent__", None)
    return None
