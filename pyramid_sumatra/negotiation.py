"""Content negotiation: which representation of a resource the caller gets.

WebOb parses the Accept header (q-values, wildcards); this module only says
what each kind of resource offers and how ``?format=`` overrides it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pyramid.httpexceptions import HTTPUnsupportedMediaType
from pyramid.request import Request
from webob.acceptparse import create_accept_header


@dataclass(frozen=True)
class Representation:
    media_type: str  # what goes in Content-Type (without charset)
    name: str  # "v4", "v3", "json" or "html": the ETag suffix and the renderer choice

    @property
    def is_html(self) -> bool:
        return self.name == "html"

    @property
    def is_v3(self) -> bool:
        return self.name == "v3"


def vendor(kind: str, version: int) -> str:
    return f"application/vnd.sumatra.{kind}-v{version}+json"


@functools.cache
def offers(kind: str) -> tuple[Representation, ...]:
    """Representations of a resource kind, preferred first (the first answers */*)."""
    return (
        Representation(vendor(kind, 4), "v4"),
        Representation(vendor(kind, 3), "v3"),
        Representation("application/json", "json"),
        Representation("text/html", "html"),
    )


_FORMATS = {"json": "json", "html": "html", "v4": "v4", "v3": "v3"}


def negotiate(request: Request, kind: str) -> Representation | None:
    """The representation to send, or None when nothing offered is acceptable (406)."""
    available = offers(kind)
    fmt = request.GET.get("format") if request.environ.get("QUERY_STRING") else None
    if fmt:
        wanted = _FORMATS.get(fmt.lower())
        return next((r for r in available if r.name == wanted), None)
    header = request.environ.get("HTTP_ACCEPT", "").strip()
    if len(header) > _CACHED_HEADER_MAX:  # odd clients do not fill the cache
        return _negotiate_accept.__wrapped__(header, kind)
    return _negotiate_accept(header, kind)


_CACHED_HEADER_MAX = 512


@functools.lru_cache(maxsize=512)
def _negotiate_accept(header: str, kind: str) -> Representation | None:
    """Clients send a handful of distinct Accept headers: parse each once per process."""
    available = offers(kind)
    if not header:
        return available[0]
    accept = create_accept_header(header)
    best = accept.acceptable_offers([r.media_type for r in available])
    if not best:
        return None
    top_q = best[0][1]
    # Ties (e.g. "*/*" or "vnd...+json, application/json") go to our preference order.
    tied = {media for media, q in best if q == top_q}
    return next(r for r in available if r.media_type in tied)


#: Request bodies accepted per kind.
def accepted_body_types(kind: str) -> set[str]:
    return {vendor(kind, 4), vendor(kind, 3), "application/json"}


def check_body_type(request: Request, kind: str) -> str:
    """Return "v3" or "v4" for a JSON body of ``kind``; raise 415 for other media types."""
    media = (request.content_type or "").lower()
    if media not in accepted_body_types(kind):
        raise HTTPUnsupportedMediaType(
            json_body={
                "error": "unsupported media type",
                "detail": f"Content-Type {media or '(none)'!r} is not one of "
                + ", ".join(sorted(accepted_body_types(kind))),
            }
        )
    return "v3" if media == vendor(kind, 3) else "v4"
