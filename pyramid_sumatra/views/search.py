"""``GET /<project>/?q=...``: records selected by the query language (docs/query.md).

Without ``expand`` the answer is the project document listing the selected records;
``expand=records`` gives whole record documents, a page of JSON or (``Accept:
application/x-ndjson``) a stream of every one.
"""

from __future__ import annotations

from pyramid.httpexceptions import HTTPBadRequest
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from ..documents import document_text
from ..permissions import VIEW
from ..records import revision_of, whole_number
from ..resources import Project
from ..services.errors import InvalidInput
from ..services.search import MAX_EXPANDED, parse_where, record_json, stream_records
from ..storage.types import RecordQuery
from . import json_error, render_json, representation, require_project
from .projects import parse_limit, parse_tags

NDJSON = "application/x-ndjson"
EXPANSIONS = ("records",)


def search_where(request: Request):
    """The tree of ``?q=``, or None without one; 400 naming the position when it is wrong."""
    text = request.GET.get("q")
    return parse_where(text) if text is not None else None


def _expand(request: Request) -> bool:
    expand = request.GET.get("expand")
    if expand is not None and expand not in EXPANSIONS:
        raise json_error(HTTPBadRequest, "invalid expand",
                         f"expand must be one of: {', '.join(EXPANSIONS)}")
    return expand is not None


def _expanded_limit(request: Request) -> int:
    raw = request.GET.get("limit")
    limit = MAX_EXPANDED if raw is None else whole_number(raw, MAX_EXPANDED)
    if limit is None:
        raise json_error(HTTPBadRequest, "invalid limit",
                         f"with expand=records, limit is a whole number from 1 to {MAX_EXPANDED}")
    return limit


def _query(request: Request, **kw) -> RecordQuery:
    return RecordQuery(tags=parse_tags(request), cursor=request.GET.get("cursor") or None, **kw)


def _search(request: Request, project: Project, query: RecordQuery, where):
    try:
        return request.storage.search_records(project.id, query, where)
    except InvalidInput:  # a query too costly: 400 naming q
        raise
    except ValueError as exc:  # a malformed cursor (InvalidInput is a ServiceError: 400)
        raise json_error(HTTPBadRequest, "invalid cursor", str(exc)[:200]) from None


def expanded_page(context: Project, request: Request):
    """A page of whole records: ``{"id", "records": [...], "count", "total", "next"}``."""
    require_project(context)
    where = search_where(request)
    _expand(request)
    page = _search(request, context, _query(request, limit=_expanded_limit(request),
                                            with_body=True, count_total=False), where)
    next_url = request.resource_url(context, query={**request.GET, "cursor": page.next_cursor}) \
        if page.next_cursor else None
    head, _ = document_text({"id": context.id, "count": len(page.records), "total": page.total,
                             "next": next_url})
    # The records are serialised once each and spliced in: no second pass over them.
    body = head[:-1] + b',"records":[' + b",".join(
        record_json(r, context.id) for r in page.records) + b"]}"
    return render_json(request, representation(request, context),
                       revision=revision_of(body), body=body)


@view_config(context=Project, request_method="GET", permission=VIEW,
             header=f"Accept:(.*[ ,])?{NDJSON}")
def stream(context: Project, request: Request) -> Response:
    """Every selected record, one JSON document per line (``expand=records`` implied)."""
    require_project(context)
    where = search_where(request)
    _expand(request)
    query = _query(request, limit=parse_limit(request), count_total=False)
    # Check the cursor and the query now, while a 400 can still be sent.
    _search(request, context, RecordQuery(tags=query.tags, cursor=query.cursor, limit=1), where)
    response = Response()
    response.headers["Content-Type"] = f"{NDJSON}; charset=utf-8"
    response.app_iter = stream_records(request.storage, context.id, query, where)
    response.headers["Vary"] = "Accept"
    return response
