"""Schema migrations of the SQLAlchemy backend: Alembic, run from code.

``sumatra_initialize_storage`` calls :func:`upgrade`; developers and operators may
also use the command line (``alembic -c backends/sqlalchemy/alembic.ini ...``).
"""

from __future__ import annotations

import functools

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

from .schema import metadata

SCRIPT_LOCATION = "pyramid_sumatra_backends.sqlalchemy:migrations"
#: The schema ``metadata.create_all`` made before there were migrations.
BASELINE = "0001"
#: Any constant: PostgreSQL advisory lock that lets one process migrate at a time.
_LOCK_KEY = 0x5A7A


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


@functools.cache
def scripts() -> ScriptDirectory:
    """The migration scripts (read once per process: they do not change)."""
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    return scripts().get_current_head()


def current(connection: Connection) -> str | None:
    """The revision of the database, or None (empty, or created without Alembic)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Bring the database to ``revision``; return the revision it is at.

    A database whose tables were made by ``metadata.create_all`` (no
    ``alembic_version``) is first stamped as the baseline, then upgraded.
    Concurrent callers (several app processes starting) migrate one at a time.
    """
    target = head() if revision == "head" else revision
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
        at = current(conn)
        if at == target:
            return at
        if at is None and target == head() and not inspect(conn).get_table_names():
            # An empty database: create the newest schema at once (Alembic's own recipe;
            # tests/test_migrations.py proves it equals running every migration).
            metadata.create_all(conn)
            MigrationContext.configure(conn).stamp(scripts(), target)
            return target
        config = alembic_config(conn)
        if at is None and inspect(conn).has_table("records"):
            command.stamp(config, BASELINE)
        command.upgrade(config, target)
        return current(conn) or ""
