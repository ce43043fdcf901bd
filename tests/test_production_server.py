"""``pserve production.ini`` as an institution runs it: gunicorn, a worker per core.

The real production.ini, with only its address moved to a free loopback port and
SQLite standing in for PostgreSQL (through the environment, as production reads it).
"""

from __future__ import annotations

import gc
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from procs import (
    PROJECT_ACCEPT,
    RECORD_TYPE,
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
    assert "\nbind = 127.0.0.1:6543\n" in text  # the line this test moves
    ini = tmp_path / "production.ini"
    ini.write_text(text.replace("\nbind = 127.0.0.1:6543\n", f"\nbind = 127.0.0.1:{port}\n"))
    monkeypatch.setenv("SUMATRA_DATABASE_URL", f"sqlite:///{tmp_path}/sumatra.sqlite")
    monkeypatch.setenv("SUMATRA_SECRET", os.urandom(32).hex())
    monkeypatch.delenv("SUMATRA_BACKEND", raising=False)
    done = cli(ini, "initdb")
    assert done.returncode == 0, done.stderr
    add_test_user(ini)
    with ServerProcess(tmp_path, {}, ini=ini, port=port) as server:
        yield server


def test_production_ini_serves_with_a_gunicorn_worker_per_core(production):
    deadline = time.monotonic() + 20  # /_health answered: one worker is up, maybe not both
    while len(_worker_pids(production.proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
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


def test_a_forked_worker_does_not_reuse_its_parents_pooled_connections(tmp_path):
    """pserve loads the app, then gunicorn forks: each worker opens its own connections."""
    from pyramid_sumatra_backends.sqlalchemy import create_backend

    backend = create_backend({"sqlalchemy.url": f"sqlite:///{tmp_path}/fork.sqlite"})
    with backend.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    assert backend.engine.pool.checkedin() == 1
    pid = os.fork()
    if pid == 0:  # the child: the pool it inherited must be empty
        os._exit(0 if backend.engine.pool.checkedin() == 0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert backend.engine.pool.checkedin() == 1  # the parent keeps its own
    backend.engine.dispose()


def test_a_response_is_freed_when_the_request_ends_not_at_the_next_full_collection(testapp):
    """Requests used to sit in reference cycles (request -> root -> request) with their
    response bodies until the cyclic collector ran: a worker serving 100,000-record
    projects grew to 250+ MB. With the collector off, no response may outlive its request."""
    from pyramid.response import Response

    def alive() -> int:
        return sum(type(o) is Response for o in gc.get_objects())

    gc.collect()
    gc.disable()
    try:
        before = alive()
        for path in ("/", "/TestProject/", "/TestProject/20111013-172503/", "/_health"):
            testapp.get(path, headers={"Accept": "application/json"},
                        extra_environ={"HTTP_AUTHORIZATION": "Basic dGVzdHVzZXI6YWJjMTIz"})
        assert alive() == before
    finally:
        gc.enable()


def test_a_truncated_upload_stores_nothing_and_the_others_go_on(production):
    """gunicorn hands the body to the app as it arrives (a buffering proxy belongs in
    front, docs/deployment.md): a client stalling mid-body holds one thread of four,
    the other requests go on, and when it gives up nothing is stored."""
    body = json.dumps(record_doc("truncated")).encode()
    slow = socket.create_connection(("127.0.0.1", production.port), timeout=5)
    head = (f"PUT /prod/truncated/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {auth_header()['Authorization']}\r\n"
            f"Content-Type: {RECORD_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n")
    slow.sendall(head.encode() + body[:100])
    time.sleep(0.3)
    for i in range(6):
        assert put_record(production.url, "prod", record_doc(f"other{i}")).status == 201
    slow.close()  # the client gives up
    time.sleep(0.5)
    assert http("GET", production.url + "/_health").status == 200
    res = http("GET", production.url + "/prod/truncated/", None,
               {"Accept": RECORD_TYPE, **auth_header()})
    assert res.status == 404
    res = http("GET", production.url + "/prod/", None, {"Accept": PROJECT_ACCEPT, **auth_header()})
    assert len(json.loads(res.body)["records"]) == 6
    assert "Traceback" not in production.log, production.log
