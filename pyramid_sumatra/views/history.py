"""History and trash: ``@@history`` of a record and of a project, ``@@trash`` of a
project, and ``/_trash`` (trashed projects). JSON and HTML on the same names.

The rules (who may restore, what a restore does) are in ``services.trash`` and
``services.history``; these views parse, check the permission and render.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from pyramid.httpexceptions import (
    HTTPBadRequest,
    HTTPForbidden,
    HTTPNotFound,
    HTTPSeeOther,
)
from pyramid.request import Request
from pyramid.view import view_config

from ..negotiation import negotiate
from ..permissions import EDIT, MANAGE, VIEW
from ..records import name_problem, parse_json_body
from ..resources import Project, Record
from ..services import history, trash
from ..services.errors import InvalidInput, ServiceError
from ..services.history import Actor
from . import http_error, json_error, require_project

_STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}")
_REVISION = re.compile(r"[0-9A-Za-z_-]{1,64}")
_ACTIONS = ("restore", "purge")


def actor(request: Request) -> Actor:
    """Who is acting: the user, and the API token's name when one was used."""
    identity = request.identity
    if identity is None:
        return Actor()
    return Actor(identity.username, identity.token.name if identity.token else "")


def wants_json(request: Request, context) -> bool:
    rep = negotiate(request, getattr(context, "kind", "project"))
    return rep is not None and not rep.is_html


def _unavailable(what: str) -> Exception:
    return json_error(HTTPNotFound, "not available",
                      f"this server's storage backend keeps no {what}")


def _page_args(request: Request) -> tuple[int, str | None]:
    try:
        return history.parse_page(request.GET.get("limit"), request.GET.get("cursor"))
    except InvalidInput as exc:
        raise http_error(exc) from None


def _for_caller(request: Request, entries):
    """Usernames never reach anonymous callers (a public project's history)."""
    if request.authenticated_userid is not None:
        return entries
    return [dataclasses.replace(e, user="", token="") for e in entries]


def _entries_json(request: Request, context, entries, cursor: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"entries": [history.as_json(e) for e in _for_caller(request,
                                                                                entries)]}
    if cursor:
        doc["next"] = request.resource_url(context, "@@history", query={
            **{k: v for k, v in request.GET.items() if k != "cursor"}, "cursor": cursor})
    return doc


def entry_rows(entries) -> list[dict[str, Any]]:
    """Entries for a page: each change as (field, old text, new text)."""
    rows = []
    for entry in entries:
        changes = [(key, history.readable(c["old"]) if "old" in c else None,
                    history.readable(c["new"]) if "new" in c else None)
                   for key, c in sorted(entry.changes.items())]
        rows.append({"entry": entry, "changes": changes})
    return rows


# -- a record's history --------------------------------------------------------------------


def _trashed_document(request: Request, project_id: str, label: str):
    """The newest trashed version of ``label`` (document, revision), or (None, "")."""
    for item in request.storage.list_trash(project_id):
        if item.label == label:
            full = request.storage.get_trash(project_id, label, item.deleted_at)
            if full is not None and full.body:
                return json.loads(full.body), full.revision
    return None, ""


@view_config(context=Record, name="history", request_method="GET", permission=VIEW)
def record_history(context: Record, request: Request):
    require_project(context.project)
    storage = request.storage
    project_id, label = context.project.id, context.label
    as_json = wants_json(request, context)
    if not storage.history_available:
        if as_json:
            raise _unavailable("record history")
        return _render(request, "history.html", {
            "project": context.project, "label": label, "available": False, "rows": [],
            "next": None, "scope": "record"})
    wanted = request.GET.get("revision")
    if wanted is not None:
        if not _REVISION.fullmatch(wanted):
            raise json_error(HTTPBadRequest, "invalid revision",
                             "revision is the revision (ETag) of an earlier version, "
                             "at most 64 letters and digits")
        trashed = context.stored is None
        if not trashed:
            current, revision = context.stored.document, context.stored.revision
        else:
            current, revision = _trashed_document(request, project_id, label)
        try:
            doc = history.revision(storage, project_id, label, wanted, current, revision,
                                   trashed=trashed)
        except ServiceError as exc:
            raise http_error(exc) from None
        request.response.content_type = "application/json"
        request.response.json_body = doc
        return request.response
    limit, cursor = _page_args(request)
    entries, next_cursor = history.page(storage, project_id, label, limit, cursor)
    if not entries and context.stored is None and cursor is None:
        raise json_error(HTTPNotFound, "not found",
                         f"project {project_id!r} has no record {label!r} and no history of one")
    if as_json:
        doc = {"project": project_id, "label": label, **_entries_json(
            request, context, entries, next_cursor)}
        request.response.content_type = "application/json"
        request.response.json_body = doc
        return request.response
    return _render(request, "history.html", {
        "project": context.project, "label": label, "available": True,
        "rows": entry_rows(_for_caller(request, entries)), "scope": "record",
        "exists": context.stored is not None,
        "next": request.resource_url(context, "@@history", query={"cursor": next_cursor})
        if next_cursor else None})


