"""``pserve production.ini`` as an institution runs it: gunicorn, a worker per core.

The real production.ini, with only its address moved to a free loopback port and
SQLite standing in for PostgreSQL (through the environment, as production reads it).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from procs import (
    PROJECT_ACCEPT,
    ServerProcess,
    add_test_user,
    auth_header,
    cli,
    free_port,
    http,
    put_record,
    record_doc,
)

ROOT = Path(__file__).resolve().parent.parent


def _worker_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


@pytest.fixture
def production(tmp_path, monkeypatch):
    port = free_port()
    text = (ROOT / "production.ini").read_text()
    assert "\nbind = 0.0.0.0:6543\n" in text  # the line this test moves
    ini = tmp_path / "production.ini"
    ini.write_text(text.replace("\nbind = 0.0.0.0:6543\n", f"\nbind = 127.0.0.1:{port}\n"))
    monkeypatch.setenv("SUMATRA_DATABASE_URL", f"sqlite:///{tmp_path}/sumatra.sqlite")
    monkeypatch.setenv("SUMATRA_SECRET", os.urandom(32).hex())
    monkeypatch.delenv("SUMATRA_BACKEND", raising=False)
    done = cli(ini, "initdb")
    assert done.returncode == 0, done.stderr
    add_test_user(ini)
    with ServerProcess(tmp_path, {}, ini=ini, port=port) as server:
        yield server


def test_production_ini_serves_with_a_gunicorn_worker_per_core(production):
    workers = _worker_pids(production.proc.pid)
    assert len(workers) == 2, production.log  # production.ini: workers = 2
    assert "gthread" in production.log


def test_writers_in_both_workers_all_land_on_sqlite(production):
    """8 clients, new connections each time (so both workers write): every PUT is
    acknowledged and stored; SQLite writers of the two processes take turns."""
    statuses: list[int] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        for i in range(15):
            res = put_record(production.url, "prod", record_doc(f"w{n}-{i:02d}"), timeout=30)
            with lock:
                statuses.append(res.status)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * 120, statuses
    res = http("GET", production.url + "/prod/", None, {"Accept": PROJECT_ACCEPT, **auth_header()})
    assert res.status == 200
    assert len(json.loads(res.body)["records"]) == 120
    assert "Traceback" not in production.log, production.log
