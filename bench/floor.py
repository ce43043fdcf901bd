"""The floor: what the prescribed stack reaches at its thinnest, GET and PUT.

The app Sumatra Server must be built from is Pyramid (traversal), pyramid_tm and
SQLAlchemy joined through zope.sqlalchemy. ``floor_app`` is that stack and nothing
else: GET ``/<project>/<label>/`` SELECTs one record body by label, PUT INSERTs the
request body, one transaction per request; no authentication, ACL, plugins,
negotiation, validation, ETags or access log. Served under the same
``[server:main]`` as the real app, against the same database (SQLite with the
backend's PRAGMAs, or PostgreSQL), it is the limit the real app is judged against:
``python -m bench`` measures it for each SQL backend in the same run.

``python -m bench.floor`` measures it alone, beside the bare WSGI ceilings.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import stores, wrk
from .servers import Server, free_port, write_ini
from .workload import body, label, template

#: Backends with a floor: the SQL ones (the filesystem backend has no such stack).
BACKENDS = ("sqlite", "postgresql")
#: The floor's one table, beside the backend's own tables in the same database.
TABLE = "floor_records"
PREFIX = "/floor/"


def _engine(url: str):
    """An engine like the backend's: SQLite in WAL with synchronous=FULL and a busy wait."""
    from sqlalchemy import create_engine, event

    if url.startswith("postgresql://"):  # the driver the backend uses (psycopg 3)
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    engine = create_engine(url)
    if url.startswith("sqlite"):
        @event.listens_for(engine, "connect")
        def pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000"):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()
    return engine


def floor_app(global_config: dict | None = None, **settings: Any):
    """PasteDeploy factory (``use = call:bench.floor:floor_app``, ``url = <SQLAlchemy URL>``)."""
    import zope.sqlalchemy
    from pyramid.config import Configurator
    from pyramid.response import Response
    from sqlalchemy import text
    from sqlalchemy.orm import scoped_session, sessionmaker

    select = text(f"SELECT body FROM {TABLE} WHERE label = :label")
    insert = text(f"INSERT INTO {TABLE} (label, body) VALUES (:label, :body)")
    # The engine connects lazily: nothing is opened before gunicorn forks its workers.
    session = scoped_session(sessionmaker(bind=_engine(settings["url"])))
    zope.sqlalchemy.register(session)

    class Record:
        def __init__(self, name: str):
            self.label = name

    class Project:
        def __init__(self, name: str):
            self.name = name

        def __getitem__(self, name: str) -> Record:
            return Record(name)

    class Root:
        def __init__(self, request):
            self.request = request

        def __getitem__(self, name: str) -> Project:
            return Project(name)

    def get(context: Record, request):
        found = session().execute(select, {"label": context.label}).scalar()
        if found is None:
            return Response(status=404)
        return Response(body=found.encode(), content_type="application/json")

    def put(context: Record, request):
        session().execute(insert, {"label": context.label, "body": request.body.decode()})
        # A Core statement does not mark the session changed: without this, zope.sqlalchemy
        # ROLLed BACK every floor PUT (no COMMIT, no fsync), a floor the app could not reach.
        zope.sqlalchemy.mark_changed(session())
        return Response(status=201, json_body={"stored": len(request.body)})

    with Configurator(settings={"tm.annotate_user": "false"}, root_factory=Root) as config:
        config.include("pyramid_tm")
        config.add_view(get, context=Record, request_method="GET")
        config.add_view(put, context=Record, request_method="PUT")
        return config.make_wsgi_app()


def prepare(url: str, count: int) -> None:
    """Create the floor's table in ``url`` and seed ``count`` records (labels as the GET
    scripts pick them)."""
    from sqlalchemy import text

    engine = _engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
            conn.execute(text(f"CREATE TABLE {TABLE} (label VARCHAR(200) PRIMARY KEY, "
                              "body TEXT NOT NULL)"))
            conn.execute(text(f"INSERT INTO {TABLE} (label, body) VALUES (:label, :body)"),
                         [{"label": label(i), "body": body("floor", label(i), i).decode()}
                          for i in range(count)])
    finally:
        engine.dispose()


def measure(url: str, workdir: Path, *, seconds: float, concurrency: int, count: int,
            body_file: Path) -> dict[str, wrk.Result]:
    """GET and PUT of the floor app over ``url`` (which :func:`prepare` seeded)."""
    port = free_port()
    ini = write_ini(workdir / "floor.ini", {"use": "call:bench.floor:floor_app", "url": url},
                    port)
    found = {}
    with Server(ini, port, workdir / "floor.log") as server:
        for kind, script, env in (
            ("GET", "get.lua", {"BENCH_COUNT": str(count), "BENCH_ACCEPT": "application/json"}),
            ("PUT", "put.lua", {"BENCH_BODY": str(body_file),
                                 "BENCH_RUN": secrets.token_hex(4)}),
        ):
            cpu = server.cpu_seconds()
            result = wrk.run(f"{kind} floor (thinnest stack)", server.url + "/", script,
                             concurrency=concurrency, seconds=seconds,
                             env={"BENCH_PREFIX": PREFIX, "BENCH_AUTH": "", **env})
            if result.requests:
                result.server_cpu_ms = round(
                    (server.cpu_seconds() - cpu) * 1000 / result.requests, 2)
            found[kind] = result
    return found


@contextlib.contextmanager
def _database(name: str, workdir: Path) -> Iterator[str]:
    with stores.fresh_store(name, workdir) as settings:
        yield settings["sqlalchemy.url"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="SQL backends to measure the floor on (sqlite,postgresql)")
    args = parser.parse_args(argv)
    problem = wrk.available()
    if problem:
        print(f"bench.floor: {problem}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="sumatra-floor-") as tmp:
        workdir = Path(tmp)
        body_file = workdir / "record.json"
        body_file.write_text(template("floor"))
        port = free_port()
        ini = write_ini(workdir / "ceiling.ini", {"use": "call:bench.ceilings:get_app"}, port)
        with Server(ini, port, workdir / "ceiling.log") as server:
            ceiling = [wrk.run("bare WSGI app (GET ceiling)", server.url + "/", "get.lua",
                               concurrency=8, seconds=args.seconds).rps
                       for _ in range(args.rounds)]
        ceiling_rps = sum(ceiling) / len(ceiling)
        print(f"bare WSGI app (GET ceiling): {ceiling_rps:.1f} req/s")
        for name in (b for b in args.backends.split(",") if b):
            why = stores.missing(name)
            if why:
                print(f"{name}: skipped: {why}")
                continue
            with _database(name, workdir) as url:
                prepare(url, 1000)
                for _ in range(args.rounds):
                    found = measure(url, workdir, seconds=args.seconds, concurrency=8,
                                    count=1000, body_file=body_file)
                    for kind, result in found.items():
                        print(f"{name} {kind} floor: {result.rps} req/s, p50 {result.p50_ms} "
                              f"ms, server CPU {result.server_cpu_ms} ms/request, "
                              f"{result.errors} errors")
                    print(f"{name} GET floor / GET ceiling: "
                          f"{found['GET'].rps / ceiling_rps:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
