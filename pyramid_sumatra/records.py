"""Record documents: validation, the update rule, v3/v4 forms, index fields, ETags."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from .parameters import record_parameters
from .services.errors import InvalidInput
from .storage.types import StoredRecord

#: Names that are routes inside a project, never record labels.
RESERVED_LABELS = frozenset({"permissions", "tag", "tagged", "last"})
MAX_NAME_LENGTH = 100
#: Matched with fullmatch: "$" would also accept a name ending in a newline.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-+@ ]*")
#: Deepest nesting a document may have: deeper ones cannot be rendered or even
#: parsed safely (RecursionError), and no Sumatra record comes close.
MAX_DEPTH = 100

#: Fields a second PUT of the same label updates (annotations and run results).
UPDATABLE_FIELDS = frozenset(
    {"reason", "outcome", "tags", "duration", "output_data", "stdout_stderr", "repeats"}
)

#: Fields that must be strings (or null) when present, because storage indexes them.
_STRING_FIELDS = ("reason", "outcome", "main_file", "version", "user")

_TIMESTAMP_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?"
)


#: The document cannot be accepted (the old name of services.errors.InvalidInput).
InvalidRecord = InvalidInput


def name_problem(name: str, kind: str) -> str | None:
    """Why ``name`` cannot be a project id or record label, or None if it can."""
    if not name:
        return f"{kind} is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"{kind} is longer than {MAX_NAME_LENGTH} characters"
    if name.startswith("_"):
        return f"{kind} {name!r} starts with '_', which is reserved for the server"
    if name in (".", "..") or not _NAME_RE.fullmatch(name):
        return (f"{kind} {name!r} may contain only letters, digits and '_ . - + @ ' "
                "and must start with a letter or digit")
    if kind == "label" and name in RESERVED_LABELS:
        return f"label {name!r} is reserved ({', '.join(sorted(RESERVED_LABELS))})"
    return None


def depth_problem(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """Where ``value`` nests deeper than ``limit`` objects/arrays, or None (iterative)."""
    stack = [(value, 1, "")]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, dict):
            children = item.items()
        elif isinstance(item, list):
            children = enumerate(item)
        else:
            continue
        if depth > limit:
            return path or "body"
        stack.extend((v, depth + 1, f"{path}.{k}" if path else str(k)) for k, v in children)
    return None


_UNREADABLE = object()


def _huge_integer_path(text: str) -> str:
    """Where the integer too long for Python's int() sits in ``text`` ("body" if unknown)."""
    def integer(digits: str) -> Any:
        try:
            return int(digits)
        except ValueError:
            return _UNREADABLE

    try:
        doc = json.loads(text, parse_int=integer)
    except (ValueError, RecursionError):
        return "body"
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        item, path = stack.pop()
        if item is _UNREADABLE:
            return path or "body"
        if isinstance(item, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(item))
    return "body"


def parse_json_body(body: bytes) -> Any:
    """A request body as JSON; InvalidRecord for anything no view can take.

    Python's parser recurses per level and refuses integers over 4,300 digits
    (ValueError, RecursionError): both are the client's error, not a 500.
    """
    try:
        doc = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidRecord("body", f"body is not UTF-8: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidRecord("body", f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidRecord("body", f"body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # "Exceeds the limit (4300 digits) for integer string ..."
        where = _huge_integer_path(body.decode("utf-8"))
        raise InvalidRecord(where, f"{where} holds a number that cannot be read: {exc}") \
            from None
    # Nesting needs an object or array per level: a body with no more brackets than the
    # limit cannot nest too deep, and bytes.count is far cheaper than walking the document.
    if body.count(b"{") + body.count(b"[") <= MAX_DEPTH:
        return doc
    where = depth_problem(doc)
    if where:
        raise InvalidRecord(where, f"{where} nests deeper than {MAX_DEPTH} levels")
    return doc


def whole_number(text: str, maximum: int) -> int | None:
    """``text`` as a number from 1 to ``maximum``, or None.

    ASCII digits only: ``str.isdigit()`` also takes "²" and "２", which ``int()``
    refuses (a query parameter's 500, found by probing).
    """
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(maximum))):
        return None
    number = int(text)
    return number if 0 < number <= maximum else None


def is_date(text: str) -> bool:
    """Whether ``text`` is a date ``YYYY-MM-DD`` in ASCII digits (a filter's since/until)."""
    return (len(text) == 10 and text[4] == text[7] == "-" and text.isascii()
            and text.replace("-", "").isdigit())