def recent_history(request: Request, project_id: str, label: str, limit: int = 10):
    """The newest entries for the record page (None: the backend keeps no history)."""
    if not request.storage.history_available:
        return None
    return entry_rows(_for_caller(request, request.storage.list_history(project_id, label,
                                                                        limit)))


# -- a project's history (its admins) --------------------------------------------------------


@view_config(context=Project, name="history", request_method="GET", permission=MANAGE)
def project_history(context: Project, request: Request):
    require_project(context)
    as_json = wants_json(request, context)
    if not request.storage.history_available:
        if as_json:
            raise _unavailable("project history")
        return _render(request, "history.html", {"project": context, "label": "",
                       "available": False, "rows": [], "next": None, "scope": "project"})
    limit, cursor = _page_args(request)
    entries, next_cursor = history.page(request.storage, context.id, "", limit, cursor)
    if as_json:
        request.response.content_type = "application/json"
        request.response.json_body = {"project": context.id, **_entries_json(
            request, context, entries, next_cursor)}
        return request.response
    return _render(request, "history.html", {
        "project": context, "label": "", "available": True, "rows": entry_rows(entries),
        "scope": "project",
        "next": request.resource_url(context, "@@history", query={"cursor": next_cursor})
        if next_cursor else None})


# -- a project's trash -------------------------------------------------------------------------


def item_json(item) -> dict[str, Any]:
    doc = {"label": item.label, "deleted_at": item.deleted_at, "deleted_by": item.deleted_by,
           "timestamp": item.timestamp}
    if item.label:
        doc["revision"] = item.revision
    return doc


@view_config(context=Project, name="trash", request_method="GET", permission=EDIT)
def trash_page(context: Project, request: Request):
    require_project(context)
    storage = request.storage
    as_json = wants_json(request, context)
    if not storage.trash_available:
        if as_json:
            raise _unavailable("trash")
        return _render(request, "trash.html", {"project": context, "available": False,
                                               "items": [], "can_manage": False})
    items = [i for i in storage.list_trash(context.id, limit=trash.LIST_LIMIT + 1) if i.label]
    if as_json:
        request.response.content_type = "application/json"
        request.response.json_body = {
            "project": context.id, "records": [item_json(i) for i in items[:trash.LIST_LIMIT]],
            "truncated": len(items) > trash.LIST_LIMIT}
        return request.response
    return _render(request, "trash.html", {
        "project": context, "available": True, "items": items[:trash.LIST_LIMIT],
        "truncated": len(items) > trash.LIST_LIMIT,
        "can_manage": request.has_permission(MANAGE, context)})


def _form(request: Request) -> dict[str, Any]:
    """The POSTed fields: a form, or a JSON object (API clients)."""
    if (request.content_type or "").endswith("json"):
        try:
            body = parse_json_body(request.body)
        except InvalidInput as exc:
            raise http_error(exc) from None
        if not isinstance(body, dict):
            raise json_error(HTTPBadRequest, "invalid body", "send a JSON object")
        return body
    return dict(request.POST.items())


def _field(data: dict, name: str, pattern: re.Pattern | None = None,
           choices: tuple[str, ...] | None = None) -> str:
    value = data.get(name)
    ok = isinstance(value, str) and len(value) <= 100 and (
        (pattern is None or pattern.fullmatch(value)) and (choices is None or value in choices))
    if not ok:
        hint = f"one of {', '.join(choices)}" if choices else "see the trash listing"
        raise json_error(HTTPBadRequest, f"invalid {name}", f"{name} is missing or wrong: "
                         f"{hint}")
    return value  # type: ignore[return-value]


def _done(request: Request, as_json: bool, location: str, message: str, result: dict):
    if as_json:
        request.response.content_type = "application/json"
        request.response.json_body = result
        return request.response
    request.session.flash(message, "info")
    return HTTPSeeOther(location=location)


def _refused(request: Request, as_json: bool, location: str, exc: ServiceError):
    if as_json:
        raise http_error(exc)
    request.session.flash(exc.detail[:1].upper() + exc.detail[1:] + ".", "error")
    return HTTPSeeOther(location=location)


