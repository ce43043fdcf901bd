"""``GET /<project>/@@plotdata``: the records a filter selects, as rows to plot (JSON)."""

from __future__ import annotations

import orjson
from pyramid.httpexceptions import HTTPBadRequest
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from ..permissions import VIEW
from ..plotdata import FIELDS, MAX_RECORDS, PlotDataError, parse_query, plot_rows
from ..resources import Project
from . import require_project


@view_config(context=Project, name="plotdata", request_method="GET", permission=VIEW)
def plot_data(context: Project, request: Request) -> Response:
    require_project(context)
    try:
        plot = parse_query(list(request.GET.items()))
    except PlotDataError as exc:
        raise _bad(exc.parameter, exc.detail) from None
    try:
        page = request.storage.search_records(context.id, plot.query, plot.where)
    except ValueError:  # a malformed or stale cursor
        raise _bad("cursor", "the cursor is not one this endpoint returned") from None
    rows, kinds = plot_rows(page.records)
    next_url = (request.resource_url(context, "@@plotdata",
                                     query={**plot.params, "cursor": page.next_cursor})
                if page.next_cursor else None)
    doc = {"project": context.id, "count": len(rows), "total": page.total,
           "limit": MAX_RECORDS, "next": next_url, "fields": FIELDS, "parameters": kinds,
           "records": rows}
    # orjson: the json renderer spent ~150 ms of CPU on 10,000 rows (a third of the
    # request once parameters stopped being parsed); rows hold no NaN (plotdata._value).
    response = request.response
    response.content_type = "application/json"
    response.charset = "utf-8"
    response.body = orjson.dumps(doc)
    return response


def _bad(parameter: str, detail: str) -> HTTPBadRequest:
    return HTTPBadRequest(json_body={"error": f"invalid {parameter}", "detail": detail,
                                     "parameter": parameter})
