"""Documents cut to a depth the page templates can render.

A Jinja2 macro renders a nested value as nested tables, a handful of Python frames
per level: a record nesting a few hundred levels deep (stored before bodies were
limited, or through a plugin) exhausted the recursion limit and its page was a 500.
Below ``RENDER_DEPTH`` levels the rest of a value is shown as its JSON text.
"""

from __future__ import annotations

import json
from typing import Any

RENDER_DEPTH = 20
TOO_DEEP = "(nested too deep to show)"


class JsonText(str):
    """The JSON text of a value nested too deep to render as tables."""


def json_text(value: Any, indent: int | None = None) -> str:
    """``value`` as JSON, or a placeholder when it nests deeper than the encoder can go."""
    try:
        return json.dumps(value, ensure_ascii=False, indent=indent)
    except (RecursionError, TypeError, ValueError):
        return TOO_DEEP


def clip(value: Any, depth: int = RENDER_DEPTH) -> Any:
    """``value`` with every object or array deeper than ``depth`` levels as JsonText."""
    if not isinstance(value, (dict, list)):
        return value
    if depth <= 0:
        return JsonText(json_text(value))
    if isinstance(value, dict):
        return {key: clip(item, depth - 1) for key, item in value.items()}
    return [clip(item, depth - 1) for item in value]


def pretty(value: Any, fallback: str) -> str:
    """Indented JSON (the pure-Python encoder recurses deeper per level), else ``fallback``."""
    text = json_text(value, indent=2)
    return fallback if text == TOO_DEEP else text
