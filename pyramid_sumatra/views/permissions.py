"""``/<project>/permissions/``: who may access a project; grant and revoke."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPBadRequest, HTTPForbidden, HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from ..documents import document_text
from ..negotiation import offers
from ..permissions import DEFAULT_ROLE, MANAGE, VIEW
from ..resources import Permissions
from ..services import grants
from . import json_error, read_json, render_json, representation, require_project
from .history import actor


def permissions_document(context: Permissions) -> dict:
    info = context.project.info
    grants = context.project.grants
    return {"id": info.id, "name": info.name, "access": sorted(grants),
            "roles": dict(sorted(grants.items()))}


@view_config(context=Permissions, request_method="GET", permission=VIEW, representation="json")
def get_permissions(context: Permissions, request: Request):
    require_project(context.project)
    if request.authenticated_userid is None:
        raise HTTPForbidden()  # usernames never reach anonymous callers (becomes 401)
    text, revision = document_text(permissions_document(context))
    return render_json(request, representation(request, context), revision=revision,
                       body=text)


def _grant_request(request: Request) -> dict:
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return dict(request.POST)
    body = read_json(request)
    if not isinstance(body, dict):
        raise json_error(HTTPBadRequest, "invalid body", 'send {"user": NAME, "role": ROLE}')
    return body


def _done(request: Request, context: Permissions):
    rep = representation(request, context)
    if (rep is not None and rep.is_html) or request.identity.via == "session":
        return HTTPSeeOther(location=request.resource_url(context.project))  # a browser
    context.project.__dict__.pop("grants", None)
    text, revision = document_text(permissions_document(context))
    return render_json(request, representation(request, context) or offers("project")[0],
                       revision=revision, body=text)


@view_config(context=Permissions, request_method="POST", permission=MANAGE)
def grant(context: Permissions, request: Request):
    require_project(context.project)
    data = _grant_request(request)
    grants.grant(request.storage, context.project.id, data.get("user"),
                 data.get("role") or DEFAULT_ROLE, actor(request))
    return _done(request, context)


@view_config(context=Permissions, request_method="DELETE", permission=MANAGE)
def revoke(context: Permissions, request: Request):
    require_project(context.project)
    user = request.GET.get("user")
    if not user:
        raise json_error(HTTPBadRequest, "invalid user", "name the user: ?user=NAME")
    grants.revoke(request.storage, context.project.id, user, actor(request))
    return _done(request, context)
