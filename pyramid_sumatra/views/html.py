"""Plain HTML pages for browsers, on the same contexts as the JSON views."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPForbidden, HTTPNotFound
from pyramid.request import Request
from pyramid.view import view_config

from ..permissions import VIEW
from ..resources import Last, Permissions, Project, Record, Root, TagSet
from ..types import RecordQuery
from . import json_error
from .projects import parse_tags, visible_projects

PAGE_SIZE = 100


@view_config(context=Root, request_method="GET", permission=VIEW, representation="html",
             renderer="projects.html")
def project_list_page(context: Root, request: Request):
    return {"projects": visible_projects(request)}


def _records_page(request: Request, project: Project, tags: list[str] | None) -> dict:
    if not project.exists:
        raise json_error(HTTPNotFound, "not found", f"no project {project.id!r}")
    page = request.storage.query_records(project.id, RecordQuery(
        tags=tags, limit=PAGE_SIZE, cursor=request.GET.get("cursor")))
    return {"project": project, "page": page, "tags": tags}


@view_config(context=Project, request_method="GET", permission=VIEW, representation="html",
             renderer="project.html")
def project_page(context: Project, request: Request):
    return _records_page(request, context, parse_tags(request))


@view_config(context=TagSet, request_method="GET", permission=VIEW, representation="html",
             renderer="project.html")
def tagset_page(context: TagSet, request: Request):
    return _records_page(request, context.project, [context.tag])


@view_config(context=Record, request_method="GET", permission=VIEW, representation="html",
             renderer="record.html")
@view_config(context=Last, request_method="GET", permission=VIEW, representation="html",
             renderer="record.html")
def record_page(context, request: Request):
    if context.stored is None:
        raise json_error(HTTPNotFound, "not found", "no such record")
    return {"project": context.project, "stored": context.stored,
            "record": context.stored.document}


@view_config(context=Permissions, request_method="GET", permission=VIEW, representation="html",
             renderer="permissions.html")
def permissions_page(context: Permissions, request: Request):
    if not context.project.exists:
        raise json_error(HTTPNotFound, "not found", f"no project {context.project.id!r}")
    if request.authenticated_userid is None:
        raise HTTPForbidden()
    return {"project": context.project, "grants": sorted(context.project.grants.items())}
