"""A fresh, empty store per backend, removed afterwards."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgresql", "filesystem")


def missing(name: str) -> str | None:
    """Why backend ``name`` cannot run here, or None."""
    entry = "filesystem" if name == "filesystem" else "sqlalchemy"
    if entry not in {ep.name for ep in entry_points(group="pyramid_sumatra.backends")}:
        return f"entry point {entry!r} (group pyramid_sumatra.backends) is not installed"
    if name == "postgresql":
        try:
            import psycopg

            psycopg.connect(PG_ADMIN, connect_timeout=3).close()
        except Exception as exc:  # noqa: BLE001 - any failure means "not here"
            return f"PostgreSQL at 127.0.0.1:5432 is not reachable: {exc}"
    return None


@contextlib.contextmanager
def fresh_store(name: str, workdir: Path) -> Iterator[dict[str, str]]:
    """[app:main] settings of an empty store of backend ``name``."""
    if name == "sqlite":
        yield {"sumatra.backend": "sqlalchemy",
               "sqlalchemy.url": f"sqlite:///{workdir}/sumatra.sqlite"}
    elif name == "filesystem":
        yield {"sumatra.backend": "filesystem", "sumatra.filesystem.root": str(workdir / "fs")}
    elif name == "postgresql":
        import psycopg

        database = f"sumatra_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        try:
            yield {"sumatra.backend": "sqlalchemy",
                   "sqlalchemy.url": f"postgresql://postgres@127.0.0.1:5432/{database}"}
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    else:
        raise ValueError(f"unknown backend {name!r}; one of {', '.join(BACKENDS)}")


def vacuum_analyze(url: str) -> None:
    """``VACUUM ANALYZE`` a PostgreSQL store: the statistics and visibility map that
    autovacuum (on by default) gives a table soon after a bulk load. Without them the
    planner guesses a 100,000-record project at a few hundred rows, and index-only scans
    visit the table: the run would measure a state production is not in for long."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
