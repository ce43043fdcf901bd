"""``python -m bench --quick`` runs end to end: every scenario measured, none with errors.

Speed is not asserted here (the machine is shared); the full run reports it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import unavailable

REPO = Path(__file__).resolve().parent.parent


def test_quick_benchmark_measures_every_scenario_without_errors(tmp_path: Path):
    if not shutil.which("wrk"):
        unavailable("wrk is not installed (Debian package wrk)")
    output = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--backends", "sqlite", "--output", str(output)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    report = json.loads(output.read_text())
    levels = report["plan"]["levels"]
    results = report["backends"]["sqlite"]["results"]
    got = {(r["scenario"], r["concurrency"]) for r in results}
    expected = {
        ("GET floor (thinnest stack)", 8),
        ("PUT floor (thinnest stack)", 8),
        *((f"GET record ({n} records)", 8) for n in levels),
        *((f"GET project ({n} records)", 1) for n in levels),
        *((f"PUT into the project ({n} records)", 8) for n in (levels[0], levels[-1])),
        ("PUT new record", 8),
        ("GET / (project list)", 8),
        *((f"GET project ?tags=rare ({n} records)", 1) for n in levels[1:]),
        (f"GET project page, HTML ({levels[1]} records)", 1),
        *((f"mix 90% GET / 10% PUT ({levels[1]} records)", c) for c in (1, 8, 32)),
        (f"GET record ({levels[1]} records)", 32),
        ("PUT new record", 32),
    }
    assert got == expected
    assert all(r["requests"] > 0 for r in results)
    assert [(r["scenario"], r["errors"]) for r in results if r["errors"]] == []
    assert report["errors"] == 0
    # Ratios to the limits measured in the same run, and the targets judged.
    assert set(report["limits"]["used_rps"]) == {"GET", "PUT", "MIX"}
    assert all(r["ratio"] > 0 for r in results if r["limit"])
    # ... and to the floor of the stack on the same database, measured in the same run.
    floored = {r["scenario"] for r in results if r["floor_ratio"]}
    assert floored == {f"GET record ({n} records)" for n in levels} | {
        "PUT new record", "GET / (project list)"}, floored
    targets = report["backends"]["sqlite"]["targets"]
    assert {t["target"] for t in targets} >= {"GET record >= 0.8 x GET floor",
                                               "PUT >= 0.8 x PUT floor",
                                               "p99 <= 10 x p50 at concurrency 32"}
    assert len(targets) == 9 and all(isinstance(t["passed"], bool) for t in targets)
    assert report["backends"]["sqlite"]["rss_mb"] > 0
    assert 0 < report["backends"]["sqlite"]["pss_mb"] <= report["backends"]["sqlite"]["rss_mb"]
    # The table on screen names every scenario and every target.
    for scenario, _ in expected:
        assert scenario in done.stdout
    assert done.stdout.count("PASS") + done.stdout.count("FAIL") >= len(targets)


def test_labels_only_listing_matches_the_full_query(storage):
    """The fast path of the project document (labels only) answers what the full query does."""
    import transaction

    from pyramid_sumatra.records import build_stored_record
    from pyramid_sumatra.storage.types import ProjectInfo, RecordQuery

    with transaction.manager:
        storage.put_project(ProjectInfo(id="p"))
        for i, tags in enumerate([["a", "b"], ["b"], ["c"], ["a"], []]):
            doc = {"label": f"l{i}", "timestamp": f"2024-01-0{i + 1} 10:00:00", "tags": tags}
            storage.put_record(build_stored_record("p", doc), create=True)
    with transaction.manager:
        for tags in (["a", "b"], ["a"], ["c"], ["zz"], None):
            fast = storage.query_records("p", RecordQuery(tags=tags, labels_only=True))
            full = storage.query_records("p", RecordQuery(tags=tags))
            assert fast.all_labels() == [r.label for r in full.records]
        assert storage.query_records("p", RecordQuery(tags=["a", "b"], labels_only=True)
                                     ).all_labels() == ["l3", "l1", "l0"]


def test_floor_measures_the_thinnest_stack_next_to_the_ceiling():
    """``python -m bench.floor`` runs: both apps answer without errors, a ratio is printed."""
    if not shutil.which("wrk"):
        unavailable("wrk is not installed (Debian package wrk)")
    done = subprocess.run([sys.executable, "-m", "bench.floor", "--seconds", "1", "--rounds", "1",
                           "--backends", "sqlite"],
                          cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    # GET and PUT of the thinnest stack, both answered without errors.
    assert len([line for line in lines if line.endswith(", 0 errors")]) == 2, done.stdout
    ratio = float(lines[-1].rpartition(": ")[2])
    assert 0 < ratio < 1.5, done.stdout


def test_the_put_floor_commits_what_it_inserts(tmp_path, monkeypatch):
    """The PUT floor pays for a COMMIT as the app does (it once rolled every insert back)."""
    monkeypatch.syspath_prepend(str(REPO))  # bench/ is the repository's, not installed
    import sqlite3
    from contextlib import closing

    from bench import floor
    from bench.cpu import _request, call
    from bench.workload import template

    url = f"sqlite:///{tmp_path}/floor.db"
    floor.prepare(url, 3)
    app = floor.floor_app({}, url=url)
    for i in range(2):
        code, _ = call(app, _request("PUT", f"/floor/new{i}/", "application/json", None,
                                     template("floor").replace("@@LABEL@@", f"new{i}").encode()))
        assert code == 201
    with closing(sqlite3.connect(tmp_path / "floor.db")) as db:
        assert db.execute("SELECT count(*) FROM floor_records").fetchone()[0] == 5
