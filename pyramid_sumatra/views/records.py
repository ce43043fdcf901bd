"""Views of one record: ``/<project>/<label>/`` and ``/<project>/last/``."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPNoContent, HTTPNotFound
from pyramid.view import view_config, view_defaults

from ..documents import record_text
from ..limits import record_limits
from ..negotiation import check_body_type, offers
from ..permissions import EDIT, VIEW
from ..resources import Last, Record
from ..services.records import delete_record, save_record
from . import (
    check_if_match,
    check_if_none_match,
    json_error,
    read_json,
    render_json,
    representation,
    require_project,
)
from .history import actor


def _require(context) -> None:
    require_project(context.project)
    if context.stored is None:
        what = ("no records" if isinstance(context, Last)
                else f"no record {context.__name__!r}")
        raise json_error(HTTPNotFound, "not found", f"project {context.project.id!r} has {what}")


@view_config(context=Record, request_method="GET", permission=VIEW, representation="json")
@view_config(context=Last, request_method="GET", permission=VIEW, representation="json")
def get_record(context, request):
    _require(context)
    rep = representation(request, context)
    stored = context.stored
    return render_json(request, rep, revision=stored.revision, body=record_text(stored, rep))


@view_defaults(context=Record, permission=EDIT)
class RecordWrites:
    def __init__(self, context: Record, request):
        self.context, self.request = context, request

    @view_config(request_method="PUT")
    def put(self):
        context, request = self.context, self.request
        media_version = check_body_type(request, "record")
        incoming = read_json(request)
        stored = context.stored
        check_if_match(request, stored.revision if stored else None)
        check_if_none_match(request, stored.revision if stored else None)
        record, created = save_record(
            request.storage, context.project.id, context.label, incoming, media_version,
            user=request.authenticated_userid, limits=record_limits(request), stored=stored,
            actor=actor(self.request))
        rep = representation(request, context)
        if rep is None or rep.is_html:
            rep = offers("record")[0]
        request.response.location = request.resource_url(context)
        return render_json(request, rep, revision=record.revision,
                           status=201 if created else 200,
                           body=record_text(record, rep))

    @view_config(request_method="DELETE")
    def delete(self):
        _require(self.context)
        check_if_match(self.request, self.context.stored.revision)
        delete_record(self.request.storage, self.context.project.id, self.context.label,
                      actor(self.request))
        return HTTPNoContent()
