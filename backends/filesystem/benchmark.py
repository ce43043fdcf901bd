"""Time the storage hooks on 10,000 records.

``python -m pyramid_sumatra_backends.filesystem.benchmark [filesystem] [sqlite]``.

Loads 10,000 records (in 10 transactions) into a temporary store, then times
``query_records`` unfiltered, filtered by a tag on 1% of the records, a
20-record page, and one ``put_record`` (each in its own transaction; min and
median of 5 runs, and the first, which reads the index from disk).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

import transaction

from pyramid_sumatra import build_storage, resolve_settings
from pyramid_sumatra.records import build_stored_record
from pyramid_sumatra.storage.types import ProjectInfo, RecordQuery

COUNT = 10_000


def document(i: int) -> dict:
    return {"label": f"2024{i:08d}",
            "timestamp": f"2024-01-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:{i // 60 % 60:02d}",
            "reason": f"run {i}", "outcome": "ok", "main_file": "main.py", "version": "abc123",
            "tags": ["rare"] if i % 100 == 0 else ["common", f"g{i % 7}"],
            "executable": {"name": "Python", "version": "3.11", "path": "/usr/bin/python",
                           "options": ""},
            "user": "Alice <a@example.org>", "duration": i * 0.5,
            "parameters": {"content": "x = 1\ny = 2", "type": "SimpleParameterSet"}}


def timed(fn, runs: int = 5) -> str:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        with transaction.manager:
            fn()
        times.append((time.perf_counter() - start) * 1000)
    return (f"first {times[0]:.0f} ms, min {min(times):.0f} ms, "
            f"median {statistics.median(times):.0f} ms")


def run(name: str, settings: dict) -> None:
    store = build_storage(resolve_settings(settings))
    store.initialize()
    with transaction.manager:
        store.put_project(ProjectInfo(id="P"))
    start = time.perf_counter()
    for first in range(0, COUNT, COUNT // 10):
        with transaction.manager:
            for i in range(first, first + COUNT // 10):
                store.put_record(build_stored_record("P", document(i)), create=True)
    print(f"{name}: loaded {COUNT} records in {time.perf_counter() - start:.1f} s")
    store.dispose()  # forget caches: the first query reads from disk
    with transaction.manager:
        assert store.query_records("P", RecordQuery(tags=["rare"])).total == COUNT // 100
    store.dispose()
    labels = iter(range(COUNT, COUNT + 100))
    cases = {
        "query, unfiltered": lambda: store.query_records("P"),
        "query, tag on 1%": lambda: store.query_records("P", RecordQuery(tags=["rare"])),
        "query, 20 newest": lambda: store.query_records("P", RecordQuery(limit=20)),
        "put one record": lambda: store.put_record(
            build_stored_record("P", document(next(labels))), create=True),
    }
    for case, fn in cases.items():
        print(f"  {case + ':':20} {timed(fn)}")
    store.dispose()


def main(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name in argv or ["filesystem", "sqlite"]:
            settings = {"filesystem": {"sumatra.backend": "filesystem",
                                       "sumatra.filesystem.root": f"{tmp}/fs"},
                        "sqlite": {"sumatra.backend": "sqlalchemy",
                                   "sqlalchemy.url": f"sqlite:///{tmp}/s.sqlite"}}[name]
            run(name, settings)


if __name__ == "__main__":
    main(sys.argv[1:])
