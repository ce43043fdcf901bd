"""What a query costs: ``python -m bench.query [--backends sqlite,postgresql,filesystem]
[--sizes 10000,100000] [--repeats 7]``.

Seeds a public project through the storage hooks (``bench.seed.seed_direct``, in
another process, bench/workload.py's ~3 KB records), then calls the app in-process
(a WSGI call, no server) and reports per request the CPU time of this process
(``time.process_time``: the machine is shared, wall time is noise; a PostgreSQL
server's own CPU is not in it) and the wall time, medians of ``--repeats``:

* ``duration``: a range over an indexed field SQL decides (10% of the records);
* ``param``: a range over a parameter (``params.learning_rate``, 10%): SQL decides it
  from the parameters kept at PUT (``record_numbers``); the filesystem backend's
  fallback reads every record file (its kept parameters, no parsing);
* each as the list of labels (``?q=``), as whole records (``&expand=records``,
  one JSON page of at most 1,000) and as NDJSON (every match, streamed);
* ``plotdata``: ``@@plotdata`` of the first 10,000 records (the plots' fetch).

Prints one JSON object. Independent of the test suite.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import transaction

from .seed import seed_direct
from .servers import write_ini
from .stores import fresh_store, missing

PROJECT = "QueryBench"
QUERIES = {
    # duration = 12.5 + (i % 100) / 10: [13.5, 14.5) is i % 100 in 10..19
    "duration": "duration >= 13.5 and duration < 14.5",
    # learning_rate = 0.001 * (1 + i % 10): 0.003 is i % 10 == 2
    "param": "params.learning_rate > 0.0025 and params.learning_rate < 0.0035",
}


def _call(app, query: str, accept: str = "application/json") -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, bytes) of one GET, the body read to its end."""
    path, _, qs = query.partition("?")
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": qs,
               "HTTP_ACCEPT": accept, "SERVER_NAME": "bench", "SERVER_PORT": "80",
               "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr}
    status: list[str] = []
    cpu, wall = time.process_time(), time.perf_counter()
    result = app(environ, lambda s, h, e=None: status.append(s))
    size = sum(len(chunk) for chunk in result)
    getattr(result, "close", lambda: None)()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if not status[0].startswith("200"):
        raise RuntimeError(f"GET {query} answered {status[0]}")
    return cpu, wall, size


def measure(app, query: str, repeats: int, accept: str = "application/json") -> dict:
    _call(app, query, accept)  # warm: statements compiled, pages cached
    runs = [_call(app, query, accept) for _ in range(repeats)]
    return {"cpu_ms": round(statistics.median(r[0] for r in runs) * 1000, 1),
            "wall_ms": round(statistics.median(r[1] for r in runs) * 1000, 1),
            "bytes": runs[0][2]}


def bench_store(app, repeats: int) -> dict:
    out = {}
    for name, text in QUERIES.items():
        q = quote(text)
        out[name] = {
            "labels": measure(app, f"/{PROJECT}/?q={q}", repeats),
            "expand_1000": measure(app, f"/{PROJECT}/?q={q}&expand=records&limit=1000",
                                   repeats),
            "ndjson_all": measure(app, f"/{PROJECT}/?q={q}", max(1, repeats // 3),
                                  "application/x-ndjson"),
        }
    out["plotdata_10000"] = measure(app, f"/{PROJECT}/@@plotdata?limit=10000",
                                    max(1, repeats // 3))
    return out


def run(backend: str, sizes: list[int], repeats: int, workdir: Path) -> dict:
    import pyramid_sumatra
    from pyramid_sumatra.storage.types import ANONYMOUS, ProjectInfo

    results = {}
    with fresh_store(backend, workdir) as settings:
        settings = {**settings, "sumatra.secret": "x" * 32}
        ini = write_ini(workdir / f"{backend}.ini", {"use": "egg:pyramid_sumatra", **settings}, 0)
        app = pyramid_sumatra.main({}, **settings, **{"sumatra.initdb": "true"})
        storage = app.registry["sumatra.storage"]
        with transaction.manager:
            storage.put_project(ProjectInfo(id=PROJECT, name="query benchmark"))
            storage.set_grant(PROJECT, ANONYMOUS, "read")  # anonymous: no password hashing
        seeded = 0
        try:
            for size in sizes:
                began = time.perf_counter()
                seed_direct(ini, PROJECT, seeded, size)
                print(f"{backend}: seeded {size} records in "
                      f"{time.perf_counter() - began:.0f} s", file=sys.stderr)
                seeded = size
                results[str(size)] = bench_store(app, repeats)
                print(json.dumps({backend: {size: results[str(size)]}}), file=sys.stderr)
        finally:
            storage.dispose()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql,filesystem")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    report = {"note": "CPU ms of the app process per request (median); machine shared"}
    for backend in args.backends.split(","):
        why = missing(backend)
        if why:
            report[backend] = {"skipped": why}
            continue
        with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
            report[backend] = run(backend, sizes, args.repeats, Path(tmp))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
