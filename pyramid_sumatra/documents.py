"""The JSON documents of PROTOCOL.md, built from storage values."""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote

from pyramid.request import Request

from .negotiation import Representation
from .records import revision_of, to_v3
from .resources import Project
from .types import ANONYMOUS, ProjectInfo, StoredRecord


def record_text(stored: StoredRecord, rep: Representation) -> str:
    """The record body in a representation; v4 and plain JSON are the stored text itself."""
    if rep.is_v3:
        return json.dumps(to_v3(stored.document), ensure_ascii=False)
    assert stored.body is not None
    return stored.body


def project_url(request: Request, project_id: str) -> str:
    return f"{request.resource_url(request.root)}{quote(project_id, safe='')}/"


def project_list_entry(request: Request, project: ProjectInfo) -> dict:
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "uri": project_url(request, project.id),
        "last_updated": project.last_updated,
    }


def record_urls(request: Request, project: Project, labels: Iterable[str]) -> list[str]:
    base = request.resource_url(project)  # one URL computation, then concatenation
    return [f"{base}{quote(label, safe='')}/" for label in labels]


def project_document(request: Request, project: Project, labels: Iterable[str],
                     tags: list[str] | None) -> dict:
    info = project.info
    assert info is not None
    doc = {
        "id": info.id,
        "name": info.name,
        "description": info.description,
        "records": record_urls(request, project, labels),
        "tags": tags,
        "user": request.authenticated_userid or ANONYMOUS,
    }
    if request.authenticated_userid:
        doc["access"] = sorted(project.grants)
    return doc


def document_text(doc: dict) -> tuple[str, str]:
    """Serialise a generated document; return (text, revision)."""
    text = json.dumps(doc, ensure_ascii=False)
    return text, revision_of(text)
