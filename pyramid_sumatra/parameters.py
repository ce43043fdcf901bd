"""Read the parameter sets Sumatra records carry, for display and comparison.

A record's ``parameters`` is ``{"content": <text>, "type": <ParameterSet class name>}``.
Sumatra writes JSON, YAML, ``key = value`` lines (SimpleParameterSet), INI sections
(ConfigParserParameterSet) and Python dict text (NTParameterSet, old ``dict``). We parse
without executing anything (``ast.literal_eval``, never ``eval``) and fall back to the
raw text when the content is in none of these forms.
"""

from __future__ import annotations

import ast
import configparser
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .clip import json_text

try:  # optional: PyYAML is not a dependency, YAML sets show raw without it
    import yaml
except ImportError:  # pragma: no cover - depends on the environment
    yaml = None


@dataclass
class ParameterSet:
    type: str
    raw: str
    values: dict[str, Any] | None  # None when the content could not be parsed

    @property
    def flat(self) -> dict[str, Any]:
        return flatten(self.values) if self.values is not None else {}


def _literal(text: str) -> Any:
    """A Python literal (comments allowed), or the stripped text when it is not one."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text.split("#", 1)[0].strip()


def parse_simple(text: str) -> dict[str, Any]:
    """``name = value  # comment`` lines (SimpleParameterSet); ValueError otherwise."""
    values: dict[str, Any] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"not a 'name = value' line: {line!r}")
        values[name.strip()] = _literal(value)
    return values


def parse_ini(text: str) -> dict[str, Any]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return {section: {k: _literal(v) for k, v in parser.items(section)}
            for section in parser.sections()}


def parse_json(text: str) -> Any:
    return json.loads(text)


def parse_python(text: str) -> Any:
    return ast.literal_eval(text.strip())


def parse_yaml(text: str) -> Any:
    if yaml is None:
        raise ValueError("PyYAML is not installed")
    return yaml.safe_load(text)


_BY_TYPE = {
    "JSONParameterSet": (parse_json,),
    "YAMLParameterSet": (parse_yaml, parse_json),
    "SimpleParameterSet": (parse_simple,),
    "ConfigParserParameterSet": (parse_ini,),
    "NTParameterSet": (parse_python, parse_json),
    "dict": (parse_python, parse_json),
}
_GUESSES = (parse_json, parse_python, parse_simple, parse_ini)


def parse_parameters(parameters: Any) -> ParameterSet:
    """The parameter set of a record's ``parameters`` field (any shape Sumatra wrote)."""
    if isinstance(parameters, dict) and "content" in parameters:
        kind, content = str(parameters.get("type") or ""), parameters.get("content")
    else:
        kind, content = "", parameters
    if content is None or content == "":
        return ParameterSet(kind, "", {} if content == "" else None)
    if isinstance(content, dict):
        return ParameterSet(kind, json_text(content, indent=2), content)
    raw = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    for parse in _BY_TYPE.get(kind, _GUESSES):
        try:
            values = parse(raw)
        except Exception:  # noqa: BLE001 - any parser failure means "not this format"
            continue
        if isinstance(values, dict):
            return ParameterSet(kind, raw, values)
    return ParameterSet(kind, raw, None)


#: Deepest level ``flatten`` descends to; a deeper dict stays one value (shown as JSON).
FLATTEN_DEPTH = 20


def flatten(values: dict[str, Any], prefix: str = "", depth: int = FLATTEN_DEPTH
            ) -> dict[str, Any]:
    """Nested dicts as dotted keys: ``{"a": {"b": 1}}`` → ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and depth > 1:
            flat.update(flatten(value, name + ".", depth - 1))
        else:
            flat[name] = value
    return flat


#: A parameter that has a value but compares with nothing (a list, a date, an empty
#: section, NaN, an infinity, an integer too large for a float): kept so that
#: ``exists`` finds it, and stored as this JSON value by every backend.
OPAQUE: list = []
#: The type of a parameter value as indexed (see :func:`index_values`).
IndexValue = bool | int | float | str | list
#: NUL and lone surrogates (as records.unstorable): no backend stores them, and a
#: parameter text can still hold them as JSON escapes (``"\\u0000"``).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: Integers a float holds exactly.
_EXACT_INT = 2 ** 53


def index_value(value: Any) -> IndexValue | None:
    """A flattened parameter value as the query language and plots see it.

    Text, booleans, finite numbers and integers up to 2**53 stay as they are; a larger
    integer becomes its float (what a float column and PostgreSQL's float8 hold);
    None (no value) is None; anything else is :data:`OPAQUE`. Every value is then
    representable in JSON and comparable in SQL exactly as in Python (SQL has no
    NaN, dates or Python tuples).
    """
    if isinstance(value, str):  # text no backend can store compares with nothing
        return OPAQUE if _UNSTORABLE.search(value) else value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if -_EXACT_INT <= value <= _EXACT_INT:
            return value
        try:
            value = float(value)
        except OverflowError:
            return OPAQUE
    if isinstance(value, float):
        return value if math.isfinite(value) else OPAQUE
    return OPAQUE


def index_values(flat: dict[str, Any]) -> dict[str, IndexValue]:
    """``ParameterSet.flat`` as stored with a record (``StoredRecord.parameters``):
    every value through :func:`index_value`, parameters without a value left out."""
    indexed: dict[str, IndexValue] = {}
    for name, value in flat.items():
        value = index_value(value)
        # A name with NUL or a lone surrogate cannot be stored, nor named by a query.
        if value is not None and not _UNSTORABLE.search(name):
            indexed[str(name)] = [] if value is OPAQUE else value
    return indexed


def record_parameters(doc: dict) -> dict[str, IndexValue]:
    """The indexed parameters of a record document (what ``build_stored_record`` keeps)."""
    return index_values(parse_parameters(doc.get("parameters")).flat)


def display(value: Any) -> str:
    """A parameter value as text for tables and CSV (strings bare, the rest as JSON)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return "(nested too deep to show)" if isinstance(value, (dict, list)) else repr(value)