def normalise_timestamp(value: Any) -> str:
    """Return the UTC form used for sorting, or raise InvalidRecord."""
    if not isinstance(value, str):
        raise InvalidRecord("timestamp", "timestamp must be a string 'YYYY-MM-DD HH:MM:SS'")
    m = _TIMESTAMP_RE.fullmatch(value.strip())
    if not m:
        raise InvalidRecord(
            "timestamp", f"timestamp {value!r} is not 'YYYY-MM-DD HH:MM:SS[+HH:MM]'")
    date, time, _fraction, offset = m.groups()
    text = f"{date} {time}"
    if offset and offset != "Z":
        text += offset if ":" in offset else offset[:3] + ":" + offset[3:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidRecord("timestamp", f"timestamp {value!r}: {exc}") from None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # 9999-12-31 23:59:59-23:59 is after year 9999 in UTC
            raise InvalidRecord("timestamp", f"timestamp {value!r} is out of range in UTC") \
                from None
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def tag_list(tags: Any) -> list[str]:
    """The tags of a document as a list (old clients sent a comma-separated string)."""
    if tags is None:
        return []
    if isinstance(tags, str):
        return [t.strip() for t in tags.split(",") if t.strip()]
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        return list(dict.fromkeys(tags))
    raise InvalidRecord("tags", "tags must be a list of strings")


def validate(doc: Any, project_id: str, label: str) -> None:
    """Check a record document sent to ``/<project_id>/<label>/``; raise InvalidRecord."""
    if not isinstance(doc, dict):
        raise InvalidRecord("body", "a record must be a JSON object")
    if "label" not in doc:
        raise InvalidRecord("label", "label is missing")
    if not isinstance(doc["label"], str):
        raise InvalidRecord("label", "label must be a string")
    if doc["label"] != label:
        raise InvalidRecord(
            "label", f"label {doc['label']!r} in the body does not match {label!r} in the URL")
    if "project_id" in doc and doc["project_id"] not in (None, project_id):
        raise InvalidRecord(
            "project_id",
            f"project_id {doc['project_id']!r} in the body does not match {project_id!r} "
            "in the URL")
    if "timestamp" not in doc:
        raise InvalidRecord("timestamp", "timestamp is missing")
    normalise_timestamp(doc["timestamp"])
    for name in _STRING_FIELDS:
        if doc.get(name) is not None and not isinstance(doc[name], str):
            raise InvalidRecord(name, f"{name} must be a string")
    tag_list(doc.get("tags"))
    if doc.get("duration") is not None and (
        isinstance(doc["duration"], bool) or not isinstance(doc["duration"], (int, float))
    ):
        raise InvalidRecord("duration", "duration must be a number of seconds")
    if doc.get("duration") is not None and not _finite_float(doc["duration"]):
        raise InvalidRecord("duration", "duration is out of range")
    executable = doc.get("executable")
    if executable is not None and not isinstance(executable, dict):
        raise InvalidRecord("executable", "executable must be an object")
    if isinstance(executable, dict) and not isinstance(executable.get("name") or "", str):
        raise InvalidRecord("executable.name", "executable.name must be a string")
    for name in ("output_data", "input_data"):
        value = doc.get(name)
        if value is not None and not isinstance(value, (list, str)):
            raise InvalidRecord(name, f"{name} must be a list")


def _finite_float(number: float) -> bool:
    """Whether a JSON number fits a float (a 400-digit integer overflows one)."""
    try:
        return math.isfinite(float(number))
    except OverflowError:
        return False


def from_v3(doc: dict) -> dict:
    """v3 input: output_data entries lack ``creation``; store it as null."""
    out = doc.get("output_data")
    if isinstance(out, list):
        doc = dict(doc)
        doc["output_data"] = [
            ({**entry, "creation": entry.get("creation")} if isinstance(entry, dict) else entry)
            for entry in out
        ]
    return doc


def to_v3(doc: dict) -> dict:
    """v3 output: no ``creation`` inside output_data entries."""
    out = doc.get("output_data")
    if isinstance(out, list):
        doc = dict(doc)
        doc["output_data"] = [
            ({k: v for k, v in entry.items() if k != "creation"}
             if isinstance(entry, dict) else entry)
            for entry in out
        ]
    return doc


def merge_update(stored: dict, incoming: dict) -> dict:
    """The second PUT of a label: take annotations and results, keep how the run was made.

    Keys the stored document lacks are added (nothing a client sends is lost);
    write-once keys keep their stored value.
    """
    merged = dict(stored)
    for key, value in incoming.items():
        if key in UPDATABLE_FIELDS or key not in stored:
            merged[key] = value
    return merged


def serialise(doc: dict) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


@functools.lru_cache(maxsize=256)
def project_id_suffix(project_id: str) -> str:
    """How a stored body ends when ``project_id`` is its last member (smt sends it last):
    the body then carries it, and need not be parsed to find out."""
    return ',"project_id":' + json.dumps(project_id, ensure_ascii=False) + "}"


def revision_of(body: str | bytes) -> str:
    """The revision naming a body (its text, or that text as UTF-8)."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    return hashlib.sha256(data).hexdigest()[:20]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


#: What no backend can store: NUL, and lone surrogates (not Unicode; UTF-8 cannot encode them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str) -> bool:
    """Whether ``text`` holds a NUL or a lone surrogate, which no backend can store."""
    return bool(_UNSTORABLE.search(text))


def _nul_path(value: Any, path: str) -> str | None:
    """Where a NUL character or a lone surrogate hides in a document (key or string), or None."""
    if isinstance(value, str):
        return path if _UNSTORABLE.search(value) else None
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        where = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and _UNSTORABLE.search(key):
            return where
        found = _nul_path(item, where)
        if found:
            return found
    return None


def build_stored_record(project_id: str, doc: dict) -> StoredRecord:
    """Serialise a validated document and derive the fields storage indexes."""
    try:
        body = serialise(doc)
    except ValueError as exc:  # NaN/Infinity are not JSON
        raise InvalidRecord("body", f"record is not representable as JSON: {exc}") from None
    # PostgreSQL (JSONB, TEXT) cannot store NUL; refuse it on every backend alike.
    # Lone surrogates (\udXXX escapes of undecodable bytes) cannot be encoded as UTF-8.
    # json.dumps writes a NUL as "\\u0000"; a lone surrogate is not ASCII (isascii is O(1)).
    where = ("\\u0000" in body or (not body.isascii() and _UNSTORABLE.search(body))) \
        and _nul_path(doc, "")
    if where:
        raise InvalidRecord(where, f"{where} contains a NUL character (\\u0000) or a lone "
                                   "surrogate (invalid Unicode), which cannot be stored")
    executable = doc.get("executable")
    duration = doc.get("duration")
    return StoredRecord(
        project_id=project_id,
        label=doc["label"],
        body=body,
        revision=revision_of(body),
        timestamp=normalise_timestamp(doc["timestamp"]),
        tags=tag_list(doc.get("tags")),
        user=_text(doc.get("user")),
        main_file=_text(doc.get("main_file")),
        version=_text(doc.get("version")),
        executable=_text(executable.get("name")) if isinstance(executable, dict) else "",
        reason=_text(doc.get("reason")),
        outcome=_text(doc.get("outcome")),
        duration=float(duration) if isinstance(duration, (int, float)) else None,
        # Parsed once here, so that queries and plots never parse a body again.
        parameters=record_parameters(doc),
    )


def etag(revision: str, representation: str) -> str:
    """ETag value (unquoted) naming a revision in one representation."""
    return f"{revision}-{representation}"


def etag_revision(tag: str) -> str:
    return tag.rsplit("-", 1)[0]


def utcnow() -> str:
    """Now in UTC, to the microsecond (sorts as text; orders quick successive writes)."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def prepare_put(project_id: str, label: str, incoming: Any, media_version: str,
                stored: StoredRecord | None) -> StoredRecord:
    """The record to store for a PUT of ``incoming`` (new, or an update of ``stored``).

    Raises InvalidRecord naming the field when the document cannot be accepted.
    """
    validate(incoming, project_id, label)
    doc = from_v3(incoming) if media_version == "v3" else incoming
    if stored is not None:
        doc = merge_update(stored.document, doc)
    return build_stored_record(project_id, doc)


#: Fields a person may edit in the web interface.
ANNOTATION_FIELDS = ("reason", "outcome", "tags")


def edit_annotations(stored_doc: dict, changes: dict[str, Any]) -> dict:
    """The document with ``reason``, ``outcome`` and ``tags`` replaced by ``changes``.

    Keys absent from ``changes`` keep their value; tags may be a list or a
    comma-separated string. Everything else is left exactly as stored.
    """
    doc = dict(stored_doc)
    for name in ("reason", "outcome"):
        if name in changes:
            value = changes[name]
            if value is not None and not isinstance(value, str):
                raise InvalidRecord(name, f"{name} must be a string")
            doc[name] = (value or "").replace("\r\n", "\n")
    if "tags" in changes:
        doc["tags"] = list(dict.fromkeys(tag_list(changes["tags"])))
    return doc
