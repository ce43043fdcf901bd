"""``python -m bench.floor``: what the prescribed stack reaches at its thinnest.

The GET target (record ≥ 0.5 of a bare WSGI app) is judged against an app that does
nothing. This measures, under the same ``[server:main]`` and next to that ceiling, an
app of the stack Sumatra Server must use at its thinnest: Pyramid traversal,
pyramid_tm, a zope.sqlalchemy session and one SELECT of a record body by label (no
authentication, ACL, plugins, negotiation or access log). Its ratio bounds from above
what the real app can reach on this machine.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import wrk
from .servers import Server, free_port, write_ini
from .workload import body, label


def floor_app(global_config: dict | None = None, **settings: Any):
    """PasteDeploy factory (``use = call:bench.floor:floor_app``, ``database = PATH``)."""
    import zope.sqlalchemy
    from pyramid.config import Configurator
    from pyramid.response import Response
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import scoped_session, sessionmaker

    query = text("SELECT body FROM records WHERE label = :label")
    session = scoped_session(sessionmaker(bind=create_engine(f"sqlite:///{settings['database']}")))
    zope.sqlalchemy.register(session, initial_state="changed")

    class Record:
        def __init__(self, name: str):
            self.label = name

    class Root:
        def __init__(self, request):
            self.request = request

        def __getitem__(self, name: str) -> Record:
            return Record(name)

    def view(context: Record, request):
        found = session().connection().execute(query, {"label": context.label}).scalar()
        return Response(body=found.encode(), content_type="application/json")

    with Configurator(settings={"tm.annotate_user": "false"}, root_factory=Root) as config:
        config.include("pyramid_tm")
        config.add_view(view, context=Record)
        return config.make_wsgi_app()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sumatra-floor-") as tmp:
        workdir = Path(tmp)
        database = workdir / "floor.sqlite"
        with sqlite3.connect(database) as db:
            db.execute("CREATE TABLE records (label TEXT PRIMARY KEY, body TEXT NOT NULL)")
            db.executemany("INSERT INTO records VALUES (?, ?)",
                           [(label(i), body("bench", label(i), i).decode()) for i in range(1000)])
        rates: dict[str, list[float]] = {}
        for name, use in (("bare WSGI app (GET ceiling)", "call:bench.ceilings:get_app"),
                          ("thinnest Pyramid + SQLAlchemy app", "call:bench.floor:floor_app")):
            port = free_port()
            ini = write_ini(workdir / "floor.ini", {"use": use, "database": str(database)}, port)
            with Server(ini, port, workdir / "floor.log") as server:
                for _ in range(args.rounds):
                    cpu = server.cpu_seconds()
                    result = wrk.run(name, server.url + "/", "get.lua", concurrency=8,
                                     seconds=args.seconds,
                                     env={"BENCH_PREFIX": "/", "BENCH_COUNT": "1000",
                                          "BENCH_ACCEPT": "application/json",
                                          "BENCH_AUTH": "", "BENCH_RUN": "floor"})
                    spent = (server.cpu_seconds() - cpu) * 1000 / max(result.requests, 1)
                    print(f"{name}: {result.rps} req/s, p50 {result.p50_ms} ms, "
                          f"server CPU {spent:.2f} ms/request, {result.errors} errors")
                    rates.setdefault(name, []).append(result.rps)
        ceiling, floor = (sum(r) / len(r) for r in rates.values())
        print(f"thinnest app / ceiling: {floor / ceiling:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
