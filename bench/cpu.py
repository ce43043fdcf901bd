"""``python -m bench.cpu``: CPU time and database round trips per request, in-process.

Builds the app (``pyramid_sumatra.main``) on a fresh store of each backend, adds a
user, seeds a project through the storage hooks, then calls the WSGI app directly
(no server, no network) with the requests ``python -m bench`` sends (HTTP Basic,
the same Accept headers) and reports, per scenario, the process CPU time per request
(``time.process_time``: it does not move with the load of a shared machine as
wall-clock time does) and, on PostgreSQL, the round trips to the server per request
(counted in libpq's protocol trace: one per ``ReadyForQuery``). The floor app of
``bench.floor`` is measured the same way beside it, for a CPU ratio.

``--profile DIR`` also writes a cProfile of each scenario (``DIR/<backend>-<name>.prof``).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from . import floor, stores
from .run import LIST_ACCEPT, PASSWORD, PROJECT, PROJECT_ACCEPT, RECORD_ACCEPT, USER
from .seed import basic_auth
from .workload import RARE_TAG, body, label, template

BACKENDS = ("sqlite", "postgresql")


class RoundTrips:
    """Counts PostgreSQL round trips of every connection an engine opens (libpq trace)."""

    def __init__(self, engine):
        self.engine = engine
        self.file = tempfile.TemporaryFile(mode="w+")
        self.traced: list = []
        if engine.dialect.name != "postgresql":
            return
        from psycopg import pq
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def trace(dbapi_connection, _record) -> None:
            dbapi_connection.pgconn.trace(self.file.fileno())
            dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            self.traced.append(dbapi_connection)

    @property
    def active(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def count(self) -> int:
        """Round trips so far: each ends with the server's ReadyForQuery."""
        self.file.flush()
        self.file.seek(0)
        found = sum(1 for line in self.file if line.startswith("B\t") and "ReadyForQuery" in line)
        self.file.seek(0, io.SEEK_END)
        return found

    def lines(self) -> list[str]:
        self.file.flush()
        self.file.seek(0)
        text = self.file.read().splitlines()
        self.file.seek(0, io.SEEK_END)
        return text


def environ(method: str, path: str, accept: str, auth: str | None,
            data: bytes | None = None, content_type: str | None = None) -> dict:
    from webob import Request

    req = Request.blank(path, method=method, headers={"Accept": accept})
    if auth:
        req.headers["Authorization"] = auth
    if data is not None:
        req.body = data
        req.content_type = content_type or "application/vnd.sumatra.record-v4+json"
    return req.environ


def call(app, env: dict) -> tuple[int, bytes]:
    """One request through the WSGI app; its status and body."""
    status: list[str] = []

    def start_response(s, headers, exc_info=None):
        status.append(s)

    env = dict(env)
    if "wsgi.input" in env:  # a fresh body stream per call
        env["wsgi.input"] = io.BytesIO(env["_body"]) if "_body" in env else env["wsgi.input"]
    result = app(env, start_response)
    try:
        data = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close:
            close()
    return int(status[0].split()[0]), data


def _request(method: str, path: str, accept: str, auth: str | None,
             data: bytes | None = None, content_type: str | None = None) -> dict:
    env = environ(method, path, accept, auth, data, content_type)
    if data is not None:
        env["_body"] = data
    return env


def measure(app, name: str, make: Callable[[int], dict], count: int, trips: RoundTrips | None,
            profile_dir: Path | None, expect: tuple[int, ...] = (200,)) -> dict:
    """CPU time and round trips per request over ``count`` requests (after 3 to warm up)."""
    envs = [make(i) for i in range(count + 3)]
    for env in envs[:3]:
        code, data = call(app, env)
        assert code in expect, (name, code, data[:300])
    before_trips = trips.count() if trips and trips.active else None
    profiler = cProfile.Profile() if profile_dir else None
    started = time.process_time()
    wall = time.perf_counter()
    if profiler:
        profiler.enable()
    for env in envs[3:]:
        code, data = call(app, env)
        if code not in expect:
            raise AssertionError(f"{name}: {code} {data[:300]!r}")
    if profiler:
        profiler.disable()
    cpu = time.process_time() - started
    wall = time.perf_counter() - wall
    found = {"scenario": name, "requests": count, "cpu_us": round(cpu * 1e6 / count, 1),
             "wall_us": round(wall * 1e6 / count, 1), "bytes": len(data)}
    if before_trips is not None:
        found["round_trips"] = round((trips.count() - before_trips) / count, 2)
    if profiler:
        profile_dir.mkdir(parents=True, exist_ok=True)
        slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
        profiler.dump_stats(str(profile_dir / f"{slug}.prof"))
    return found


def _seed(storage, project: str, start: int, stop: int) -> None:
    import transaction

    from pyramid_sumatra.records import build_stored_record

    for chunk in range(start, stop, 1000):
        with transaction.manager:
            for i in range(chunk, min(chunk + 1000, stop)):
                storage.put_record(build_stored_record(project, json.loads(
                    body(project, label(i), i))), create=True)


