"""Form handlers of the web interface: each POSTs (with a CSRF token), acts, and redirects.

Outcomes are told with a flash message on the page redirected to; the rules
(who may grant, which annotations a record takes) live in shared functions the
JSON API uses too.
"""

from __future__ import annotations

from pyramid.httpexceptions import HTTPClientError, HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from ..limits import check_record, record_limits
from ..permissions import CREATE, EDIT, MANAGE, VIEW
from ..projects import create_project
from ..records import (
    ANNOTATION_FIELDS,
    InvalidRecord,
    build_stored_record,
    edit_annotations,
    name_problem,
    tag_list,
)
from ..resources import Permissions, Project, Record, Root
from ..storage.types import ANONYMOUS, StoredRecord
from .permissions import apply_grant, apply_revoke


def flash(request: Request, message: str, queue: str = "info") -> None:
    request.session.flash(message, queue)


def _detail(exc: HTTPClientError) -> str:
    body = exc.json_body if exc.content_type == "application/json" and exc.body else {}
    return body.get("detail") or exc.detail or exc.explanation


def _back(request: Request, resource, *elements, **query) -> HTTPSeeOther:
    return HTTPSeeOther(location=request.resource_url(resource, *elements, query=query or None))


# -- projects --------------------------------------------------------------------------


@view_config(context=Root, name="create", request_method="POST", permission=CREATE)
def create_project_form(context: Root, request: Request):
    project_id = request.POST.get("id", "").strip()
    problem = name_problem(project_id, "project id")
    if problem:
        flash(request, problem.capitalize() + ".", "error")
        return _back(request, context)
    if request.storage.get_project(project_id) is not None:
        flash(request, f"A project {project_id!r} already exists.", "error")
        return _back(request, context)
    create_project(request.storage, project_id, request.authenticated_userid,
                   request.POST.get("name", "").strip(),
                   request.POST.get("description", "").strip())
    flash(request, f"Project {project_id!r} created. Point smt at it with: "
          f"smt init --store={request.resource_url(context)} {project_id}")
    return HTTPSeeOther(location=request.resource_url(context, project_id, ""))


# -- records ---------------------------------------------------------------------------


def save_annotations(request: Request, stored: StoredRecord, changes: dict) -> bool:
    """Store the record with new reason/outcome/tags; True if anything changed.

    Raises InvalidRecord, as a PUT would, for tags over the configured limits.
    """
    doc = edit_annotations(stored.document, changes)
    check_record(doc, record_limits(request))
    record = build_stored_record(stored.project_id, doc)
    if record.body == stored.body:
        return False
    request.storage.put_record(record, create=False)
    return True


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
        changed = save_annotations(request, stored, changes)
    except InvalidRecord as exc:
        flash(request, exc.message, "error")
        return _back(request, context)
    flash(request, "Saved." if changed else "Nothing to save: no field changed.")
    return _back(request, context)


@view_config(context=Record, name="delete", request_method="POST", permission=EDIT)
def delete_record_form(context: Record, request: Request):
    if request.storage.delete_record(context.project.id, context.label):
        flash(request, f"Deleted record {context.label!r}.")
    else:
        flash(request, f"There is no record {context.label!r}.", "error")
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
    except InvalidRecord:
        tags = []
    if not labels or not tags:
        flash(request, "Select records and type a tag.", "error")
        return _back(request, context)
    adding = request.POST["action"] == "tag"
    changed = 0
    for label in labels:
        stored = request.storage.get_record(context.id, label)
        if stored is None:
            continue
        current = stored.tags
        new = list(dict.fromkeys(current + tags)) if adding else [
            t for t in current if t not in tags]
        try:
            changed += save_annotations(request, stored, {"tags": new})
        except InvalidRecord as exc:
            flash(request, f"{label}: {exc.message}", "error")
    verb = "Tagged" if adding else "Untagged"
    flash(request, f"{verb} {changed} record(s) {'with' if adding else 'from'} "
          f"{', '.join(tags)}.")
    return _back(request, context)


@view_config(context=Project, name="bulk", request_method="POST", request_param="action=delete",
             permission=EDIT)
def bulk_delete(context: Project, request: Request):
    labels = _selected(request)
    deleted = sum(request.storage.delete_record(context.id, label) for label in labels)
    flash(request, f"Deleted {deleted} record(s)." if deleted else "Select records to delete.",
          "info" if deleted else "error")
    return _back(request, context)


# -- permissions -----------------------------------------------------------------------


def _permission_change(request: Request, context: Permissions, change, done: str):
    try:
        change()
    except HTTPClientError as exc:
        flash(request, _detail(exc), "error")
    else:
        flash(request, done)
    return _back(request, context)


@view_config(context=Permissions, name="grant", request_method="POST", permission=MANAGE)
def grant_form(context: Permissions, request: Request):
    user = request.POST.get("user", "").strip()
    role = request.POST.get("role", "write")
    return _permission_change(request, context, lambda: apply_grant(request, context, user, role),
                              f"{user} now has the {role} role.")


@view_config(context=Permissions, name="revoke", request_method="POST", permission=MANAGE)
def revoke_form(context: Permissions, request: Request):
    user = request.POST.get("user", "").strip()
    return _permission_change(request, context, lambda: apply_revoke(request, context, user),
                              f"{user} no longer has access.")


@view_config(context=Permissions, name="visibility", request_method="POST", permission=MANAGE)
def visibility_form(context: Permissions, request: Request):
    public = request.POST.get("public") == "1"
    if public == context.project.is_public:
        return _back(request, context)
    if public:
        return _permission_change(
            request, context, lambda: apply_grant(request, context, ANONYMOUS, "read"),
            "The project is public: anyone can read it, without logging in.")
    return _permission_change(
        request, context, lambda: apply_revoke(request, context, ANONYMOUS),
        "The project is private: only the people listed can read it.")
