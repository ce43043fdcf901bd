"""The reference evaluator: does a record document match a query tree?

Every backend must select exactly the records this function accepts (the contract
suite checks it). The rules, also in docs/query.md:

* a field the record has no value for makes every comparison on it false
  (``!=`` too); ``not`` then makes it true;
* a comparison needs a value of the literal's kind: numbers compare with numbers,
  text with text, ``true``/``false`` with booleans; otherwise it is false;
* text compares by code point; ``~`` is "contains", ignoring ASCII case only;
* ``exists`` is true when the field has a value (the text fields: a non-empty one;
  tags: at least one).
"""

from __future__ import annotations

import operator
from typing import Any

from .fields import MISSING, TEXT_FIELDS, RecordValues
from .tree import And, Compare, Exists, Has, In, Node, Not, Or, Value

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only, as SQLite's lower() and PostgreSQL's under "C" do."""
    return text.translate(_ASCII_LOWER)


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return None


def compare(value: Any, op: str, literal: Value) -> bool:
    """``value op literal`` under the rules above (``value`` may be MISSING)."""
    if value is MISSING:
        return False
    if op == "~":
        return isinstance(value, str) and ascii_lower(str(literal)) in ascii_lower(value)
    kind = _kind(value)
    if kind is None or kind != _kind(literal):
        return False
    if op == "=":
        return value == literal
    if op == "!=":
        return value != literal
    if kind == "bool":
        return False
    return _ORDER[op](value, literal)


def _exists(field: str, value: Any) -> bool:
    if field in TEXT_FIELDS or field == "tags":
        return bool(value)
    return value is not MISSING


def evaluate(node: Node, values: RecordValues) -> bool:
    if isinstance(node, Compare):
        return compare(values.get(node.field), node.op, node.value)
    if isinstance(node, And):
        return all(evaluate(item, values) for item in node.items)
    if isinstance(node, Or):
        return any(evaluate(item, values) for item in node.items)
    if isinstance(node, Not):
        return not evaluate(node.item, values)
    if isinstance(node, In):
        value = values.get(node.field)
        return any(compare(value, "=", v) for v in node.values)
    if isinstance(node, Has):
        return node.tag in values.get("tags")
    if isinstance(node, Exists):
        return _exists(node.field, values.get(node.field))
    raise TypeError(f"not a query node: {node!r}")


def matches(node: Node, doc: dict, parameters: dict | None = None) -> bool:
    """Whether the record document ``doc`` satisfies the query tree ``node``
    (``parameters``: the record's stored flat parameters, if known)."""
    return evaluate(node, RecordValues(doc, parameters))


def uses_parameters(node: Node) -> bool:
    """Whether any term names a ``params.`` field (SQL cannot decide those)."""
    if isinstance(node, And | Or):
        return any(uses_parameters(item) for item in node.items)
    if isinstance(node, Not):
        return uses_parameters(node.item)
    return isinstance(node, Compare | In | Exists) and node.field.startswith("params.")
