"""The parsed form of a record query: a small tree of frozen dataclasses.

Parsers build it, the reference evaluator (``evaluate.matches``) and backends'
translators read it. Values are already checked against their field's kind: a
``timestamp`` literal is normalised text, a ``duration`` literal a number.
"""

from __future__ import annotations

from dataclasses import dataclass

#: A literal: text, a number or a boolean (``true``/``false``).
Value = str | int | float | bool


@dataclass(frozen=True)
class Compare:
    """``field op value``; ``op`` is one of ``= != < <= > >= ~``."""

    field: str
    op: str
    value: Value


@dataclass(frozen=True)
class In:
    """``field in (v1, v2, ...)``: equal to any of the values."""

    field: str
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Has:
    """``tags has T``: the record carries tag ``T``."""

    tag: str


@dataclass(frozen=True)
class Exists:
    """``field exists``: the field has a value (see docs/query.md for each field)."""

    field: str


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Compare | In | Has | Exists | And | Or | Not
