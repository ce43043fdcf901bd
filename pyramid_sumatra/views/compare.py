"""Comparing records of several projects: ``@@compare?records=P1/l1,P2/l2``.

Each record is read under the same rule as ``GET /<project>/<label>/``: a project the
caller may not view stops the whole page (401 to anonymous callers, 403 to others, via
the forbidden view), so a private record's content or even its existence never shows;
records missing from a readable project are listed, as on the one-project page.
"""

from __future__ import annotations

from pyramid.httpexceptions import HTTPBadRequest, HTTPForbidden
from pyramid.request import Request
from pyramid.view import view_config

from ..comparison import compare
from ..permissions import VIEW
from ..resources import InvalidName, Project, Root
from . import json_error
from .html import MAX_COMPARE

#: Longest ``records`` value: MAX_COMPARE pairs of long names fit easily.
MAX_RECORDS_PARAM = 4_000


def requested_pairs(request: Request, default_project: str | None) -> list[tuple[str, str]]:
    """(project, label) pairs from ``?records=P/l,...``; a bare label is in ``default_project``."""
    raw = ",".join(request.GET.getall("records"))
    if len(raw) > MAX_RECORDS_PARAM:
        raise json_error(HTTPBadRequest, "invalid records", "records is too long")
    pairs = []
    for item in (x.strip() for x in raw.split(",")):
        if not item:
            continue
        project, sep, label = item.rpartition("/") if "/" in item else ("", "", item)
        project = project.strip() or default_project
        if not project or not label.strip():
            raise json_error(HTTPBadRequest, "invalid records",
                             f"{item[:100]!r}: name each record as project/label")
        pairs.append((project, label.strip()))
    pairs = list(dict.fromkeys(pairs))
    if len(pairs) > MAX_COMPARE:
        raise json_error(HTTPBadRequest, "invalid records",
                         f"at most {MAX_COMPARE} records side by side")
    return pairs


def readable_project(request: Request, project_id: str) -> Project:
    """The project resource, if the caller may read it; HTTPForbidden otherwise."""
    project = request.root[project_id]
    if isinstance(project, InvalidName):
        raise json_error(HTTPBadRequest, "invalid records", project.problem)
    if not request.has_permission(VIEW, project):
        raise HTTPForbidden()
    return project


def compare_records(request: Request, here: Project | None) -> dict:
    pairs = requested_pairs(request, here.id if here is not None else None)
    projects = {pid: readable_project(request, pid) for pid in dict.fromkeys(p for p, _ in pairs)}
    docs, columns, missing = [], [], []
    for project_id, label in pairs:
        project = projects[project_id]
        stored = request.storage.get_record(project_id, label) if project.exists else None
        if stored is None:
            missing.append(f"{project_id}/{label}")
            continue
        docs.append(stored.document)
        columns.append((f"{project_id}/{label}", request.resource_url(project, label, "")))
    return {"project": here, "comparison": compare(docs) if len(docs) >= 2 else None,
            "missing": missing, "labels": [c[0] for c in columns], "docs": docs,
            "columns": columns, "records_value": ",".join(f"{p}/{lb}" for p, lb in pairs)}


@view_config(context=Project, name="compare", request_method="GET", permission=VIEW,
             request_param="records", renderer="compare.html")
def project_compare_records(context: Project, request: Request) -> dict:
    return compare_records(request, context)


@view_config(context=Root, name="compare", request_method="GET", permission=VIEW,
             renderer="compare.html")
def compare_across_projects(context: Root, request: Request) -> dict:
    return compare_records(request, None)
