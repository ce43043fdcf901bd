"""How records, indexes, projects and users look on disk.

A record file is a small readable envelope: the index fields and revision,
the flattened parameters (``StoredRecord.parameters``, so that queries and plots never
parse a body; files written before have none and read as None), then the document
itself, indented so that ``diff`` shows what changed. When the body cannot be
reproduced from the parsed document (it was not in canonical compact form), the exact
text is kept in ``body`` instead.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from pyramid_sumatra.storage.types import ProjectInfo, StoredRecord, UserInfo

from .files import dumps_readable

RECORD_FORMAT = "sumatra-filesystem-record/1"
INDEX_FORMAT = "sumatra-filesystem-index/1"


class CorruptFile(ValueError):
    """A file under the root that is not what the backend wrote."""


def _canonical(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def index_entry(record: StoredRecord) -> dict[str, Any]:
    return {"timestamp": record.timestamp, "tags": list(record.tags), "user": record.user,
            "main_file": record.main_file, "version": record.version,
            "executable": record.executable, "reason": record.reason,
            "outcome": record.outcome, "duration": record.duration,
            "revision": record.revision}


def record_text(record: StoredRecord) -> str:
    envelope: dict[str, Any] = {"format": RECORD_FORMAT, "project_id": record.project_id,
                                "label": record.label, "index": index_entry(record)}
    if record.parameters is not None:
        envelope["parameters"] = record.parameters
    try:
        doc = json.loads(record.body or "")
        exact = _canonical(doc) == record.body
    except ValueError:
        exact = False
    if exact:
        envelope["document"] = doc
    else:
        envelope["body"] = record.body
    return dumps_readable(envelope)


def parse_record(text: str, project_id: str, label: str) -> tuple[StoredRecord, dict]:
    """The record of a file's text, with its index entry; CorruptFile if it is not one."""
    try:
        envelope = json.loads(text)
        entry = envelope["index"]
        if envelope.get("format") != RECORD_FORMAT or envelope.get("label") != label:
            raise CorruptFile(f"record file of {project_id}/{label} names another record")
        body = envelope["body"] if "body" in envelope else _canonical(envelope["document"])
        record = to_record(project_id, label, entry, body)
        parameters = envelope.get("parameters")
        record.parameters = parameters if isinstance(parameters, dict) else None
        return record, entry
    except (ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, CorruptFile):
            raise
        raise CorruptFile(f"record file of {project_id}/{label} is unreadable: {exc}") from None


def to_record(project_id: str, label: str, entry: dict, body: str | None) -> StoredRecord:
    return StoredRecord(
        project_id=project_id, label=label, body=body, revision=entry["revision"],
        timestamp=entry["timestamp"], tags=sorted(entry["tags"]), user=entry["user"],
        main_file=entry["main_file"], version=entry["version"],
        executable=entry["executable"], reason=entry["reason"], outcome=entry["outcome"],
        duration=entry["duration"])


def index_line(label: str, entry: dict) -> str:
    return (f"{json.dumps(label, ensure_ascii=False)}:"
            f"{json.dumps(entry, ensure_ascii=False, separators=(',', ':'))}")


#: Where an index file's records begin (one line each, up to "\n}}").
_RECORDS_OPEN = '"records": {\n'


def index_text(entries: dict[str, dict], lines: list[str] | None = None) -> str:
    """One line per record, sorted by label: cheap to parse and readable in a diff.

    ``lines`` are the entries' lines in label order when the caller keeps them
    (see ``disk.IndexState``): then nothing is serialised again.
    """
    if lines is None:
        lines = [index_line(label, entries[label]) for label in sorted(entries)]
    head = json.dumps({"format": INDEX_FORMAT, "serial": secrets.token_hex(8)})
    body = ",\n".join(lines)
    return f'{head[:-1]}, {_RECORDS_OPEN}{body}\n}}}}\n'


def index_serial(head: bytes) -> bytes:
    """What identifies one written index (its first bytes hold a random serial)."""
    return head[:96]


def index_lines(text: str, labels: list[str]) -> list[str] | None:
    """The lines of an index file as :func:`index_text` wrote them, one per label of
    ``labels`` (sorted); None if the text is not laid out that way.

    Taken from the file they cost nothing, where serialising them again cost ~100 ms
    per 10,000 records each time another process had written the index.
    """
    start = text.find(_RECORDS_OPEN)
    end = text.rfind("\n}}")
    if start < 0 or end < 0:
        return None
    body = text[start + len(_RECORDS_OPEN):end]
    lines = body.split(",\n") if body else []
    if len(lines) != len(labels):
        return None
    for line, label in zip(lines, labels, strict=True):
        if not line.startswith(f'"{label}":'):  # a label JSON escapes: serialise afresh
            return None
    return lines


def parse_index(text: str) -> dict[str, dict]:
    try:
        value = json.loads(text)
        if value.get("format") != INDEX_FORMAT or not isinstance(value.get("records"), dict):
            raise CorruptFile("not an index file")
        return value["records"]
    except (ValueError, AttributeError) as exc:
        raise CorruptFile(f"index is unreadable: {exc}") from None


def project_doc(info: ProjectInfo, grants: dict[str, str]) -> dict[str, Any]:
    return {"id": info.id, "name": info.name, "description": info.description,
            "created": info.created, "last_updated": info.last_updated,
            "record_count": info.record_count, "grants": dict(sorted(grants.items()))}


def to_project(doc: dict) -> ProjectInfo:
    return ProjectInfo(id=doc["id"], name=doc.get("name", ""),
                       description=doc.get("description", ""), created=doc.get("created", ""),
                       last_updated=doc.get("last_updated", ""),
                       record_count=doc.get("record_count", 0))


def users_doc(users: dict[str, UserInfo]) -> dict[str, Any]:
    return {name: {"password_hash": u.password_hash, "is_admin": u.is_admin,
                   "created": u.created, "session_generation": u.session_generation,
                   # external users only (auth/): local users' entries stay as they were
                   **({"source": u.source, "display_name": u.display_name,
                       "email": u.email} if u.source else {})}
            for name, u in sorted(users.items())}


def to_users(doc: dict | None) -> dict[str, UserInfo]:
    return {name: UserInfo(username=name, password_hash=v["password_hash"],
                           is_admin=bool(v.get("is_admin")), created=v.get("created", ""),
                           session_generation=int(v.get("session_generation", 0)),
                           source=v.get("source", ""), display_name=v.get("display_name", ""),
                           email=v.get("email", ""))
            for name, v in (doc or {}).items()}
