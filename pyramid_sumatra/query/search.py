"""Run a query tree over any backend: its ``sumatra_search_records`` hook if it has one,
else the reference evaluator over pages of ``sumatra_query_records``.

The fallback reads the records the plain filters select, in chunks, with bodies,
and keeps those ``matches`` accepts. Its cursor wraps the backend's own (opaque)
cursor with how many records of that chunk were already consumed, so it works
with any backend's cursor format.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import orjson

from ..services.errors import InvalidInput
from ..storage.cursors import MAX_CURSOR_LENGTH
from ..storage.types import RecordPage, RecordQuery, StoredRecord
from .evaluate import matches
from .tree import Node

#: Records read per chunk: the first chunk is small (a page of 25 needs few), later
#: ones grow so that scanning 100,000 records is ~30 backend queries, not 400.
FIRST_CHUNK, MAX_CHUNK = 256, 4096
#: Seconds one page may spend evaluating: a page is then cut short (fewer records, and a
#: cursor to go on from), so that a query no SQL can narrow cannot hold a worker for long.
BUDGET = 10.0


class QueryTooCostly(InvalidInput):
    """A query without ``limit`` that cannot be answered within the time budget."""

    def __init__(self) -> None:
        super().__init__("q", f"the query needs more than {BUDGET:g} s of evaluation; "
                              "ask for pages (limit) or narrow it (tags, timestamp, duration)")
_PREFIX = "q"


def document(record: StoredRecord) -> dict:
    """The record's document; orjson is ~4x faster, json takes the integers it refuses."""
    assert record.body is not None
    try:
        return orjson.loads(record.body)
    except orjson.JSONDecodeError:
        return json.loads(record.body)


def _encode(backend_cursor: str | None, skip: int, size: int, _last: StoredRecord) -> str:
    data = json.dumps([backend_cursor, skip, size]).encode()
    return _PREFIX + base64.urlsafe_b64encode(data).decode().rstrip("=")


def _decode(cursor: str) -> tuple[str | None, int, int]:
    bad = ValueError(f"malformed cursor {cursor[:100]!r}")
    if len(cursor) > MAX_CURSOR_LENGTH + 100 or not cursor.startswith(_PREFIX):
        raise bad
    try:
        text = cursor[1:]
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise bad from None
    if not (isinstance(values, list) and len(values) == 3):
        raise bad
    inner, skip, size = values
    if not (inner is None or isinstance(inner, str)) or type(skip) is not int \
            or type(size) is not int or not 0 <= skip < size <= MAX_CHUNK:
        raise bad
    return inner, skip, size


def evaluate_pages(read: Callable[[RecordQuery], RecordPage], query: RecordQuery, where: Node,
                   *, cursor_of: Callable[[str | None, int, int, StoredRecord], str] = _encode,
                   start: tuple[str | None, int, int] | None = None,
                   doc_of: Callable[[StoredRecord], dict] = document) -> RecordPage:
    """The page of records ``read`` selects that also match ``where``.

    ``read`` answers a RecordQuery (with bodies); ``cursor_of(chunk cursor, records
    of the chunk consumed, chunk size, last record examined)`` names where the next
    page starts; ``doc_of(record)`` the document the evaluator reads. Past ``BUDGET``
    seconds the page is cut short (QueryTooCostly without a limit).
    """
    inner, skip, size = start or (None, 0, FIRST_CHUNK)
    limit = query.limit
    deadline = time.monotonic() + BUDGET
    matched: list[StoredRecord] = []
    while True:
        chunk = replace(query, cursor=inner, limit=size, with_body=True, labels_only=False,
                        with_parameters=True)
        page = read(chunk)
        for index in range(skip, len(page.records)):
            record = page.records[index]
            if not matches(where, doc_of(record), record.parameters):
                continue
            if limit is not None and len(matched) == limit:
                return _page(matched, query, cursor_of(inner, index, size, matched[-1]), None)
            matched.append(record)
        if not page.next_cursor:
            return _page(matched, query, None, len(matched) if limit is None else None)
        inner, skip, size = page.next_cursor, 0, min(size * 2, MAX_CHUNK)
        if time.monotonic() > deadline:  # a short page; the cursor goes on after this chunk
            if limit is None:
                raise QueryTooCostly()
            return _page(matched, query, cursor_of(inner, 0, size, page.records[-1]), None)


def _page(records: list[StoredRecord], query: RecordQuery, next_cursor: str | None,
          total: int | None) -> RecordPage:
    if not query.with_body:
        records = [replace(r, body=None) for r in records]
    if query.labels_only:
        return RecordPage(records=[], labels=[r.label for r in records],
                          next_cursor=next_cursor, total=total)
    return RecordPage(records=records, next_cursor=next_cursor, total=total)


def fallback_search(query_records: Callable[[str, RecordQuery], RecordPage], project_id: str,
                    query: RecordQuery, where: Node) -> RecordPage:
    """``where`` over any backend's ``sumatra_query_records`` (the reference evaluator).

    ``total`` is None when ``limit`` is set: counting would read every record again.
    """
    start = _decode(query.cursor) if query.cursor else None
    return evaluate_pages(lambda q: query_records(project_id, q), query, where, start=start)


def iterate(search: Callable[[RecordQuery], RecordPage], query: RecordQuery,
            page_size: int) -> Iterator[list[StoredRecord]]:
    """Every record ``search`` selects, page by page (``query.limit`` caps the total)."""
    remaining = query.limit
    cursor = query.cursor
    while remaining is None or remaining > 0:
        size = page_size if remaining is None else min(page_size, remaining)
        page = search(replace(query, limit=size, cursor=cursor))
        if page.records:
            yield page.records
        if remaining is not None:
            remaining -= len(page.records)
        if not page.next_cursor:
            return
        cursor = page.next_cursor
