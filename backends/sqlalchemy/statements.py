"""SQL statements used on every request, built once at import (see the comment below)."""

from __future__ import annotations

from sqlalchemy import and_, bindparam, delete, func, insert, select, update

from .schema import grants, projects, record_numbers, record_tags, records, users

_SUMMARY_COLUMNS = [records.c[name] for name in (
    "id", "project_id", "label", "revision", "timestamp", "user", "main_file", "version",
    "executable", "reason", "outcome", "duration")]

# Statements of the per-request paths, built once: building a select() and its cache
# key cost ~230 us a call, five times what executing it costs (see CHANGES.rst).

def _get_record_statement(dialect: str):
    """One record with its tags as a JSON array: one query instead of two."""
    aggregate = func.json_agg if dialect == "postgresql" else func.json_group_array
    tags = select(aggregate(record_tags.c.tag)).where(
        record_tags.c.record_id == records.c.id).scalar_subquery()
    return select(*_SUMMARY_COLUMNS, records.c.body, records.c.parameters,
                  tags.label("tags")).where(
        records.c.project_id == bindparam("b_project"), records.c.label == bindparam("b_label"))


_RECORD_ID = select(records.c.id).where(
    records.c.project_id == bindparam("b_project"), records.c.label == bindparam("b_label"))
_INSERT_RECORD = insert(records)
_UPDATE_RECORD = update(records).where(records.c.id == bindparam("b_id"))
_DELETE_TAGS = delete(record_tags).where(record_tags.c.record_id == bindparam("b_id"))
_INSERT_TAGS = insert(record_tags)
_DELETE_NUMBERS = delete(record_numbers).where(record_numbers.c.record_id == bindparam("b_id"))
_INSERT_NUMBERS = insert(record_numbers)
_TOUCH_PROJECT = update(projects).where(projects.c.id == bindparam("b_project")).values(
    last_updated=bindparam("b_now"))
_COUNT_NEW_RECORD = _TOUCH_PROJECT.values(record_count=projects.c.record_count + 1)
# The project with its grants (one row per grant; one row of NULLs when there are none):
# the permission check needs both, on every request.
_GET_PROJECT = select(projects, grants.c.principal, grants.c.role).select_from(
    projects.outerjoin(grants, grants.c.project_id == projects.c.id)).where(
    projects.c.id == bindparam("b_project"))
_ALL_PROJECTS = select(projects).order_by(projects.c.last_updated.desc(), projects.c.id)
_PROJECTS_GRANTED = _ALL_PROJECTS.where(projects.c.id.in_(select(grants.c.project_id).where(
    grants.c.principal.in_(bindparam("b_principals", expanding=True)))))
_GET_GRANTS = select(grants.c.principal, grants.c.role).where(
    grants.c.project_id == bindparam("b_project"))
_GET_USER = select(users).where(users.c.username == bindparam("b_username"))


def _get_project_record_statement(dialect: str, with_user: bool = False):
    """The project, its grants (a JSON array of [principal, role]) and the record with its
    tags (columns NULL when absent): one row, one query, where a record request made three.
    ``with_user``: also the columns of the user ``b_username`` (``u_*``, NULL when there
    is no such user), which the request authenticates as next."""
    pg = dialect == "postgresql"
    aggregate = func.json_agg if pg else func.json_group_array
    pair = func.json_build_array if pg else func.json_array
    granted = select(aggregate(pair(grants.c.principal, grants.c.role))).where(
        grants.c.project_id == projects.c.id).scalar_subquery()
    tags = select(aggregate(record_tags.c.tag)).where(
        record_tags.c.record_id == records.c.id).scalar_subquery()
    record_columns = [c for c in _SUMMARY_COLUMNS if c.name not in ("id", "project_id")]
    joined = projects.outerjoin(records, and_(
        records.c.project_id == projects.c.id, records.c.label == bindparam("b_label")))
    user_columns = []
    if with_user:
        joined = joined.outerjoin(users, users.c.username == bindparam("b_username"))
        user_columns = [c.label(f"u_{c.name}") for c in users.c]
    return select(
        projects.c.id, projects.c.name, projects.c.description, projects.c.created,
        projects.c.last_updated, projects.c.record_count, granted.label("grants"),
        *record_columns, records.c.body, records.c.parameters, tags.label("tags"),
        *user_columns,
    ).select_from(joined).where(projects.c.id == bindparam("b_project"))


def _create_record_statement():
    """PostgreSQL: a new record, its tags and its project's count and time in one
    statement (data-modifying CTEs, all run whatever the main query reads): one round
    trip where a PUT of a new record made three. Returns the record's id."""
    from sqlalchemy import Float, String, column, true
    from sqlalchemy.dialects.postgresql import ARRAY

    columns = [c for c in records.c if c.name != "id"]
    new = insert(records).values(
        {c.name: bindparam(f"v_{c.name}", type_=c.type) for c in columns}
    ).returning(records.c.id).cte("new_record")
    tagged = insert(record_tags).from_select(
        ["record_id", "tag", "project_id"],
        select(new.c.id, func.unnest(bindparam("b_tags", type_=ARRAY(String))),
               bindparam("b_tag_project", type_=String))).cte("new_tags")
    # The numeric parameters: two arrays unnested side by side (names, values).
    pairs = func.unnest(bindparam("b_number_names", type_=ARRAY(String)),
                        bindparam("b_number_values", type_=ARRAY(Float))).table_valued(
                            column("name", String), column("value", Float)
                        ).render_derived()
    numbered = insert(record_numbers).from_select(
        ["record_id", "project_id", "name", "value"],
        select(new.c.id, bindparam("b_tag_project", type_=String), pairs.c.name,
               pairs.c.value).select_from(new).join(pairs, true())).cte("new_numbers")
    counted = _COUNT_NEW_RECORD.cte("counted")
    return select(new.c.id).add_cte(tagged, numbered, counted)
