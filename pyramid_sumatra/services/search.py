"""Finding records by the query language: one rule for the JSON API, the record table,
the plot data and scripts (docs/query.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace

import orjson
import transaction

from ..query import QueryError, parse
from ..query.parser import MAX_LENGTH
from ..query.search import iterate
from ..query.tree import Node
from ..records import project_id_suffix
from ..storage import Storage
from ..storage.types import RecordQuery, StoredRecord
from .errors import InvalidInput

#: Most whole records one JSON page carries; NDJSON streams any number, in pages of this.
MAX_EXPANDED = 1_000
STREAM_PAGE = 500


def parse_where(text: str) -> Node:
    """The tree of a ``q`` query; InvalidInput("q") naming the position and what was expected."""
    try:
        return parse(text)
    except QueryError as exc:
        raise InvalidInput("q", f"q {exc}") from None


@dataclass
class SearchText:
    """What the record table's search box asks for: a query, or else plain text."""

    where: Node | None = None
    text: str | None = None  # plain substring of label, reason or outcome
    problem: str | None = None  # why text that looks like a query is searched as text


def interpret_search(text: str) -> SearchText:
    """A query when ``text`` parses as one; otherwise a plain-text substring search.

    Plain words ("probe", "tau_m") are text. Text that starts like a query (a field
    name, ``not`` or ``(``) but fails to parse is searched as text too, with the
    parser's complaint in ``problem`` so the page can show it.
    """
    text = text.strip()
    if not text:
        return SearchText()
    try:
        return SearchText(where=parse(text))
    except QueryError as exc:
        first = text.split(None, 1)[0].lower()
        looks = (first.startswith(("(", "params.")) or first == "not"
                 or first.rstrip("=!<>~") in {"label", "reason", "outcome", "tags", "user",
                                               "main_file", "version", "executable",
                                               "duration", "timestamp", "repeats"})
        problem = str(exc) if looks and len(text) <= MAX_LENGTH else None
        return SearchText(text=text, problem=problem)


def record_json(record: StoredRecord, project_id: str) -> bytes:
    """The record document as GET record serves it (v4), with its ``project_id``."""
    body = record.body
    assert body is not None
    # The usual case (smt sends project_id last): the text as stored, no parse. The suffix
    # can only be the top-level object's last member (a string cannot end at its '}').
    if body.endswith(project_id_suffix(project_id)):
        return body.encode()
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:  # integers beyond 64 bits: json reads them
        doc = json.loads(record.body)
    if doc.get("project_id") != project_id:
        doc["project_id"] = project_id
    try:
        return orjson.dumps(doc)
    except TypeError:
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def stream_records(storage: Storage, project_id: str, query: RecordQuery,
                   where: Node | None) -> Iterator[bytes]:
    """Every selected record as NDJSON, page by page, each page in its own read transaction.

    Runs after the request's transaction ended (a WSGI app_iter), so memory stays
    one page whatever the count. Pages are keyset-paged: a record written meanwhile
    appears or not depending on where it sorts; none repeats.
    """
    query = replace(query, with_body=True, labels_only=False)
    pages = iterate(lambda q: storage.search_records(project_id, q, where), query, STREAM_PAGE)
    while True:
        with transaction.manager:
            records = next(pages, None)
            if records is None:
                return
            chunk = b"".join(record_json(r, project_id) + b"\n" for r in records)
        yield chunk
