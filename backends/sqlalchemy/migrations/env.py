"""Alembic environment of the SQLAlchemy backend.

From code, :mod:`pyramid_sumatra_backends.sqlalchemy.migrate` passes an open connection in
``config.attributes["connection"]``. From the command line the database URL is
``-x url=...``, else ``SUMATRA_DATABASE_URL``, else ``sqlalchemy.url`` of alembic.ini.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool

from pyramid_sumatra_backends.sqlalchemy.schema import metadata

config = context.config


def database_url() -> str:
    url = (context.get_x_argument(as_dictionary=True).get("url")
           or os.environ.get("SUMATRA_DATABASE_URL")
           or config.get_main_option("sqlalchemy.url"))
    if not url:
        raise SystemExit("no database: pass -x url=... or set SUMATRA_DATABASE_URL")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if config.attributes.get("connection") is not None:
    run(config.attributes["connection"])
elif context.is_offline_mode():  # alembic upgrade --sql: print the SQL
    context.configure(url=database_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        run(connection)
    engine.dispose()
