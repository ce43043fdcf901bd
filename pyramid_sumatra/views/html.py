"""HTML pages for browsers, on the same contexts as the JSON views.

Pages only read; the forms they show post to the handlers in ``views/ui.py``.
Named views (``/<project>/@@compare``) use Pyramid's ``@@`` prefix, so they never
collide with record labels (a label cannot start with ``@``).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from pyramid.httpexceptions import HTTPBadRequest, HTTPForbidden, HTTPNotFound
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from ..clip import clip, pretty
from ..comparison import compare
from ..documents import served_document
from ..limits import record_limits
from ..parameters import display, parse_parameters
from ..permissions import CREATE, EDIT, MANAGE, VIEW
from ..records import is_date, tag_list
from ..resources import Last, Permissions, Project, Record, Root, TagSet
from ..services.search import SearchText, interpret_search
from ..storage.types import ANONYMOUS, ROLES, SORTABLE, RecordQuery, StoredRecord
from . import json_error, require_project
from .history import recent_history
from .projects import check_filter_tags, parse_tags, visible_projects

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
#: Columns of the record table: (key, title); "label" is always shown.
COLUMNS = (
    ("label", "Label"), ("timestamp", "Timestamp"), ("reason", "Reason"),
    ("outcome", "Outcome"), ("tags", "Tags"), ("main_file", "Main file"),
    ("version", "Version"), ("executable", "Executable"), ("duration", "Duration"),
    ("user", "User"),
)
#: Most records the parameter table reads bodies of (it needs every body).
PARAMETER_TABLE_LIMIT = 500
MAX_COMPARE = 12


# -- the project list ---------------------------------------------------------------


@view_config(context=Root, request_method="GET", permission=VIEW, representation="html",
             renderer="projects.html")
def project_list_page(context: Root, request: Request):
    projects = visible_projects(request)
    # One query for the public ones, rather than the grants of each project.
    public = {p.id for p in request.storage.list_projects([ANONYMOUS])}
    return {"projects": projects, "public": public,
            "can_create": request.has_permission(CREATE, context)}


# -- a project's records ---------------------------------------------------------------


@dataclass
class Filters:
    """The record table's query string, parsed; ``link()`` rebuilds it with changes."""

    tags: list[str] | None = None
    text: str = ""
    user: str = ""
    main_file: str = ""
    since: str = ""  # YYYY-MM-DD
    until: str = ""
    order: str = "-timestamp"
    limit: int = DEFAULT_PAGE_SIZE
    extra: dict[str, str] = field(default_factory=dict)
    extra_state: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_request(cls, request: Request, tags: list[str] | None) -> Filters:
        get = request.GET
        order = get.get("order", "-timestamp")
        if order.lstrip("-") not in SORTABLE:
            order = "-timestamp"
        try:
            limit = int(get.get("limit", DEFAULT_PAGE_SIZE))
        except ValueError:
            limit = DEFAULT_PAGE_SIZE
        return cls(tags=tags, text=get.get("q", "").strip(), user=get.get("user", "").strip(),
                   main_file=get.get("main_file", "").strip(),
                   since=_date(get.get("since")), until=_date(get.get("until")), order=order,
                   limit=limit if limit in PAGE_SIZES else DEFAULT_PAGE_SIZE)

    @property
    def search(self) -> SearchText:
        """The search box: a query (docs/query.md) when it parses as one, else plain text."""
        if "_search" not in self.extra_state:
            self.extra_state["_search"] = interpret_search(self.text)
        return self.extra_state["_search"]

    def query(self, cursor: str | None = None, **kw: Any) -> RecordQuery:
        return RecordQuery(
            tags=self.tags or None, text=self.search.text, user=self.user or None,
            main_file=self.main_file or None,
            since=f"{self.since} 00:00:00" if self.since else None,
            until=f"{self.until} 23:59:59" if self.until else None,
            order=self.order, limit=self.limit, cursor=cursor, **kw)

    def params(self, **changes: Any) -> dict[str, str]:
        values = {"tags": ",".join(self.tags or []), "q": self.text, "user": self.user,
                  "main_file": self.main_file, "since": self.since, "until": self.until,
                  "order": self.order if self.order != "-timestamp" else "",
                  "limit": str(self.limit) if self.limit != DEFAULT_PAGE_SIZE else ""}
        values.update({k: ("" if v is None else str(v)) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}

    @property
    def active(self) -> bool:
        return bool(self.tags or self.text or self.user or self.main_file or self.since
                    or self.until)

    def sort_order(self, column: str) -> str:
        """The order a click on ``column``'s header asks for (toggles direction)."""
        if self.order == column:
            return "-" + column
        if self.order == "-" + column:
            return column
        return "-" + column if column in ("timestamp", "duration") else column


def _date(value: str | None) -> str:
    value = (value or "").strip()
    return value if is_date(value) else ""


def records_page(request: Request, context, project: Project,
                 tags: list[str] | None) -> dict:
    require_project(project)
    filters = Filters.from_request(request, tags)
    cursor = request.GET.get("cursor") or None
    try:
        page = request.storage.search_records(project.id, filters.query(cursor),
                                              filters.search.where)
    except ValueError:  # a malformed cursor
        raise json_error(HTTPBadRequest, "invalid cursor", "the page link is broken; "
                         "start again from the first page") from None
    try:
        offset = max(int(request.GET.get("n", "0")), 0)
    except ValueError:
        offset = 0
    page_tags = sorted({t for r in page.records for t in r.tags} | set(tags or []))
    return {"project": project, "page": page, "filters": filters, "columns": COLUMNS,
            "sortable": SORTABLE, "page_sizes": PAGE_SIZES, "offset": offset,
            "page_tags": page_tags, "tagset": getattr(context, "tag", None),
            "users": sorted({r.user for r in page.records if r.user}),
            "main_files": sorted({r.main_file for r in page.records if r.main_file}),
            "can_edit": request.has_permission(EDIT, project),
            "can_manage": request.has_permission(MANAGE, project)}


def toggled(tags: list[str] | None, tag: str | None) -> list[str] | None:
    """The tag filter after a click on a tag chip (``?toggle=T``): T added or removed.

    The chips are buttons of the filter form, which sends the current filter once:
    links carrying the whole filter in every chip made the page grow with the square
    of the number of tags.
    """
    tag = (tag or "").strip()
    if not tag:
        return tags
    tags = list(tags or [])
    return [t for t in tags if t != tag] if tag in tags else [*tags, tag]


@view_config(context=Project, request_method="GET", permission=VIEW, representation="html",
             renderer="project.html")
def project_page(context: Project, request: Request):
    tags = toggled(parse_tags(request), request.GET.get("toggle"))
    return records_page(request, context, context,
                        check_filter_tags(tags, record_limits(request)) if tags else None)


@view_config(context=TagSet, request_method="GET", permission=VIEW, representation="html",
             renderer="project.html")
def tagset_page(context: TagSet, request: Request):
    return records_page(request, context, context.project, [context.tag])


# -- one record -----------------------------------------------------------------------

#: Fields the record page shows in their own sections; any other key goes to "Other".
KNOWN_FIELDS = frozenset({
    "label", "timestamp", "reason", "duration", "executable", "repository", "main_file",
    "version", "parameters", "input_data", "script_arguments", "launch_mode", "datastore",
    "input_datastore", "outcome", "stdout_stderr", "output_data", "tags", "diff", "user",
    "dependencies", "platforms", "repeats", "project_id",
})


def _entries(value: Any) -> list[dict]:
    """List-of-objects fields; old clients sent some as JSON text (``"[]"``)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def _other_fields(doc: dict) -> dict:
    """Keys the page has no section for, and list fields it could not read as lists."""
    other = {k: v for k, v in doc.items() if k not in KNOWN_FIELDS}
    for name in ("input_data", "output_data", "dependencies", "platforms"):
        value = doc.get(name)
        if value not in (None, "", [], "[]") and not _entries(value):
            other[name] = value
    return other


@view_config(context=Record, request_method="GET", permission=VIEW, representation="html",
             renderer="record.html")
@view_config(context=Last, request_method="GET", permission=VIEW, representation="html",
             renderer="record.html")
def record_page(context, request: Request):
    require_project(context.project)
    if context.stored is None:
        raise json_error(HTTPNotFound, "not found", "no such record")
    stored_doc = served_document(context.stored)
    doc = clip(stored_doc)  # a deep document renders, the deep part as JSON text
    try:
        tags = tag_list(doc.get("tags"))
    except ValueError:
        tags = []
    record_url = request.resource_url(context.project, context.stored.label, "")
    parameters = parse_parameters(stored_doc.get("parameters"))
    parameters.values = clip(parameters.values)
    return {"project": context.project, "stored": context.stored, "record": doc,
            "record_json": pretty(stored_doc, context.stored.body),
            "record_url": record_url, "tags": tags,
            "parameters": parameters,
            "input_data": _entries(doc.get("input_data")),
            "output_data": _entries(doc.get("output_data")),
            "dependencies": _entries(doc.get("dependencies")),
            "platforms": _entries(doc.get("platforms")),
            "other": _other_fields(doc),
            "history": recent_history(request, context.project.id, context.stored.label),
            "trash_available": request.storage.trash_available,
            "can_edit": request.has_permission(EDIT, context)}


# -- comparing records ------------------------------------------------------------------


def requested_labels(request: Request) -> list[str]:
    """Labels from ``?labels=a,b`` and/or repeated ``?label=a&label=b``, in order, once each."""
    labels = [x.strip() for raw in request.GET.getall("labels") for x in raw.split(",")]
    labels += [x.strip() for x in request.GET.getall("label")]
    return list(dict.fromkeys(x for x in labels if x))


@view_config(context=Project, name="compare", request_method="GET", permission=VIEW,
             renderer="compare.html")
def compare_page(context: Project, request: Request):
    require_project(context)
    labels = requested_labels(request)[:MAX_COMPARE]
    records = [request.storage.get_record(context.id, label) for label in labels]
    missing = [label for label, r in zip(labels, records, strict=True) if r is None]
    docs = [r.document for r in records if r is not None]
    return {"project": context, "comparison": compare(docs) if len(docs) >= 2 else None,
            "missing": missing, "labels": labels, "docs": docs}


# -- the parameter table -----------------------------------------------------------------


def parameter_rows(request: Request, project: Project) -> tuple[list[str], list[dict], bool]:
    """(keys, rows, truncated) for the records selected by labels or by the table filters."""
    labels = requested_labels(request)[:PARAMETER_TABLE_LIMIT]  # one read per label
    if labels:
        stored = [request.storage.get_record(project.id, label) for label in labels]
        records: list[StoredRecord] = [r for r in stored if r is not None]
        truncated = False
    else:
        filters = Filters.from_request(request, parse_tags(request))
        filters.limit = PARAMETER_TABLE_LIMIT
        page = request.storage.search_records(project.id, filters.query(with_body=True),
                                              filters.search.where)
        records, truncated = page.records, page.next_cursor is not None
    rows, keys = [], {}
    for record in records:
        doc = record.document
        flat = parse_parameters(doc.get("parameters")).flat
        keys.update(dict.fromkeys(flat))
        rows.append({"label": record.label, "timestamp": record.timestamp,
                     "values": {k: display(v) for k, v in flat.items()}})
    return sorted(keys), rows, truncated


@view_config(context=Project, name="parameters", request_method="GET", permission=VIEW,
             renderer="parameters.html")
def parameters_page(context: Project, request: Request):
    require_project(context)
    keys, rows, truncated = parameter_rows(request, context)
    varying = {k for k in keys if len({r["values"].get(k, "") for r in rows}) > 1}
    return {"project": context, "keys": keys, "rows": rows, "truncated": truncated,
            "varying": varying, "limit": PARAMETER_TABLE_LIMIT}


def csv_cell(value: str) -> str:
    """Neutralise spreadsheet formulas (a cell starting ``=``, ``+``, ``-``, ``@``) unless
    the value is a number: a shared CSV must not run anything when opened."""
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


@view_config(context=Project, name="parameters.csv", request_method="GET", permission=VIEW)
def parameters_csv(context: Project, request: Request) -> Response:
    require_project(context)
    keys, rows, _ = parameter_rows(request, context)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["label", "timestamp", *map(csv_cell, keys)])
    for row in rows:
        writer.writerow([row["label"], row["timestamp"],
                         *(csv_cell(row["values"].get(k, "")) for k in keys)])
    response = Response(out.getvalue(), content_type="text/csv", charset="utf-8")
    response.content_disposition = f'attachment; filename="{context.id}-parameters.csv"'
    return response


# -- permissions ---------------------------------------------------------------------------


@view_config(context=Permissions, request_method="GET", permission=VIEW, representation="html",
             renderer="permissions.html")
def permissions_page(context: Permissions, request: Request):
    require_project(context.project)
    if request.authenticated_userid is None:
        raise HTTPForbidden()  # usernames never reach anonymous callers
    grants = context.project.grants
    return {"project": context.project, "is_public": ANONYMOUS in grants,
            "grants": sorted((u, r) for u, r in grants.items() if u != ANONYMOUS),
            "roles": ROLES, "can_manage": request.has_permission(MANAGE, context)}