@contextlib.contextmanager
def app_on(name: str, workdir: Path) -> Iterator[tuple]:
    import transaction

    import pyramid_sumatra
    from pyramid_sumatra.services.users import add_user

    with stores.fresh_store(name, workdir) as settings:
        app = pyramid_sumatra.main({}, **settings, **{"sumatra.initdb": "true",
                                                      "sumatra.secret": "s" * 32})
        storage = app.registry["sumatra.storage"]
        try:
            with transaction.manager:
                add_user(storage, USER, PASSWORD)
            yield app, storage, settings
        finally:
            storage.dispose()


def _backend_engine(storage):
    for plugin in storage.pm.get_plugins():
        if hasattr(plugin, "engine"):
            return plugin.engine
    return None


def run_backend(name: str, args: argparse.Namespace, workdir: Path) -> list[dict]:
    auth = basic_auth(USER, PASSWORD)
    results: list[dict] = []
    n = args.requests
    put_body = template("bench-w")
    profile_dir = args.profile / name if args.profile else None
    with app_on(name, workdir) as (app, storage, settings):
        engine = _backend_engine(storage)
        trips = RoundTrips(engine) if engine is not None else None
        if engine is not None:
            engine.dispose()  # every connection from now on is traced
        for project in (PROJECT, "bench-w"):
            code, data = call(app, _request(
                "PUT", f"/{project}/", PROJECT_ACCEPT, auth,
                json.dumps({"name": project, "description": "benchmark"}).encode(),
                "application/vnd.sumatra.project-v4+json"))
            assert code in (200, 201), data
        levels = [int(x) for x in args.levels.split(",")]
        seeded = 0
        for level in levels:
            _seed(storage, PROJECT, seeded, level)
            seeded = level
            if args.analyze and name == "postgresql":
                stores.vacuum_analyze(settings["sqlalchemy.url"])

            def add(result: dict, level: int = level) -> None:
                result["backend"], result["level"] = name, level
                results.append(result)
                trips_text = (f", {result['round_trips']} round trips"
                              if "round_trips" in result else "")
                print(f"{name} {result['scenario']} ({level} records): {result['cpu_us']} us "
                      f"CPU/request ({result['wall_us']} us wall){trips_text}", flush=True)

            if level == levels[0]:
                add(measure(app, "GET record", lambda i, level=level: _request(
                    "GET", f"/{PROJECT}/{label((i * 7919) % level)}/", RECORD_ACCEPT, auth),
                    n, trips, profile_dir and profile_dir / str(level)))
                add(measure(app, "PUT new record", lambda i, level=level: _request(
                    "PUT", f"/bench-w/w{os.getpid()}-{level}-{i}/", RECORD_ACCEPT, auth,
                    put_body.replace("@@LABEL@@", f"w{os.getpid()}-{level}-{i}").encode()),
                    n, trips, profile_dir and profile_dir / str(level), expect=(201,)))
                add(measure(app, "GET / (project list)", lambda i: _request(
                    "GET", "/", LIST_ACCEPT, auth), n, trips,
                    profile_dir and profile_dir / str(level)))
            few = max(3, min(n, 20000 // max(level // 100, 1)))
            add(measure(app, "GET project", lambda i: _request(
                "GET", f"/{PROJECT}/", PROJECT_ACCEPT, auth), few, trips,
                profile_dir and profile_dir / str(level)))
            add(measure(app, f"GET project ?tags={RARE_TAG}", lambda i: _request(
                "GET", f"/{PROJECT}/?tags={RARE_TAG}", PROJECT_ACCEPT, auth),
                max(3, few * 5), trips, profile_dir and profile_dir / str(level)))
        if args.floor:
            results += run_floor(name, settings, n, profile_dir, levels[0])
    return results


def run_floor(name: str, settings: dict, n: int, profile_dir: Path | None,
              count: int) -> list[dict]:
    """The floor app of bench.floor, called in-process like the real one."""
    url = settings["sqlalchemy.url"]
    floor.prepare(url, count)
    app = floor.floor_app({}, url=url)
    results = []
    put_body = template("floor")
    for scenario, make, expect in (
        ("GET floor", lambda i: _request("GET", f"/floor/{label((i * 7919) % count)}/",
                                         "application/json", None), (200,)),
        ("PUT floor", lambda i: _request("PUT", f"/floor/f{os.getpid()}-{i}/",
                                         "application/json", None,
                                         put_body.replace("@@LABEL@@", f"f{i}").encode()),
         (201,)),
    ):
        result = measure(app, scenario, make, n, None, profile_dir, expect)
        result["backend"], result["level"] = name, count
        print(f"{name} {scenario}: {result['cpu_us']} us CPU/request", flush=True)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--levels", default="1000,100000",
                        help="records in the project when measured (GET record and PUT at the "
                             "first level, the project listing at each)")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--no-floor", dest="floor", action="store_false")
    parser.add_argument("--analyze", action="store_true",
                        help="VACUUM ANALYZE a PostgreSQL store after seeding each level")
    parser.add_argument("--profile", type=Path, help="write cProfile files under this directory")
    parser.add_argument("--output", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    results = []
    for name in (b for b in args.backends.split(",") if b):
        if name not in BACKENDS:
            print(f"{name}: not an SQL backend ({', '.join(BACKENDS)})", file=sys.stderr)
            return 2
        why = stores.missing(name)
        if why:
            print(f"{name}: skipped: {why}")
            continue
        with tempfile.TemporaryDirectory(prefix="sumatra-cpu-") as tmp:
            results += run_backend(name, args, Path(tmp))
    if args.output:
        args.output.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
