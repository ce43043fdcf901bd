"""Plot data: per record its label, fields and flattened parameters, as JSON-ready rows.

The project page's plots read this, and so may anyone plotting elsewhere. Every query
parameter is checked and bounded here (a ``PlotDataError`` names the bad one): the
endpoint reads record bodies, so a request must not ask for unbounded work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .parameters import record_parameters
from .query import Node
from .query.parser import MAX_LENGTH as MAX_QUERY
from .query.search import document
from .records import is_date, whole_number
from .services.search import interpret_search
from .storage.types import SORTABLE, RecordQuery, StoredRecord

#: Most records one request returns; beyond it the answer has a ``next`` cursor link.
MAX_RECORDS = 10_000
#: Longest value of any query parameter (a cursor is longer than a filter).
MAX_VALUE = 1_000
MAX_CURSOR = 4_096
MAX_TAGS = 50
#: Parameter names kept per response (the first seen), and the longest category value.
MAX_PARAMETER_KEYS = 200
MAX_TEXT = 200
PARAMETERS = ("tags", "q", "user", "main_file", "since", "until", "order", "limit", "cursor",
              "format")
#: Record fields a plot can use, and how to read them (``time`` is "YYYY-MM-DD HH:MM:SS").
FIELDS: dict[str, str] = {
    "timestamp": "time", "duration": "numeric", "repeats": "categorical",
    "user": "categorical", "main_file": "categorical", "version": "categorical",
    "executable": "categorical", "outcome": "categorical", "reason": "categorical",
}


class PlotDataError(ValueError):
    """A query parameter the endpoint refuses: ``parameter`` names it."""

    def __init__(self, parameter: str, detail: str):
        super().__init__(detail)
        self.parameter, self.detail = parameter[:50], detail


@dataclass
class PlotQuery:
    query: RecordQuery
    params: dict[str, str]  # the filters as given, to build the next page's link
    where: Node | None = None  # ``q`` when it parses as a query (docs/query.md)


def _date(name: str, value: str) -> str:
    if not is_date(value):
        raise PlotDataError(name, f"{name} must be a date YYYY-MM-DD")
    return value


def parse_query(pairs: list[tuple[str, str]]) -> PlotQuery:
    """The record query a request's ``(name, value)`` pairs ask for, or PlotDataError."""
    given: dict[str, str] = {}
    for name, value in pairs:
        if name not in PARAMETERS:
            raise PlotDataError(name, f"unknown parameter {name[:50]!r}; known: "
                                      + ", ".join(PARAMETERS))
        if name in given:
            raise PlotDataError(name, f"{name} given more than once")
        if len(value) > {"cursor": MAX_CURSOR, "q": MAX_QUERY}.get(name, MAX_VALUE):
            raise PlotDataError(name, f"{name} is too long")
        given[name] = value.strip()
    tags = [t.strip() for t in given.get("tags", "").split(",") if t.strip()]
    if len(tags) > MAX_TAGS:
        raise PlotDataError("tags", f"at most {MAX_TAGS} tags")
    order = given.get("order") or "-timestamp"
    if order.lstrip("-") not in SORTABLE:
        raise PlotDataError("order", "order must be one of " + ", ".join(SORTABLE)
                            + " (prefix '-' for descending)")
    limit = whole_number(given.get("limit") or str(MAX_RECORDS), MAX_RECORDS)
    if limit is None:
        raise PlotDataError("limit", f"limit must be a whole number from 1 to {MAX_RECORDS}")
    since = _date("since", given["since"]) if given.get("since") else None
    until = _date("until", given["until"]) if given.get("until") else None
    search = interpret_search(given.get("q", ""))  # a query, else text as in the table
    query = RecordQuery(
        tags=tags or None, text=search.text, user=given.get("user") or None,
        main_file=given.get("main_file") or None,
        since=f"{since} 00:00:00" if since else None,
        until=f"{until} 23:59:59" if until else None,
        order=order, limit=limit, cursor=given.get("cursor") or None, with_body=True,
        with_parameters=True)
    filters = {k: v for k, v in given.items() if v and k not in ("cursor", "format")}
    return PlotQuery(query, filters, search.where)


def _value(value: Any) -> float | int | str | None:
    """A plottable value: a finite number, or text for a category; None when neither."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value[:MAX_TEXT]
    return None  # lists, nulls, empty dicts: not a point on an axis


def _text(value: Any) -> str | None:
    return str(value)[:MAX_TEXT] if value not in (None, "") else None


def record_row(record: StoredRecord, keys: dict[str, bool]) -> dict[str, Any]:
    """One record's row; ``keys`` collects parameter names (value: all numeric so far).

    The parameters are the record's stored ones (parsed once, at PUT); only a backend
    that does not keep them makes this parse the body's.
    """
    doc = document(record)
    flat = record.parameters if record.parameters is not None else record_parameters(doc)
    parameters = {}
    for name, raw in flat.items():
        value = _value(raw)
        if value is None or (name not in keys and len(keys) >= MAX_PARAMETER_KEYS):
            continue
        parameters[name] = value
        keys[name] = keys.get(name, True) and not isinstance(value, str)
    duration = doc.get("duration")
    return {
        "label": record.label, "timestamp": record.timestamp,
        "duration": duration if isinstance(duration, int | float)
        and not isinstance(duration, bool) and math.isfinite(duration) else None,
        "repeats": _text(doc.get("repeats")), "user": _text(record.user),
        "main_file": _text(record.main_file), "version": _text(record.version),
        "executable": _text(record.executable), "outcome": _text(record.outcome),
        "reason": _text(record.reason), "tags": record.tags, "parameters": parameters,
    }


def plot_rows(records: list[StoredRecord]) -> tuple[list[dict], dict[str, str]]:
    """(rows, parameter kinds): a parameter is numeric when every value of it is a number."""
    keys: dict[str, bool] = {}
    rows = [record_row(r, keys) for r in records]
    kinds = {k: "numeric" if numeric else "categorical" for k, numeric in sorted(keys.items())}
    return rows, kinds
