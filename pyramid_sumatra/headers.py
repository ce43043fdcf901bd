"""Security headers on every response (pages, JSON, static files and errors alike).

The UI serves its own JavaScript and CSS from ``/_static/`` and no inline
script or style, so the policy allows only this origin. Nothing may frame the
site (clickjacking), browsers must not guess content types, and other sites
are not told which record a person was looking at.
"""

from __future__ import annotations

from collections.abc import Callable

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid.settings import asbool

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}

#: Sent only when the site is served over HTTPS (``sumatra.secure_cookies = true``).
HSTS = "max-age=31536000"


def security_headers_tween_factory(handler: Callable, registry) -> Callable:
    headers = dict(SECURITY_HEADERS)
    issuer = registry.settings.get("sumatra.oidc.issuer")
    if issuer:  # the log-out form continues at the OpenID provider (form-action covers it)
        origin = "/".join(str(issuer).split("/")[:3])
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            "form-action 'self'", f"form-action 'self' {origin}")
    if asbool(registry.settings.get("sumatra.secure_cookies")):
        headers["Strict-Transport-Security"] = HSTS

    def security_headers_tween(request: Request) -> Response:
        response = handler(request)
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    return security_headers_tween


def includeme(config: Configurator) -> None:
    config.add_tween("pyramid_sumatra.headers.security_headers_tween_factory",
                     under="pyramid_sumatra.accesslog.accesslog_tween_factory")
