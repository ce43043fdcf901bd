"""Views of the project list (``/``), a project, and its tag sets."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPBadRequest, HTTPNoContent
from pyramid.request import Request
from pyramid.view import view_config

from ..auth.external import group_principal
from ..documents import document_text, project_document, project_list_entry
from ..limits import Limits, record_limits
from ..negotiation import check_body_type
from ..permissions import EDIT, MANAGE, VIEW
from ..records import whole_number
from ..resources import Project, Root, TagSet
from ..services import projects, tokens
from ..services.errors import InvalidInput
from ..services.records import delete_tagged
from ..storage.types import ANONYMOUS, RecordQuery
from . import (
    check_if_none_match,
    json_error,
    read_json,
    render_json,
    representation,
    require_project,
)
from .history import actor

MAX_PAGE = 100_000


def visible_projects(request: Request):
    identity = request.identity
    if identity and identity.is_admin:
        principals = None
    elif identity:
        # group:NAME grants are stored under that name: list those projects too
        principals = [identity.username, ANONYMOUS, *map(group_principal, identity.groups)]
    else:
        principals = [ANONYMOUS]
    projects = request.storage.list_projects(principals)
    token = identity.token if identity else None
    if token is not None and token.projects:  # a token limited to projects lists only those
        allowed = tokens.visible(token, [p.id for p in projects])
        projects = [p for p in projects if p.id in allowed]
    return projects


@view_config(context=Root, request_method="GET", permission=VIEW, representation="json")
def project_list(context, request):
    entries = [project_list_entry(request, p) for p in visible_projects(request)]
    text, revision = document_text(entries)
    return render_json(request, representation(request, context), revision=revision,
                       body=text)


def parse_tags(request: Request) -> list[str] | None:
    """``?tags=a,b`` as a list; 400 beyond the record limits (``sumatra.max_tags`` tags of
    ``sumatra.max_tag_length`` characters): a filter no record can need, and a page
    that would grow with it."""
    raw = request.GET.get("tags")
    if raw is None:
        return None
    return check_filter_tags([t.strip() for t in raw.split(",") if t.strip()],
                             record_limits(request))


def check_filter_tags(tags: list[str], limits: Limits) -> list[str]:
    """``tags`` (once each) if a record could match them all; else 400 naming ``tags``."""
    tags = list(dict.fromkeys(tags))
    if len(tags) > limits.max_tags:
        raise json_error(HTTPBadRequest, "invalid tags",
                         f"a tag filter may name at most {limits.max_tags} tags, not {len(tags)}")
    if any(len(t) > limits.max_tag_length for t in tags):
        raise json_error(HTTPBadRequest, "invalid tags",
                         f"a tag is at most {limits.max_tag_length} characters long")
    return tags


def parse_limit(request: Request) -> int | None:
    raw = request.GET.get("limit")
    if raw is None:
        return None
    limit = whole_number(raw, MAX_PAGE)
    if limit is None:
        raise json_error(HTTPBadRequest, "invalid limit",
                         f"limit must be a whole number from 1 to {MAX_PAGE}")
    return limit


def _project_response(request: Request, context, project: Project, tags: list[str] | None,
                      tags_given: str | None, where=None):
    require_project(project)
    query = RecordQuery(tags=tags, limit=parse_limit(request), cursor=request.GET.get("cursor"),
                        labels_only=True, count_total=where is None)  # the document has no total
    try:
        page = request.storage.search_records(project.id, query, where)
    except InvalidInput:  # a query too costly without a limit: 400 naming q
        raise
    except ValueError as exc:  # a malformed cursor
        raise json_error(HTTPBadRequest, "invalid cursor", str(exc)) from None
    doc = project_document(request, project, page.joined_labels(), tags_given)
    if page.next_cursor:
        doc["next"] = request.resource_url(context, query={
            **request.GET, "cursor": page.next_cursor})
    text, revision = document_text(doc)
    return render_json(request, representation(request, context), revision=revision,
                       body=text)


@view_config(context=Project, request_method="GET", permission=VIEW, representation="json")
def get_project(context: Project, request):
    where = None
    if "q" in request.GET or "expand" in request.GET:  # the query language (views/search.py)
        from .search import expanded_page, search_where

        if "expand" in request.GET:
            return expanded_page(context, request)
        where = search_where(request)
    return _project_response(request, context, context, parse_tags(request),
                             request.GET.get("tags"), where)


@view_config(context=Project, request_method="PUT", permission=EDIT)
def put_project(context: Project, request):
    check_body_type(request, "project")
    body = read_json(request)
    if not isinstance(body, dict):
        raise json_error(HTTPBadRequest, "invalid body", "a project must be a JSON object")
    # A project has no revision to name; If-None-Match: * makes the PUT create-only.
    check_if_none_match(request, "exists" if context.exists else None)
    if context.exists:
        projects.update_project(request.storage, context.info, body, actor(request))
        request.response.status_int = 200
    else:
        projects.create_project(request.storage, context.id, request.authenticated_userid,
                                body.get("name"), body.get("description"), actor(request))
        request.response.status_int = 201
    context.__dict__.pop("info", None)  # re-read after the write
    request.response.location = request.resource_url(context)
    return _project_json(request, context)


def _project_json(request: Request, context: Project):
    info = context.info
    request.response.content_type = "application/json"
    request.response.charset = "utf-8"
    request.response.json_body = {"id": info.id, "name": info.name,
                                  "description": info.description}
    return request.response


@view_config(context=Project, request_method="DELETE", permission=MANAGE)
def delete_project(context: Project, request):
    require_project(context)
    projects.delete_project(request.storage, context.id, actor(request))
    return HTTPNoContent()


@view_config(context=TagSet, request_method="GET", permission=VIEW, representation="json")
def get_tagset(context: TagSet, request):
    where = None
    if "q" in request.GET:  # the query language, within the tag (as on the project)
        from .search import search_where

        where = search_where(request)
    return _project_response(request, context, context.project, [context.tag], context.tag,
                             where)


@view_config(context=TagSet, request_method="DELETE", permission=EDIT)
def delete_tagset(context: TagSet, request):
    require_project(context.project)
    count = delete_tagged(request.storage, context.project.id, context.tag, actor(request))
    request.response.content_type = "text/plain"
    request.response.charset = "utf-8"
    request.response.text = str(count)
    return request.response
