"""Form handlers of the web interface: each POSTs (with a CSRF token), acts, and redirects.

Outcomes are told with a flash message on the page redirected to; the rules
(who may grant, which annotations a record takes) live in ``services``, which the
JSON API and the CLI use too; a refusal is flashed with its ``detail``.
"""

from __future__ import annotations

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from ..limits import record_limits
from ..permissions import CREATE, EDIT, MANAGE, VIEW
from ..records import ANNOTATION_FIELDS, tag_list
from ..resources import Permissions, Project, Record, Root
from ..services import grants
from ..services.errors import InvalidInput, NotFound, ServiceError
from ..services.projects import create_project
from ..services.records import delete_record, delete_records, save_annotations, tag_records
from ..storage.types import ANONYMOUS
from .history import actor


def flash(request: Request, message: str, queue: str = "info") -> None:
    request.session.flash(message, queue)


def _sentence(detail: str) -> str:
    return detail[:1].upper() + detail[1:] + "."


def _back(request: Request, resource, *elements, **query) -> HTTPSeeOther:
    return HTTPSeeOther(location=request.resource_url(resource, *elements, query=query or None))


# -- projects --------------------------------------------------------------------------


@view_config(context=Root, name="create", request_method="POST", permission=CREATE)
def create_project_form(context: Root, request: Request):
    project_id = request.POST.get("id", "").strip()
    try:
        create_project(request.storage, project_id, request.authenticated_userid,
                       request.POST.get("name", "").strip(),
                       request.POST.get("description", "").strip(), actor(request))
    except ServiceError as exc:
        flash(request, _sentence(exc.detail), "error")
        return _back(request, context)
    flash(request, f"Project {project_id!r} created. Point smt at it with: "
          f"smt init --store={request.resource_url(context)} {project_id}")
    return HTTPSeeOther(location=request.resource_url(context, project_id, ""))


# -- records ---------------------------------------------------------------------------


@view_config(context=Record, name="edit", request_method="POST", permission=EDIT)
def edit_record_form(context: Record, request: Request):
    stored = context.stored
    if stored is None:
        flash(request, f"There is no record {context.label!r}.", "error")
        return _back(request, context.project)
    if request.POST.get("revision") not in (None, stored.revision):
        flash(request, "Someone changed this record since you opened it; your edit was not "
              "saved. Here is the current version.", "error")
        return _back(request, context)
    changes = {k: request.POST[k] for k in ANNOTATION_FIELDS if k in request.POST}
    try:
        changed = save_annotations(request.storage, stored, changes,
                                   limits=record_limits(request), actor=actor(request))
    except InvalidInput as exc:
        flash(request, exc.message, "error")
        return _back(request, context)
    flash(request, "Saved." if changed else "Nothing to save: no field changed.")
    return _back(request, context)


@view_config(context=Record, name="delete", request_method="POST", permission=EDIT)
def delete_record_form(context: Record, request: Request):
    try:
        delete_record(request.storage, context.project.id, context.label, actor(request))
    except NotFound:
        flash(request, f"There is no record {context.label!r}.", "error")
    else:
        flash(request, f"Deleted record {context.label!r}.")
    return _back(request, context.project)


def _selected(request: Request) -> list[str]:
    return list(dict.fromkeys(x for x in request.POST.getall("label") if x))


@view_config(context=Project, name="bulk", request_method="POST", request_param="action=compare",
             permission=VIEW)
def bulk_compare(context: Project, request: Request):
    labels = _selected(request)
    if len(labels) < 2:
        flash(request, "Select two or more records to compare.", "error")
        return _back(request, context)
    return _back(request, context, "@@compare", labels=",".join(labels))


@view_config(context=Project, name="bulk", request_method="POST", request_param="action=tag",
             permission=EDIT)
@view_config(context=Project, name="bulk", request_method="POST", request_param="action=untag",
             permission=EDIT)
def bulk_tag(context: Project, request: Request):
    labels = _selected(request)
    try:
        tags = tag_list(request.POST.get("tag", ""))
    except InvalidInput:
        tags = []
    if not labels or not tags:
        flash(request, "Select records and type a tag.", "error")
        return _back(request, context)
    adding = request.POST["action"] == "tag"
    changed, refused = tag_records(request.storage, context.id, labels, tags, add=adding,
                                   limits=record_limits(request), actor=actor(request))
    for label, exc in refused.items():
        flash(request, f"{label}: {exc.message}", "error")
    verb = "Tagged" if adding else "Untagged"
    flash(request, f"{verb} {changed} record(s) {'with' if adding else 'from'} "
          f"{', '.join(tags)}.")
    return _back(request, context)


@view_config(context=Project, name="bulk", request_method="POST", request_param="action=delete",
             permission=EDIT)
def bulk_delete(context: Project, request: Request):
    labels = _selected(request)
    deleted = delete_records(request.storage, context.id, labels, actor(request))
    flash(request, f"Deleted {deleted} record(s)." if deleted else "Select records to delete.",
          "info" if deleted else "error")
    return _back(request, context)


# -- permissions -----------------------------------------------------------------------


def _permission_change(request: Request, context: Permissions, change, args: tuple,
                       done: str):
    """``change`` (grants.grant or grants.revoke) on this project; flash what happened."""
    try:
        change(request.storage, context.project.id, *args, actor=actor(request))
    except ServiceError as exc:
        flash(request, exc.detail, "error")
    else:
        flash(request, done)
    return _back(request, context)


@view_config(context=Permissions, name="grant", request_method="POST", permission=MANAGE)
def grant_form(context: Permissions, request: Request):
    user = request.POST.get("user", "").strip()
    role = request.POST.get("role", "write")
    return _permission_change(request, context, grants.grant, (user, role),
                              f"{user} now has the {role} role.")


@view_config(context=Permissions, name="revoke", request_method="POST", permission=MANAGE)
def revoke_form(context: Permissions, request: Request):
    user = request.POST.get("user", "").strip()
    return _permission_change(request, context, grants.revoke, (user,),
                              f"{user} no longer has access.")


@view_config(context=Permissions, name="visibility", request_method="POST", permission=MANAGE)
def visibility_form(context: Permissions, request: Request):
    public = request.POST.get("public") == "1"
    if public == context.project.is_public:
        return _back(request, context)
    if public:
        return _permission_change(
            request, context, grants.grant, (ANONYMOUS, "read"),
            "The project is public: anyone can read it, without logging in.")
    return _permission_change(
        request, context, grants.revoke, (ANONYMOUS,),
        "The project is private: only the people listed can read it.")
