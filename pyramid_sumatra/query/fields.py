"""The fields a query may name, their kinds, and their values in a record document.

The values are derived exactly as :func:`pyramid_sumatra.records.build_stored_record`
derives the index columns, so a backend answering from its index agrees with the
reference evaluator reading the document.
"""

from __future__ import annotations

import math
from typing import Any

from ..parameters import record_parameters
from ..records import normalise_timestamp, tag_list

#: Index text fields: always a string ("" when the document lacks it).
TEXT_FIELDS = ("label", "reason", "outcome", "user", "main_file", "version", "executable")
#: ``field -> kind``; ``params.NAME`` fields have kind "any".
KINDS: dict[str, str] = {
    **dict.fromkeys(TEXT_FIELDS, "text"),
    "repeats": "optional_text", "duration": "number", "timestamp": "time", "tags": "tags",
}
PARAMS_PREFIX = "params."
#: Marks a field the record has no value for (every comparison on it is false).
MISSING: Any = object()


def kind_of(field: str) -> str | None:
    """The kind of ``field`` ("text", "number", "time", "tags", "optional_text", "any"),
    or None if no such field."""
    if field.startswith(PARAMS_PREFIX) and len(field) > len(PARAMS_PREFIX):
        return "any"
    return KINDS.get(field)


def field_names() -> str:
    return ", ".join([*KINDS, "params.NAME"])


class RecordValues:
    """The values of one record document, computed once and on demand (parameters
    are parsed only when a ``params.`` field is asked for, and not at all when
    ``parameters`` gives them as stored: ``StoredRecord.parameters``)."""

    __slots__ = ("doc", "_params", "_cache")

    def __init__(self, doc: dict, parameters: dict[str, Any] | None = None):
        self.doc = doc
        self._params = parameters
        self._cache: dict[str, Any] = {}

    def get(self, field: str) -> Any:
        if field in self._cache:
            return self._cache[field]
        value = self._compute(field)
        self._cache[field] = value
        return value

    def _compute(self, field: str) -> Any:
        doc = self.doc
        if field.startswith(PARAMS_PREFIX):
            if self._params is None:
                self._params = record_parameters(doc)
            return self._params.get(field[len(PARAMS_PREFIX):], MISSING)
        if field == "executable":
            exe = doc.get("executable")
            return _text(exe.get("name")) if isinstance(exe, dict) else ""
        if field in TEXT_FIELDS:
            return _text(doc.get(field))
        if field == "repeats":
            value = doc.get("repeats")
            return value if isinstance(value, str) else MISSING
        if field == "duration":  # as indexed: float(duration), absent unless a number
            value = doc.get("duration")
            if isinstance(value, bool) or not isinstance(value, int | float):
                return MISSING
            value = float(value)
            return value if math.isfinite(value) else MISSING
        if field == "timestamp":
            return normalise_timestamp(doc.get("timestamp"))
        if field == "tags":
            return tag_list(doc.get("tags"))
        raise KeyError(field)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
