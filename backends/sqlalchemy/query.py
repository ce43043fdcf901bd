"""The query builder: ``sumatra_query_records`` as SQL, and turning its rows into records."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import and_, func, literal, or_, select

from pyramid_sumatra.storage.cursors import decode_cursor, encode_cursor
from pyramid_sumatra.storage.hookspecs import hookimpl
from pyramid_sumatra.storage.types import (
    SORTABLE,
    RecordPage,
    RecordQuery,
    StoredRecord,
)

from .errors import translate_errors
from .schema import record_tags, records
from .statements import _SUMMARY_COLUMNS


class RecordQueries:
    """The backend's record selection (a mixin of :class:`SqlAlchemyBackend`)."""

    @hookimpl
    @translate_errors
    def sumatra_query_records(self, project_id: str, query: RecordQuery) -> RecordPage:
        return self._query_records(project_id, query)

    def _query_records(self, project_id: str, query: RecordQuery, where=None, body=None,
                       count: bool = True) -> RecordPage:
        """The records ``query`` selects. For search.py: ``where``, one more condition;
        ``body``, an expression read instead of the body; ``count=False``, no total."""
        descending = query.order.startswith("-")
        field = query.order.lstrip("-")
        if field not in SORTABLE:
            raise ValueError(f"cannot order by {field!r}; one of {', '.join(SORTABLE)}")
        key = func.coalesce(records.c.duration, -1.0) if field == "duration" else records.c[field]
        conditions = [records.c.project_id == project_id]
        tagged = [record_tags.c.project_id == project_id, record_tags.c.tag.in_(query.tags)] \
            if query.tags else []
        tag_filter = records.c.id.in_(select(record_tags.c.record_id).where(*tagged))
        if tagged:
            conditions.append(tag_filter)
        if query.text:
            # A plain substring: LIKE's wildcards in the text are escaped.
            text = query.text.lower().replace("\\", "\\\\").replace("%", "\\%") \
                .replace("_", "\\_")
            pattern = f"%{text}%"
            conditions.append(or_(*(func.lower(records.c[c]).like(pattern, escape="\\")
                                    for c in ("label", "reason", "outcome"))))
        for name in ("user", "main_file"):
            if getattr(query, name):
                conditions.append(records.c[name] == getattr(query, name))
        if query.since:
            conditions.append(records.c.timestamp >= query.since)
        if query.until:
            conditions.append(records.c.timestamp <= query.until)
        if where is not None:
            conditions.append(where)
        total = None
        if count and query.count_total and (query.limit is not None or query.cursor):
            total = self.db.execute(select(func.count()).select_from(records).where(
                *conditions)).scalar_one()
        if query.limit == 0:  # a count: no records, no cursor
            return RecordPage(records=[], total=total)
        if query.cursor:
            value, label = decode_cursor(query.cursor, numeric=field == "duration")
            if descending:
                conditions.append(or_(key < value, and_(key == value, records.c.label < label)))
            else:
                conditions.append(or_(key > value, and_(key == value, records.c.label > label)))
        labels_only = query.labels_only and not query.with_body
        if labels_only:  # the covering index (project_id, timestamp, label) answers alone
            columns = [records.c.label] + ([records.c[field]] if field != "label" else [])
        else:
            columns = list(_SUMMARY_COLUMNS)
        if query.with_body:
            columns.append(records.c.body if body is None else body.label("body"))
        if query.with_parameters and not labels_only:
            columns.append(records.c.parameters)
        order = [key.desc(), records.c.label.desc()] if descending else [key.asc(),
                                                                           records.c.label.asc()]
        stmt = select(*columns).where(*conditions).order_by(*order)
        if labels_only and query.limit is None:  # the whole project: every label, no cursor
            labels_of = select(records.c.label)
            if tagged:
                # From the tag index to the records (GROUP BY: a record having two of the
                # tags once): SQLite otherwise scans every record of the project and
                # tests the IN; 10,000 records: 6.8 ms -> 0.9 ms.
                labels_of = labels_of.select_from(records.join(
                    record_tags, record_tags.c.record_id == records.c.id)).where(
                    *tagged).group_by(records.c.id)
                conditions = [c for c in conditions if c is not tag_filter]
            text, total = self._joined_labels(labels_of.where(*conditions).order_by(*order))
            return RecordPage(records=[], labels_text=text, total=total)
        if query.limit is not None:
            stmt = stmt.limit(query.limit + 1)
        rows = self.db.execute(stmt).all()
        next_cursor = None
        if query.limit is not None and len(rows) > query.limit:
            rows = rows[:query.limit]
            last = rows[-1]
            sort_value = -1.0 if field == "duration" and last.duration is None \
                else getattr(last, field)
            next_cursor = encode_cursor([sort_value, last.label])
        if total is None:
            total = len(rows)
        if labels_only:
            return RecordPage(records=[], labels=[r.label for r in rows],
                              next_cursor=next_cursor, total=total)
        tags = self._tags_for_rows(project_id, rows)
        return RecordPage(
            records=[self._to_record(r, tags.get(r.id, []), query.with_body) for r in rows],
            next_cursor=next_cursor, total=total)

    def _joined_labels(self, stmt) -> tuple[str, int]:
        """The labels ``stmt`` selects, in its order, joined by "\\n"; and how many.

        The database joins them (string_agg, group_concat): one row, one string, where
        100,000 rows cost psycopg and the list of them ~150 ms on PostgreSQL. The
        aggregate reads the ordered subquery in its order (the index's, no sort):
        PostgreSQL documents this use, and SQLite does not flatten an ordered subquery
        under an aggregate.
        """
        ordered = stmt.subquery()
        if self.conn.dialect.name == "postgresql":
            joined = func.string_agg(ordered.c.label, literal("\n"))
        else:
            joined = func.group_concat(ordered.c.label, literal("\n"))
        text, count = self.conn.execute(select(joined, func.count())).one()
        return text or "", count

    def _tags_for_rows(self, project_id: str, rows) -> dict[int, list[str]]:
        if not rows:
            return {}
        if len(rows) <= 500:
            return self._tags_of([r.id for r in rows])
        if len(rows) <= 4000:  # a page of a query (expand=records): not the whole project's
            ids = [r.id for r in rows]
            found: dict[int, list[str]] = {}
            for start in range(0, len(ids), 500):
                found.update(self._tags_of(ids[start:start + 500]))
            return found
        result: dict[int, list[str]] = {}
        for record_id, tag in self.db.execute(select(record_tags.c.record_id, record_tags.c.tag)
                                              .where(record_tags.c.project_id == project_id)):
            result.setdefault(record_id, []).append(tag)
        return result

    def _tags_of(self, ids: list[int]) -> dict[int, list[str]]:
        result: dict[int, list[str]] = {}
        for record_id, tag in self.db.execute(select(record_tags.c.record_id, record_tags.c.tag)
                                              .where(record_tags.c.record_id.in_(ids))):
            result.setdefault(record_id, []).append(tag)
        return result

    @staticmethod
    def _to_record(row, tags: list[str], with_body: bool,
                   project_id: str | None = None) -> StoredRecord:
        """A record from a row of record columns (``project_id`` when the row has none)."""
        return StoredRecord(
            project_id=project_id or row.project_id, label=row.label,
            body=row.body if with_body else None, revision=row.revision,
            timestamp=row.timestamp, tags=sorted(tags), user=row.user,
            main_file=row.main_file, version=row.version, executable=row.executable,
            reason=row.reason, outcome=row.outcome, duration=row.duration,
            parameters=json_value(row._mapping.get("parameters")))


def json_value(value: Any) -> Any:
    """A JSON column's or aggregate's value: psycopg decodes ``json`` itself; SQLite gives
    the text."""
    return orjson.loads(value) if isinstance(value, str) else value
