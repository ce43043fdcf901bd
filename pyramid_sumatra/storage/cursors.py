"""Opaque pagination cursors, for backends: ``[sort value, label]`` as URL-safe base64.

A backend may use its own format (the app passes cursors through untouched); these
helpers are here so that the built-in backends and third-party ones need not copy them.
"""

from __future__ import annotations

import base64
import json


def encode_cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list:
    """The ``[sort value, label]`` pair in ``cursor``; ValueError if it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"malformed cursor {cursor!r}") from None
    if not isinstance(values, list) or len(values) != 2:
        raise ValueError(f"malformed cursor {cursor!r}")
    return values
