"""The query language in SQL: a query tree as a WHERE condition over the index columns
and the JSON body, bound parameters only.

Parameters are read from ``records.parameters``, the flattened parameters as a JSON
object kept at PUT (revision 0008): a ``params.`` term compares the member's JSON type
and value, exactly as the reference evaluator does; a comparison with a number (but
``!=``) reads the ``record_numbers`` index instead. Where SQL cannot be exact (a
non-ASCII ``~`` needle; on SQLite a name JSON must escape), the term becomes TRUE where
the tree needs a superset (FALSE under a ``not``), and Python decides the candidates
from their stored parameters (see docs/query.md for what each costs).
"""

from __future__ import annotations

import operator
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy import (
    Float,
    Text,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.sql.elements import ColumnElement

from pyramid_sumatra.query import search as generic
from pyramid_sumatra.query.evaluate import ascii_lower
from pyramid_sumatra.query.fields import PARAMS_PREFIX, TEXT_FIELDS
from pyramid_sumatra.query.search import document, evaluate_pages
from pyramid_sumatra.query.tree import And, Compare, Exists, Has, In, Node, Not, Or
from pyramid_sumatra.storage.cursors import encode_cursor
from pyramid_sumatra.storage.types import RecordPage, RecordQuery, StoredRecord

from .schema import NUMBER_NAME_MAX, record_numbers, record_tags, records

if TYPE_CHECKING:
    from . import SqlAlchemyBackend


class _Sql:
    """Translation for one dialect ("sqlite" or "postgresql")."""

    def __init__(self, dialect: str):
        self.pg = dialect == "postgresql"

    def text(self, column) -> ColumnElement:
        # Code-point order and ASCII-only lower() on PostgreSQL, as on SQLite and Python.
        return column.collate("C") if self.pg else column

    def repeats(self) -> ColumnElement:
        """The body's ``repeats`` when it is a string, else NULL."""
        if self.pg:
            kind = func.json_typeof(func.json_extract_path(records.c.body, literal("repeats")))
            value = func.json_extract_path_text(records.c.body, literal("repeats"))
            return case((kind == "string", value), else_=None)
        kind = func.json_type(records.c.body, literal("$.repeats"))
        return case((kind == "text", func.json_extract(records.c.body, literal("$.repeats"))),
                    else_=None)

    def column(self, field: str) -> ColumnElement | None:
        if field in TEXT_FIELDS or field == "timestamp":
            return self.text(records.c[field])
        if field == "repeats":
            return self.text(cast(self.repeats(), Text))
        if field == "duration":
            return records.c.duration
        return None

    def parameter(self, name: str) -> tuple[ColumnElement, ColumnElement] | None:
        """(JSON type, value as SQL) of parameter ``name``, or None where SQL cannot
        name it exactly. The type is NULL when the record lacks the parameter; on SQLite
        one of integer, real, text, true, false, array; on PostgreSQL number, string,
        boolean, array."""
        column = records.c.parameters
        if self.pg:
            member = func.json_extract_path(column, literal(name, Text))
            return func.json_typeof(member), func.json_extract_path_text(
                column, literal(name, Text))
        # A quoted JSON path label matches the key's text as JSON writes it: names that
        # JSON escapes (quotes, backslashes, control characters) would not be found.
        if '"' in name or "\\" in name or any(c < " " for c in name):
            return None
        path = literal(f'$."{name}"', Text)
        return func.json_type(column, path), func.json_extract(column, path)

    def compare_parameter(self, kind, value, op: str, literal_value) -> ColumnElement:
        """``params.NAME op literal`` with the reference evaluator's rules, two-valued
        (a missing parameter is false, so that NOT makes it true)."""
        present = kind.is_not(None)
        if op == "~":
            text = self.text(value)
            needle = literal(ascii_lower(str(literal_value)), Text)
            found = (func.strpos(func.lower(text), needle) if self.pg
                     else func.instr(func.lower(text), needle))
            return and_(present, kind == ("string" if self.pg else "text"), found > 0)
        if isinstance(literal_value, bool):
            if op not in ("=", "!="):
                return false()
            wanted = literal_value if op == "=" else not literal_value
            if self.pg:
                return and_(present, kind == "boolean", value == ("true" if wanted else "false"))
            return and_(present, kind == ("true" if wanted else "false"))
        if isinstance(literal_value, int | float):
            if self.pg:  # CASE: the cast must not see text (AND's order is not guaranteed)
                is_number = kind == "number"
                number = case((is_number, cast(value, Float)), else_=None)
            else:
                is_number = kind.in_(("integer", "real"))
                number = value
            return and_(present, is_number, self.compare(number, op, literal_value))
        is_text = kind == ("string" if self.pg else "text")
        return and_(present, is_text, self.compare(self.text(value), op, literal_value))

    def number(self, name: str, op: str, literal_value) -> ColumnElement | None:
        """``params.NAME op number`` through the ``record_numbers`` index, or None when
        it cannot answer (``!=``, a name too long to be indexed, not a number)."""
        if op not in _RANGE or len(name) > NUMBER_NAME_MAX \
                or isinstance(literal_value, bool) or not isinstance(literal_value, int | float):
            return None
        # Correlated (the primary key (record_id, name) finds the row), not "id IN (rows of
        # the range)": a page ordered by time then walks the time index and stops when
        # full. 100,000 records, 10% matching: every label 57 ms, a page of 100 0.5 ms;
        # with IN 20 ms and 6.8 ms (each page sorted every match); the JSON 189 and 1.9.
        return exists(select(record_numbers.c.record_id).where(
            record_numbers.c.record_id == records.c.id, record_numbers.c.name == name,
            _RANGE[op](record_numbers.c.value, literal_value)))

    def parameter_term(self, node: Compare | In | Exists, positive: bool
                       ) -> tuple[ColumnElement, bool]:
        name = node.field[len(PARAMS_PREFIX):]
        found = self.parameter(name)
        if found is None:
            return (true() if positive else false()), False
        kind, value = found
        if isinstance(node, Exists):
            return kind.is_not(None), True
        if isinstance(node, In):
            return or_(*(self.number(name, "=", v)
                         if self.number(name, "=", v) is not None
                         else self.compare_parameter(kind, value, "=", v)
                         for v in node.values)).self_group(), True
        if node.op == "~" and not str(node.value).isascii():
            return (true() if positive else false()), False  # see translate()
        indexed = self.number(name, node.op, node.value)
        if indexed is not None:
            return indexed, True
        return self.compare_parameter(kind, value, node.op, node.value), True

    def compare(self, column, op: str, value) -> ColumnElement:
        if op == "~":
            needle = literal(ascii_lower(str(value)), Text)
            found = (func.strpos(func.lower(column), needle) if self.pg
                     else func.instr(func.lower(column), needle))
            return and_(column.is_not(None), found > 0)
        if op == "=":
            condition = column == value
        elif op == "!=":
            condition = column != value
        else:
            condition = {"<": column < value, "<=": column <= value, ">": column > value,
                         ">=": column >= value}[op]
        # Two-valued: NULL (a missing value) must be false, so that NOT makes it true.
        return and_(column.is_not(None), condition)

    def translate(self, node: Node, positive: bool) -> tuple[ColumnElement, bool]:
        """(condition, exact): exact, or a superset of the matches when ``positive``
        (a subset when not: it sits under an odd number of NOTs)."""
        if isinstance(node, And | Or):
            parts = [self.translate(item, positive) for item in node.items]
            combine = and_ if isinstance(node, And) else or_
            return combine(*(p[0] for p in parts)).self_group(), all(p[1] for p in parts)
        if isinstance(node, Not):
            condition, exact = self.translate(node.item, not positive)
            return not_(condition), exact
        if isinstance(node, Has):
            return self.tagged(record_tags.c.tag == node.tag), True
        field = node.field
        if field == "tags":  # tags exists
            return self.tagged(true()), True
        if field.startswith(PARAMS_PREFIX):
            return self.parameter_term(node, positive)
        column = self.column(field)
        if column is None:  # not a field (the parser refuses it): Python decides
            return (true() if positive else false()), False
        if isinstance(node, Exists):
            if field in TEXT_FIELDS:
                return column != "", True
            return column.is_not(None), True
        if not _fits(field, node):
            return false(), True  # e.g. duration = 'text': no record matches
        if isinstance(node, In):
            return or_(*(self.compare(column, "=", v) for v in node.values)), True
        assert isinstance(node, Compare)
        if node.op == "~" and not str(node.value).isascii():
            # `~` folds ASCII case only (the reference evaluator); the connection's lower()
            # folds Unicode (SQLite's is Python's): Python decides non-ASCII needles.
            return (true() if positive else false()), False
        return self.compare(column, node.op, node.value), True

    @staticmethod
    def tagged(condition) -> ColumnElement:
        return exists(select(record_tags.c.record_id).where(
            record_tags.c.record_id == records.c.id, condition))


#: Comparisons the ``record_numbers`` index answers.
_RANGE = {"=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt,
          ">=": operator.ge}


def _fits(field: str, node: Compare | In) -> bool:
    """Whether the literal(s) have the field's kind (the parser ensures it; a tree built
    by hand may not, and SQL must not cast)."""
    values = node.values if isinstance(node, In) else (node.value,)
    if field == "duration":
        return all(isinstance(v, float | int) and not isinstance(v, bool) for v in values)
    return all(isinstance(v, str) for v in values)


def _sort_value(record: StoredRecord, field: str):
    value = getattr(record, field)
    return -1.0 if field == "duration" and value is None else value


def _lean_body(pg: bool) -> ColumnElement:
    """``{"repeats": ...}`` as JSON text: all the evaluator needs beyond the index columns
    and the stored parameters, a hundredth of a body (~3 KB) to move and parse."""
    def part(key: str) -> ColumnElement:
        if pg:
            value = cast(func.json_extract_path(records.c.body, literal(key)), Text)
        else:  # "->" gives JSON text (json_extract would unquote a string)
            value = records.c.body.op("->")(literal(f"$.{key}"))
        return func.coalesce(value, literal("null", Text))

    return literal('{"repeats":', Text) + part("repeats") + literal("}", Text)


def _document(record: StoredRecord) -> dict:
    """The document the evaluator reads: index fields (derived from the body exactly as the
    evaluator derives them) and the lean body."""
    doc = document(record)
    doc.update(label=record.label, timestamp=record.timestamp, reason=record.reason,
               outcome=record.outcome, user=record.user, main_file=record.main_file,
               version=record.version, executable={"name": record.executable},
               duration=record.duration, tags=record.tags)
    return doc


def search(backend: SqlAlchemyBackend, project_id: str, query: RecordQuery,
           where: Node) -> RecordPage:
    sql = _Sql(backend.engine.dialect.name)
    condition, exact = sql.translate(where, True)
    if exact:
        return backend._query_records(project_id, query, condition)
    # SQL narrows; Python decides the candidates from their index fields and lean bodies.
    field = query.order.lstrip("-")

    def cursor_of(_inner, _index, _size, last: StoredRecord) -> str:
        return encode_cursor([_sort_value(last, field), last.label])

    lean = _lean_body(sql.pg)
    page = evaluate_pages(
        lambda q: backend._query_records(project_id, q, condition, body=lean, count=False),
        replace(query, with_body=False, labels_only=False, with_parameters=True), where,
        cursor_of=cursor_of,
        start=(query.cursor, 0, generic.FIRST_CHUNK), doc_of=_document)
    if query.with_body and page.records:
        bodies = _bodies(backend, project_id, [r.label for r in page.records])
        page.records = [replace(r, body=bodies[r.label]) for r in page.records]
    if query.labels_only:
        return RecordPage(records=[], labels=[r.label for r in page.records],
                          next_cursor=page.next_cursor, total=page.total)
    return page


def _bodies(backend: SqlAlchemyBackend, project_id: str, labels: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(labels), 500):
        found.update(backend.conn.execute(select(records.c.label, records.c.body).where(
            records.c.project_id == project_id,
            records.c.label.in_(labels[start:start + 500]))).all())
    return found