@view_config(context=Project, name="trash", request_method="POST", permission=EDIT)
def trash_action(context: Project, request: Request):
    """Restore (write role) or purge (admin) one trashed record."""
    require_project(context)
    if not request.storage.trash_available:
        raise _unavailable("trash")
    data = _form(request)
    action = _field(data, "action", choices=_ACTIONS)
    label = _field(data, "label")
    if name_problem(label, "label"):
        raise json_error(HTTPBadRequest, "invalid label", name_problem(label, "label"))
    deleted_at = _field(data, "deleted_at", _STAMP)
    as_json = not request.POST or wants_json(request, context)
    back = request.resource_url(context, "@@trash")
    try:
        if action == "restore":
            trash.restore_record(request.storage, context.id, label, deleted_at,
                                 actor(request))
            return _done(request, as_json, back, f"Restored record {label!r}.",
                         {"restored": label, "url": request.resource_url(context, label, "")})
        if not request.has_permission(MANAGE, context):
            raise HTTPForbidden(json_body={"error": "forbidden",
                                           "detail": "purging takes the admin role"})
        trash.purge(request.storage, context.id, label, deleted_at)
        return _done(request, as_json, back, f"Purged record {label!r} for good.",
                     {"purged": label})
    except ServiceError as exc:
        return _refused(request, as_json, back, exc)


# -- trashed projects: /_trash -----------------------------------------------------------------


def _server_trash_user(request: Request) -> tuple[str, bool]:
    identity = request.identity
    if identity is None:
        from ..security import unauthorized
        if wants_json(request, request.root):
            raise unauthorized("log in to see the projects you deleted")
        raise HTTPSeeOther(location=request.route_url("login", _query={"next": request.url}))
    return identity.username, identity.is_admin


def _project_item(request: Request, project_id: str, deleted_at: str):
    username, is_admin = _server_trash_user(request)
    item = request.storage.get_trash(project_id, "", deleted_at)
    if item is None or not (is_admin or username in trash.admins_of(item)):
        return None
    return item


@view_config(route_name="server_trash", request_method="GET")
def server_trash(request: Request):
    username, is_admin = _server_trash_user(request)
    as_json = wants_json(request, request.root)
    storage = request.storage
    token = request.identity.token
    if token is not None and not token.scope == "write":
        raise HTTPForbidden(json_body={"error": "forbidden", "detail": "read-only token"})
    if not storage.trash_available:
        if as_json:
            raise _unavailable("trash")
        return _render(request, "server_trash.html", {"available": False, "items": []})
    items = trash.trashed_projects(storage, None if is_admin else username)
    if as_json:
        request.response.content_type = "application/json"
        request.response.json_body = {"projects": [
            {"id": i.project_id, "deleted_at": i.deleted_at, "deleted_by": i.deleted_by,
             "last_updated": i.timestamp, "admins": trash.admins_of(i)} for i in items]}
        return request.response
    return _render(request, "server_trash.html", {"available": True, "items": items})


@view_config(route_name="server_trash", request_method="POST")
def server_trash_action(request: Request):
    """Restore or purge a trashed project: a server admin, or one of its admins."""
    _server_trash_user(request)
    if request.identity.token is not None:  # like deleting a project: the password only
        raise HTTPForbidden(json_body={"error": "forbidden",
                                       "detail": "API tokens cannot restore or purge projects"})
    if not request.storage.trash_available:
        raise _unavailable("trash")
    data = _form(request)
    action = _field(data, "action", choices=_ACTIONS)
    project_id = _field(data, "project")
    if name_problem(project_id, "project id"):
        raise json_error(HTTPBadRequest, "invalid project", name_problem(project_id,
                                                                          "project id"))
    deleted_at = _field(data, "deleted_at", _STAMP)
    as_json = not request.POST or wants_json(request, request.root)
    back = request.route_url("server_trash")
    if _project_item(request, project_id, deleted_at) is None:
        raise json_error(HTTPNotFound, "not found",
                         f"no project {project_id!r} deleted at {deleted_at!r} that you "
                         "administered")
    try:
        if action == "restore":
            trash.restore_project(request.storage, project_id, deleted_at, actor(request))
            return _done(request, as_json, request.resource_url(request.root, project_id, ""),
                         f"Restored project {project_id!r}.", {"restored": project_id})
        trash.purge(request.storage, project_id, "", deleted_at)
        return _done(request, as_json, back, f"Purged project {project_id!r} for good.",
                     {"purged": project_id})
    except ServiceError as exc:
        return _refused(request, as_json, back, exc)


def _render(request: Request, template: str, values: dict[str, Any]):
    from pyramid.renderers import render_to_response

    return render_to_response(template, values, request=request)


def includeme(config) -> None:
    config.add_route("server_trash", "/_trash")
