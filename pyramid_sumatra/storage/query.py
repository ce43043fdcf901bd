"""Filters, order and cursors applied to in-memory index rows, the way the SQL backend does.

For a backend that keeps (or loads) each project's index in memory: ``entries`` maps a
label to its index fields, the names of :class:`~pyramid_sumatra.storage.types.StoredRecord`
(``timestamp``, ``tags``, ``user``, ``main_file``, ``reason``, ``outcome``, ``duration``
and the other ``SORTABLE`` ones); ``vars(stored_record)`` is such a row.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable
from operator import itemgetter
from typing import Any

from pyramid_sumatra.storage.cursors import decode_cursor, encode_cursor
from pyramid_sumatra.storage.types import SORTABLE, RecordQuery

Entry = tuple[str, dict]  # (label, index entry)


def _sort_value(field: str) -> Callable[[Entry], Any]:
    if field == "label":
        return lambda item: item[0]
    if field == "duration":  # NULL durations sort as -1, like coalesce(duration, -1.0)
        return lambda item: -1.0 if item[1]["duration"] is None else item[1]["duration"]
    return lambda item: item[1][field]


def _matches(query: RecordQuery) -> Callable[[Entry], bool]:
    tags = set(query.tags or ())
    text = query.text.lower() if query.text else None

    def match(item: Entry) -> bool:
        label, e = item
        if tags and tags.isdisjoint(e["tags"]):
            return False
        if text is not None and not (text in label.lower() or text in e["reason"].lower()
                                     or text in e["outcome"].lower()):
            return False
        if query.user and e["user"] != query.user:
            return False
        if query.main_file and e["main_file"] != query.main_file:
            return False
        if query.since and e["timestamp"] < query.since:
            return False
        return not (query.until and e["timestamp"] > query.until)

    return match


def select_entries(entries: dict[str, dict], query: RecordQuery,
           by_time: Callable[[], list[str]] | None = None
           ) -> tuple[list[Entry], str | None, int]:
    """The page of entries ``query`` asks for, the next cursor, and the total match count.

    ``by_time`` gives every label in ascending order of ``(timestamp, label)``, when
    the caller has it at hand: then an unfiltered query by time (the project page,
    the record list) needs no sort at all.
    """
    descending = query.order.startswith("-")
    field = query.order.lstrip("-")
    if field not in SORTABLE:
        raise ValueError(f"cannot order by {field!r}; one of {', '.join(SORTABLE)}")
    if query.limit == 0:  # a count: no entries, no cursor
        match = _matches(query)
        return [], None, sum(map(match, entries.items())) if _filters(query) else len(entries)
    if by_time is not None and field == "timestamp" and not _filters(query):
        return _select_by_time(entries, by_time(), query, descending)
    value = _sort_value(field)
    match = _matches(query)
    items = entries.items()
    matched = [item for item in items if match(item)] if _filters(query) else list(items)
    total = len(matched)
    keyed = [((value(item), item[0]), item) for item in matched]
    first = itemgetter(0)
    try:
        if query.cursor:
            after = tuple(decode_cursor(query.cursor, numeric=field == "duration"))
            keyed = [k for k in keyed if (k[0] < after if descending else k[0] > after)]
        if query.limit is None:
            keyed.sort(key=first, reverse=descending)
        else:  # a page of a large project: no need to sort it all
            keyed = (heapq.nlargest if descending else heapq.nsmallest)(
                query.limit + 1, keyed, key=first)
    except TypeError:
        raise ValueError(f"cursor {query.cursor!r} does not fit order {query.order!r}") from None
    page = [item for _, item in keyed]
    next_cursor = None
    if query.limit is not None and len(page) > query.limit:
        page = page[:query.limit]
        next_cursor = encode_cursor(list(keyed[query.limit - 1][0]))
    return page, next_cursor, total


def _select_by_time(entries: dict[str, dict], ascending: list[str],
                    query: RecordQuery, descending: bool) -> tuple[list[Entry], str | None, int]:
    """Slices of the presorted labels: the same answer as sorting, in O(page) after a bisect."""
    start, stop = 0, len(ascending)
    if query.cursor:
        after = decode_cursor(query.cursor, numeric=False)
        if len(after) != 2 or not all(isinstance(v, str) for v in after):
            raise ValueError(f"cursor {query.cursor!r} does not fit order {query.order!r}")
        key = (after[0], after[1])
        time_key = time_order_key(entries)
        if descending:
            stop = bisect.bisect_left(ascending, key, key=time_key)
        else:
            start = bisect.bisect_right(ascending, key, key=time_key)
    labels = ascending[start:stop]
    more = query.limit is not None and len(labels) > query.limit
    if more:
        labels = labels[-query.limit:] if descending else labels[:query.limit]
    if descending:
        labels = labels[::-1]
    page = [(label, entries[label]) for label in labels]
    next_cursor = encode_cursor([page[-1][1]["timestamp"], page[-1][0]]) if more else None
    return page, next_cursor, len(entries)


def time_order_key(entries: dict[str, dict]) -> Callable[[str], tuple[str, str]]:
    """The sort key of a label in ``by_time`` order (for bisect over labels)."""
    return lambda label: (entries[label]["timestamp"], label)


def _filters(query: RecordQuery) -> bool:
    return bool(query.tags or query.text or query.user or query.main_file or query.since
                or query.until)
