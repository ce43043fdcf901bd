"""Honour a reverse proxy's ``X-Forwarded-*`` headers only from the proxy itself.

The headers decide the URLs the app writes (``X-Forwarded-Host``, ``-Proto``): taken
from any client, anyone could make the server emit links to another site. From an
address in ``trusted_proxy`` (setting of ``[filter:proxy]``, or the environment
variable ``SUMATRA_TRUSTED_PROXY``; addresses or networks, comma- or space-separated)
they are translated by PasteDeploy's prefix middleware, which also applies a mount
``prefix``; from anyone else they are dropped.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable
from typing import Any

from paste.deploy.config import PrefixMiddleware

TRUSTED_PROXY_ENV = "SUMATRA_TRUSTED_PROXY"
DEFAULT_TRUSTED_PROXY = "127.0.0.1 ::1"
#: Headers only a trusted proxy may set (WSGI environ keys).
FORWARDED_HEADERS = ("HTTP_FORWARDED", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PROTO",
                     "HTTP_X_FORWARDED_SCHEME", "HTTP_X_FORWARDED_SERVER",
                     "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> list[Network]:
    """``"10.0.0.5, 192.168.1.0/24 ::1"`` as networks; ValueError for a bad entry."""
    return [ipaddress.ip_network(item, strict=False)
            for item in text.replace(",", " ").split()]


def _trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # a Unix socket, or nothing
        return False
    return any(ip in network for network in networks)


class TrustedProxyMiddleware:
    """Forwarded headers translated from trusted addresses, dropped from all others."""

    def __init__(self, app: Callable, trusted: list[Network], prefix: str = "/"):
        self.app = app
        self.registry = getattr(app, "registry", None)  # what tools look up on the app
        self.trusted = trusted
        self.prefixed = PrefixMiddleware(app, prefix=prefix)

    def __call__(self, environ: dict, start_response: Callable):
        if not _trusted(environ.get("REMOTE_ADDR", ""), self.trusted):
            for key in FORWARDED_HEADERS:
                environ.pop(key, None)
        return self.prefixed(environ, start_response)


def filter_factory(global_conf: dict[str, Any], trusted_proxy: str = DEFAULT_TRUSTED_PROXY,
                   prefix: str = "/") -> Callable[[Callable], TrustedProxyMiddleware]:
    """``[filter:proxy] use = egg:pyramid_sumatra#proxy`` (``trusted_proxy``, ``prefix``)."""
    trusted = parse_networks(os.environ.get(TRUSTED_PROXY_ENV) or trusted_proxy)
    return lambda app: TrustedProxyMiddleware(app, trusted, prefix)
