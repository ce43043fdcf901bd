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
import math
import re
import secrets
from typing import Any, BinaryIO

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
    # The document is canonical (allow_nan=False) and the parameters finite; the
    # index's duration is the one number that may not be.
    duration = record.duration
    return dumps_readable(envelope, finite=not isinstance(duration, float)
                          or math.isfinite(duration))


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


#: The fields of an index entry, in the order :class:`IndexEntry` keeps them.
INDEX_FIELDS = ("timestamp", "tags", "user", "main_file", "version", "executable", "reason",
                "outcome", "duration", "revision")
#: Kept as themselves, in this order: what lists filter on most.
_FIELD_AT = {name: at for at, name in enumerate(
    ("tags", "user", "main_file", "executable", "outcome"))}
#: Kept together in one string (sixth item), split when read: one object, not five.
_PACKED_AT = {"timestamp": 0, "reason": 1, "version": 2, "revision": 3, "duration": 4}
_SEP = "\x1f"
_FIELD_SET = frozenset(INDEX_FIELDS)
_STR_FIELDS = ("timestamp", "user", "main_file", "version", "executable", "reason", "outcome",
               "revision")


class IndexEntry(tuple):
    """An index entry read by field name like the dict it was (``entry["tags"]``).

    A tuple: every server process holds a project's whole index, and 100,000 dicts of
    ten keys cost ~25 MB more per process than tuples. ``tags`` is a tuple; timestamp,
    reason, version, revision and duration (as JSON) share one string (the timestamp
    first, cut off its front when read), or, when one of them holds the separator, a
    tuple: a string of its own per entry costs ~70 bytes, ~6 MB per process at 100,000.
    """

    __slots__ = ()

    def __getitem__(self, key):  # type: ignore[override]
        at = _FIELD_AT.get(key)
        if at is not None:
            return tuple.__getitem__(self, at)
        rest = tuple.__getitem__(self, 5)
        if key == "timestamp":  # the most read of them: no split
            return rest[:rest.find(_SEP)] if type(rest) is str else rest[0]
        value = (rest.split(_SEP) if type(rest) is str else rest)[_PACKED_AT[key]]
        return _duration(value) if key == "duration" else value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in _FIELD_SET else default


def _duration(text: str) -> Any:
    """The duration as :func:`compact_entry` wrote it (JSON): None, an int or a float."""
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return json.loads(text)


#: Values many entries share (users, main files, executables, tag sets) are kept once
#: per process; bounded, since a value seen once costs a slot here.
_SHARED: dict[Any, Any] = {}
_SHARED_MAX = 50_000


def _shared(value: Any) -> Any:
    found = _SHARED.get(value)
    if found is not None:
        return found
    if len(_SHARED) >= _SHARED_MAX:
        _SHARED.clear()
    _SHARED[value] = value
    return value


def compact_entry(entry: dict) -> IndexEntry:
    """The :class:`IndexEntry` of an entry dict (as :func:`index_entry` makes);
    CorruptFile if it lacks a field or has one of the wrong type."""
    try:
        tags = entry["tags"]
        if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
            raise CorruptFile(f"index entry with tags {tags!r}")
        for name in _STR_FIELDS:
            if not isinstance(entry[name], str):
                raise CorruptFile(f"index entry with {name} {entry[name]!r}")
        duration = entry["duration"]
        if duration is not None and not isinstance(duration, (int, float)):
            raise CorruptFile(f"index entry with duration {duration!r}")
        rest = (entry["timestamp"], entry["reason"], entry["version"], entry["revision"],
                "" if duration is None else json.dumps(duration))
        packed: str | tuple = rest if any(_SEP in x for x in rest) else _SEP.join(rest)
        return IndexEntry((_shared(tuple(_shared(t) for t in tags)),
                           _shared(entry["user"]), _shared(entry["main_file"]),
                           _shared(entry["executable"]), _shared(entry["outcome"]), packed))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CorruptFile):
            raise
        raise CorruptFile(f"index entry lacks a field: {exc}") from None


def entry_dict(entry: dict | IndexEntry) -> dict[str, Any]:
    """The entry as the dict written to files (and compared with a record file's)."""
    if not isinstance(entry, IndexEntry):
        return entry
    tags, user, main_file, executable, outcome, rest = tuple.__iter__(entry)
    timestamp, reason, version, revision, duration = \
        rest.split(_SEP) if type(rest) is str else rest
    return {"timestamp": timestamp, "tags": list(tags), "user": user, "main_file": main_file,
            "version": version, "executable": executable, "reason": reason,
            "outcome": outcome, "duration": _duration(duration), "revision": revision}


def index_line(label: str, entry: dict | IndexEntry) -> str:
    return (f"{json.dumps(label, ensure_ascii=False)}:"
            f"{json.dumps(entry_dict(entry), ensure_ascii=False, separators=(',', ':'))}")


#: Where a base index file's records begin (one line each, up to "\n}}").
_RECORDS_OPEN = '"records": {\n'


def new_serial() -> str:
    return secrets.token_hex(8)


def index_text(entries: dict[str, dict] | dict[str, IndexEntry], serial: str | None = None) -> str:
    """The base index file: one line per record, sorted by label, cheap to parse and
    readable in a diff. ``serial`` (random if not given) names this base; a log
    (:func:`log_header`) applies to the base whose serial it names."""
    lines = [index_line(label, entries[label]) for label in sorted(entries)]
    head = json.dumps({"format": INDEX_FORMAT, "serial": serial or new_serial()})
    body = ",\n".join(lines)
    return f'{head[:-1]}, {_RECORDS_OPEN}{body}\n}}}}\n'


