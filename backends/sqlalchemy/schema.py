"""Tables of the SQLAlchemy backend: a record is its JSON document plus indexed columns.

Alembic migrations (``migrations/versions``) must produce exactly these tables;
``tests/test_migrations.py`` compares them. Change both together.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    cast,
)
from sqlalchemy.types import TypeDecorator, UserDefinedType


class PgJsonText(UserDefinedType):
    """PostgreSQL ``json``: validated on the way in, kept verbatim (no Python parsing)."""

    cache_ok = True

    def get_col_spec(self, **kw) -> str:
        return "JSON"


class JsonDocument(TypeDecorator):
    """A JSON document exchanged as text: TEXT on SQLite, ``json`` on PostgreSQL.

    PostgreSQL's ``json`` validates the document and keeps its text exactly as sent,
    so numbers survive digit for digit (``jsonb`` turned 6.68e+250 into a 251-digit
    integer) and key order is kept; ``->``/``->>`` still query it. Bodies go in as
    text cast to ``json`` and come out cast to text: never parsed in Python.
    PostgreSQL cannot hold NUL characters; ``records.build_stored_record`` refuses them.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(PgJsonText())
        return dialect.type_descriptor(Text())

    def column_expression(self, column):
        # Read the stored text as it is (psycopg would parse ``json`` into dicts).
        return cast(column, Text)


metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

users = Table(
    "users", metadata,
    Column("username", String(100), primary_key=True),
    Column("password_hash", String(255), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created", String(32), nullable=False),
    # Bumped to end every session of the user (revision 0004).
    Column("session_generation", Integer, nullable=False, default=0, server_default="0"),
    # Users who log in elsewhere (revision 0007): the source ("ldap", "oidc"), its profile.
    Column("source", String(16), nullable=True),
    Column("display_name", String(200), nullable=True),
    Column("email", String(200), nullable=True),
    # The groups an OpenID login reported, for the user's API tokens (revision 0009): a
    # JSON array of names, and when (NULL: none kept).
    Column("kept_groups", Text, nullable=True),
    Column("groups_seen", String(32), nullable=True),
)

#: Personal API tokens (revision 0004): the id is the token's public part, the key of
#: the per-request lookup; only the secret's SHA-256 is stored.
tokens = Table(
    "tokens", metadata,
    Column("id", String(32), primary_key=True),
    Column("username", String(100), ForeignKey("users.username", ondelete="CASCADE"),
           nullable=False),
    Column("name", String(64), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("scope", String(8), nullable=False),
    Column("projects", Text, nullable=False, default="[]"),  # JSON list of project ids
    Column("created", String(32), nullable=False),
    Column("expires", String(32), nullable=True),
    Column("last_used", String(32), nullable=True),
    UniqueConstraint("username", "name", name="uq_tokens_username_name"),
)

projects = Table(
    "projects", metadata,
    Column("id", String(100), primary_key=True),
    Column("name", Text, nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("created", String(32), nullable=False),
    Column("last_updated", String(32), nullable=False),
    Column("record_count", Integer, nullable=False, default=0),
)

grants = Table(
    "grants", metadata,
    Column("project_id", String(100), ForeignKey("projects.id", ondelete="CASCADE"),
           primary_key=True),
    Column("principal", String(100), primary_key=True),
    Column("role", String(16), nullable=False),
    Index("ix_grants_principal", "principal"),
)

records = Table(
    "records", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", String(100), ForeignKey("projects.id", ondelete="CASCADE"),
           nullable=False),
    Column("label", String(100), nullable=False),
    Column("body", JsonDocument, nullable=False),
    Column("revision", String(40), nullable=False),
    Column("timestamp", String(19), nullable=False),
    Column("user", Text, nullable=False, default=""),
    Column("main_file", Text, nullable=False, default=""),
    Column("version", Text, nullable=False, default=""),
    Column("executable", Text, nullable=False, default=""),
    Column("reason", Text, nullable=False, default=""),
    Column("outcome", Text, nullable=False, default=""),
    Column("duration", Float, nullable=True),
    # The flattened parameters as a JSON object (revision 0008), derived from the body at
    # PUT (StoredRecord.parameters): queries on ``params.`` and the plots read this.
    Column("parameters", JsonDocument, nullable=True),
    UniqueConstraint("project_id", "label", name="uq_records_project_label"),
    Index("ix_records_project_timestamp", "project_id", "timestamp", "label"),
)

record_tags = Table(
    "record_tags", metadata,
    Column("record_id", Integer, ForeignKey("records.id", ondelete="CASCADE"),
           primary_key=True),
    Column("tag", String(255), primary_key=True),
    Column("project_id", String(100), nullable=False),
    Index("ix_record_tags_project_tag", "project_id", "tag"),
)

#: Numeric parameters (revision 0008), one row per record and parameter, for the
#: index: a range over ``params.NAME`` reads the matching rows only (100,000 records:
#: ~20 ms instead of ~180 ms of reading every record's JSON). Names longer than
#: NUMBER_NAME_MAX are left out (an index entry has a size limit); such a term reads
#: ``records.parameters`` instead.
record_numbers = Table(
    "record_numbers", metadata,
    Column("record_id", Integer, ForeignKey("records.id", ondelete="CASCADE"),
           primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("project_id", String(100), nullable=False),
    Column("value", Float, nullable=False),
    Index("ix_record_numbers_project_name_value", "project_id", "name", "value"),
)
NUMBER_NAME_MAX = 200

#: History of records and projects (revision 0005): apart from them, without foreign
#: keys, so it outlives a delete (the trash restores it). ``label`` "" is the project's.
history = Table(
    "history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", String(100), nullable=False),
    Column("label", String(100), nullable=False),
    Column("at", String(32), nullable=False),
    Column("entry_id", String(32), nullable=False),
    Column("action", String(16), nullable=False),
    Column("user", Text, nullable=False, default=""),
    Column("token", Text, nullable=False, default=""),
    Column("changes", Text, nullable=False, default="{}"),  # JSON
    Column("revision_before", String(64), nullable=False, default=""),
    Column("revision_after", String(64), nullable=False, default=""),
    Index("ix_history_project_label_at", "project_id", "label", "at", "entry_id"),
)

#: Deleted records and projects (revision 0005); label "" is a whole project.
trash = Table(
    "trash", metadata,
    Column("project_id", String(100), primary_key=True),
    Column("label", String(100), primary_key=True),
    Column("deleted_at", String(32), primary_key=True),
    Column("deleted_by", Text, nullable=False, default=""),
    Column("revision", Text, nullable=False, default=""),
    Column("timestamp", String(32), nullable=False, default=""),
    Column("body", Text, nullable=False),
    Index("ix_trash_deleted_at", "deleted_at"),
)
