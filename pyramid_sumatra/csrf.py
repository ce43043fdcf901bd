"""CSRF protection for browsers; API clients authenticated by HTTP Basic need none."""

from __future__ import annotations

from pyramid.config import Configurator
from pyramid.csrf import SessionCSRFStoragePolicy
from pyramid.request import Request

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def needs_csrf_check(request: Request) -> bool:
    """Check requests a browser could be tricked into sending with its ambient cookie.

    Basic credentials are never sent by a browser on a forged cross-site request
    without the user being asked, and a request with neither a cookie nor a form
    body carries no ambient authority. Only a request that *did* authenticate with
    Basic (a password or a token) skips the check: any other Authorization header
    (Bearer, Digest, an empty Basic) is a 401 from the policy, never a session
    request without a token.
    """
    identity = request.identity  # 401 here for credentials that are wrong or not Basic
    if identity is not None and identity.via in ("basic", "token"):
        return False
    return bool(request.cookies) or request.content_type in _FORM_TYPES


def includeme(config: Configurator) -> None:
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    config.set_default_csrf_options(require_csrf=True, callback=needs_csrf_check)