_SERIAL = re.compile(rb'^\{"format": "[^"]*", "serial": "([0-9a-f]{1,64})"')


def index_serial(head: bytes) -> str | None:
    """The serial of a base index from its first bytes; None if it has none (an index
    written otherwise, by hand or by ``check --repair`` of an older version)."""
    found = _SERIAL.match(head)
    return found.group(1).decode("ascii") if found else None


def _entry_hook(doc: dict) -> Any:
    # Each entry becomes a tuple as soon as it is parsed: the dicts never pile up.
    if doc.keys() == _FIELD_SET:
        try:
            return compact_entry(doc)
        except CorruptFile:
            return doc
    return doc


def parse_index(text: str | bytes) -> dict[str, IndexEntry]:
    """The entries of a base index file; CorruptFile if it is not one."""
    try:
        value = json.loads(text, object_hook=_entry_hook)
        if not isinstance(value, dict) or value.get("format") != INDEX_FORMAT \
                or not isinstance(value.get("records"), dict):
            raise CorruptFile("not an index file")
        records = value["records"]
        for label, entry in records.items():
            if not isinstance(entry, IndexEntry):
                records[label] = compact_entry(entry)  # CorruptFile if it is not one
        return records
    except (ValueError, AttributeError) as exc:
        if isinstance(exc, CorruptFile):
            raise
        raise CorruptFile(f"index is unreadable: {exc}") from None


def read_index(f: BinaryIO) -> dict[str, IndexEntry]:
    """The entries of an open base index file, read from its start a line at a time.

    As :func:`index_text` lays it out, a line is a record: no copy of the whole file
    (~40 MB at 100,000 records) and no dict per entry is ever held, which would leave
    a worker's heap that much larger for good. A file laid out otherwise (written by
    hand) is parsed whole by :func:`parse_index`.
    """
    f.seek(0)
    first = f.readline()
    if not (first.startswith(b'{"format": "' + INDEX_FORMAT.encode() + b'"')
            and first.endswith(_RECORDS_OPEN.encode())):
        return parse_index(first + f.read())
    records: dict[str, IndexEntry] = {}
    batch: list[bytes] = []
    closed = False

    def parse_batch() -> None:
        # A thousand lines at a time: one json.loads each, not one per line.
        try:
            found = json.loads(b"{" + b"".join(batch).rstrip(b",\n") + b"}",
                               object_hook=_entry_hook)
        except ValueError as exc:
            raise CorruptFile(f"index is unreadable: {exc}") from None
        for label, entry in found.items():
            records[label] = entry if isinstance(entry, IndexEntry) else compact_entry(entry)
        batch.clear()

    for raw in f:
        if closed or not raw.endswith(b"\n"):
            raise CorruptFile("index is unreadable: it goes on after its end, or is cut short")
        if raw == b"}}\n":
            closed = True
        elif raw != b"\n":
            batch.append(raw if raw.endswith(b",\n") else raw[:-1] + b",\n")
            if len(batch) >= 1000:
                parse_batch()
    if not closed:
        raise CorruptFile("index is unreadable: it is cut short")
    if batch:
        parse_batch()
    return records


#: The append-only log beside a base index: a header line naming the base's serial,
#: then one line per commit, ``{"set": {label: entry}, "remove": [label]}``.
LOG_FORMAT = "sumatra-filesystem-index-log/1"


def log_header(serial: str) -> str:
    return json.dumps({"format": LOG_FORMAT, "base": serial}) + "\n"


def log_line(changed: dict[str, dict], removed: list[str]) -> str:
    doc = {"set": {label: entry_dict(e) for label, e in changed.items()}, "remove": removed}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"


def parse_log_header(line: bytes) -> str | None:
    """The serial of the base a log applies to; None if ``line`` is no log header."""
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("format") != LOG_FORMAT \
            or not isinstance(doc.get("base"), str):
        return None
    return doc["base"]


def parse_log_lines(data: bytes) -> tuple[list[tuple[dict[str, IndexEntry], list[str]]], int]:
    """The commits of log lines (after the header) and how many bytes they take.

    A last line without its newline is a torn or unfinished append (its commit is
    still in the journal): it is left out, and the count stops before it. A complete
    line that is not a commit is CorruptFile.
    """
    end = data.rfind(b"\n") + 1
    commits = []
    for line in data[:end].splitlines():
        try:
            doc = json.loads(line, object_hook=_entry_hook)
            changed = {label: e if isinstance(e, IndexEntry) else compact_entry(e)
                       for label, e in doc["set"].items()}
            removed = doc["remove"]
            if not isinstance(removed, list) or not all(isinstance(x, str) for x in removed):
                raise CorruptFile("index log line with a bad remove list")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, CorruptFile):
                raise
            raise CorruptFile(f"index log line is unreadable: {exc}") from None
        commits.append((changed, removed))
    return commits, end


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
                       "email": u.email} if u.source else {}),
                   # kept at an OpenID login only: entries written before stay as they were
                   **({"groups": list(u.groups), "groups_seen": u.groups_seen}
                      if u.groups is not None else {})}
            for name, u in sorted(users.items())}


def _groups(value: Any) -> tuple[str, ...] | None:
    return tuple(value) if isinstance(value, list) else None


def to_users(doc: dict | None) -> dict[str, UserInfo]:
    return {name: UserInfo(username=name, password_hash=v["password_hash"],
                           is_admin=bool(v.get("is_admin")), created=v.get("created", ""),
                           session_generation=int(v.get("session_generation", 0)),
                           source=v.get("source", ""), display_name=v.get("display_name", ""),
                           email=v.get("email", ""),
                           groups=_groups(v.get("groups")),
                           groups_seen=v.get("groups_seen", ""))
            for name, v in (doc or {}).items()}
