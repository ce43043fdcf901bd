"""Opaque pagination cursors, for backends: ``[sort value, label]`` as URL-safe base64.

A backend may use its own format (the app passes cursors through untouched); these
helpers are here so that the built-in backends and third-party ones need not copy them.
"""

from __future__ import annotations

import base64
import json
import math


def encode_cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


#: Longest cursor text taken (a label and a sort value are at most a few hundred bytes).
MAX_CURSOR_LENGTH = 4096


def decode_cursor(cursor: str, numeric: bool | None = None) -> list:
    """The ``[sort value, label]`` pair in ``cursor``; ValueError if it is not one.

    The label must be a string and the sort value a string or a float-sized number
    (``numeric=True``: must be a number, returned as a float; ``False``: must be a
    string): a cursor is client input, and ``[1, [1]]``, ``[null, null]`` or 10**23
    reaching a query are a database error, not a page.
    """
    bad = ValueError(f"malformed cursor {cursor[:100]!r}")
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise bad
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise bad from None
    if not isinstance(values, list) or len(values) != 2:
        raise bad
    value, label = values
    if not isinstance(label, str) or isinstance(value, bool) or \
            not isinstance(value, (str, int, float)):
        raise bad
    if not isinstance(value, str):
        try:
            value = float(value)
        except OverflowError:
            raise bad from None
        if not math.isfinite(value):
            raise bad
    if numeric is not None and isinstance(value, str) == numeric:
        raise bad
    return [value, label]
