"""Faults injected into real server processes: SIGKILL under load, the database going
away, a full or read-only disk. Acknowledged writes must survive; while storage is
down the answer is 503 + Retry-After (507 on a full disk), always JSON, never a 500
and never a hang.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BACKENDS, POSTGRES, served, unavailable
from procs import (
    PROJECT_ACCEPT,
    ServerProcess,
    Writers,
    add_test_user,
    assert_check_clean,
    assert_stored,
    auth_header,
    check_5xx,
    free_port,
    get_record,
    http,
    project_labels,
    put_record,
    record_doc,
    wait_for_acks,
)

# -- stores ----------------------------------------------------------------------


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the shared server, dropped at the end."""
    url = POSTGRES.create(prefix="sumatra_fault_")
    try:
        yield url
    finally:
        POSTGRES.drop(url)


@contextlib.contextmanager
def store_settings(backend: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """conftest's settings of ``backend``; PostgreSQL gets a fresh database of its own,
    dropped at the end, not the session's shared one (a killed server's connections
    must not outlive the test)."""
    base = {"sumatra.initdb": "true"}
    if backend == "postgresql":
        with postgres_database() as url:
            yield {**base, "sumatra.backend": "sqlalchemy", "sqlalchemy.url": url}
        return
    settings, cleanup = BACKENDS[backend](tmp_path)
    try:
        yield {**base, **settings}
    finally:
        cleanup()


# -- (a) SIGKILL while 8 clients write --------------------------------------------------


@pytest.mark.parametrize("backend", [
    "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "filesystem"])
def test_sigkill_under_concurrent_writes(backend: str, tmp_path: Path):
    with store_settings(backend, tmp_path) as settings:
        server = ServerProcess(tmp_path, settings)
        # Restarted as in production: no initdb at start-up, so nothing sweeps the store.
        restarted = ServerProcess(tmp_path, {**settings, "sumatra.initdb": "false"},
                                  name="restarted")
        add_test_user(server.ini)
        try:
            server.start()
            with Writers(lambda: server.url, "Crash") as writers:
                wait_for_acks(writers, 8)
                time.sleep(1.0)
                writers.fault_on()
                server.kill()  # fault: SIGKILL in the middle of the writes
                time.sleep(0.3)
            tally = writers.tally
            assert not tally.bad_5xx, tally.bad_5xx[:5]
            assert tally.statuses.get(500, 0) == 0
            assert len(tally.acked) >= 8, tally.statuses
            assert tally.connection_errors >= 1  # the kill did land mid-load

            restarted.start()  # the same store
            landed = assert_stored(restarted.url, "Crash", tally)
            # The store takes new writes after the crash.
            res = put_record(restarted.url, "Crash", record_doc("after-restart"))
            assert res.status == 201, res.body
            restarted.stop()
            assert_check_clean(restarted.ini, dead=server.proc.pid)
            print(f"{backend}: {tally.requests} PUTs, {len(tally.acked)} acknowledged, "
                  f"{tally.connection_errors} unanswered (killed), {landed} of those landed")
        finally:
            server.kill()
            restarted.kill()
        for process in (server, restarted):
            assert "Traceback" not in process.log, process.log[-3000:]


# -- (b) PostgreSQL stopped and started under load ---------------------------------------


class PrivatePostgres:
    """A throw-away PostgreSQL cluster of our own (never the shared one): initdb into a
    temporary directory, run as the ``postgres`` user on a free port."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            unavailable("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.bin = Path(bins[-1]).parent
        self.port = free_port()
        # Not under pytest's tmp_path: the postgres user must be able to reach it.
        self.dir = Path(tempfile.mkdtemp(prefix="sumatra-pg-"))
        self.data = self.dir / "data"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              check=False)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        done = self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                         "--no-sync", "-E", "UTF8")
        if done.returncode:
            unavailable(f"initdb failed: {done.stderr[-500:]}")

    def start(self) -> None:
        # fsync off: a stopped server loses nothing that it acknowledged (only an OS
        # crash would), and the test runs on a loaded machine.
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=40")
        done = self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                         str(self.dir / "log"), "-w", "-t", "60", "start")
        assert done.returncode == 0, done.stdout + done.stderr + self.log

    def stop(self, mode: str = "fast") -> None:
        done = self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        assert done.returncode == 0, done.stdout + done.stderr

    @property
    def log(self) -> str:
        path = self.dir / "log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop",
                      timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_until_stored(base: str, project: str, label: str, timeout: float = 30) -> float:
    """PUT until acknowledged; the seconds it took (the app reconnects by itself)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            res = put_record(base, project, record_doc(label))
        except OSError:
            res = None
        if res is not None and res.status in (200, 201):
            return time.monotonic() - started
        if res is not None:
            assert check_5xx(res) is None, check_5xx(res)
        time.sleep(0.2)
    raise AssertionError(f"no write succeeded within {timeout} s after the database came back")


def assert_outage_answer(res) -> None:
    assert res.status == 503, (res.status, res.body[:300])
    assert check_5xx(res) is None, check_5xx(res)


@pytest.mark.postgres
def test_postgresql_restart_under_load(tmp_path: Path):
    pg = PrivatePostgres()
    server = None
    try:
        pg.init()
        pg.start()
        server = ServerProcess(tmp_path, {"sumatra.initdb": "true", "sqlalchemy.url": pg.url})
        add_test_user(server.ini)
        server.start()
        outages = []
        with Writers(lambda: server.url, "Outage", timeout=20) as writers:
            wait_for_acks(writers, 8)
            for cycle, mode in enumerate(("fast", "immediate")):  # two faults
                writers.fault_on()
                pg.stop(mode)
                seen = sum(writers.tally.statuses.values())
                time.sleep(1.5)
                # Reads and writes both answer at once: 503, Retry-After, JSON.
                res = http("GET", f"{server.url}/Outage/", None,
                           {**auth_header(), "Accept": PROJECT_ACCEPT}, timeout=20)
                assert_outage_answer(res)
                assert res.seconds < 10
                res = put_record(server.url, "Outage", record_doc(f"down-{cycle}"), timeout=20)
                assert_outage_answer(res)
                ready = http("GET", f"{server.url}/_ready", timeout=20)
                assert ready.status == 503 and ready.headers.get("retry-after")
                answered = sum(writers.tally.statuses.values()) - seen
                pg.start()
                outages.append((mode, answered,
                                wait_until_stored(server.url, "Outage", f"up-{cycle}")))
                acked = len(writers.tally.acked)
                wait_for_acks(writers, acked + 8)  # the clients go on writing
                writers.fault_off()
        tally = writers.tally
        assert not tally.bad_5xx, tally.bad_5xx[:5]
        assert tally.statuses.get(500, 0) == 0
        assert tally.statuses.get(503, 0) >= 2, tally.statuses  # the outages were seen
        assert tally.connection_errors == 0  # no hang beyond the client's 20 s bound
        assert tally.slowest_5xx < 10, tally.slowest_5xx
        landed = assert_stored(server.url, "Outage", tally)
        for cycle in range(2):
            assert get_record(server.url, "Outage", f"up-{cycle}").status == 200
        print(f"postgresql restarts {outages}: {tally.requests} PUTs {tally.statuses}, "
              f"slowest 503 {tally.slowest_5xx:.2f} s, {landed} of the 503s had landed anyway")
    finally:
        if server is not None:
            server.kill()
        pg.destroy()
    assert "Traceback" not in server.log, server.log[-3000:]


# -- (c) the filesystem backend on a full, then read-only, disk ----------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs of its own at ``path`` (needs root: mount privileges)."""
    path.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        unavailable("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                           str(path)], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode:
        unavailable(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], timeout=30, check=False).returncode:
            subprocess.run(["umount", "-l", str(path)], timeout=30, check=False)


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True, timeout=30)


def fill(directory: Path) -> Path:
    """Fill the filesystem of ``directory`` to the last byte; the file that did it."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return filler


def assert_no_debris(root: Path) -> None:
    """No temp file left behind; every JSON file whole."""
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        assert not path.name.endswith(".tmp"), f"temp file left: {path}"
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))  # raises on half a file


def test_filesystem_full_then_read_only_disk(tmp_path: Path):
    with tmpfs(tmp_path / "mnt", "2m") as mnt:
        store = mnt / "store"
        server = ServerProcess(tmp_path, {"sumatra.initdb": "true", "sumatra.backend":
                                          "filesystem", "sumatra.filesystem.root": str(store)})
        add_test_user(server.ini)
        try:
            server.start()
            kept = [record_doc(f"before-{i}") for i in range(3)]
            for doc in kept:
                assert put_record(server.url, "Disk", doc).status == 201

            filler = fill(mnt)  # fault 1: no space left
            refused = [put_record(server.url, "Disk", record_doc(f"full-{i}"))
                       for i in range(3)]
            refused.append(put_record(server.url, "NewProject", record_doc("first")))
            refused.append(put_record(server.url, "Disk", {**kept[0], "outcome": "changed"}))
            for res in refused:
                assert res.status == 507, (res.status, res.body[:300])
                assert check_5xx(res) is None, check_5xx(res)
                assert "space" in res.json()["detail"].lower()
            assert get_record(server.url, "Disk", "before-0").json() == served(kept[0], "Disk")
            assert get_record(server.url, "Disk", "full-0").status == 404
            assert_no_debris(store)
            # Nearly full: free a page at a time. A PUT is refused whole, or stored and
            # readable at once; never a 201 whose record is not there.
            size = filler.stat().st_size
            for pages in range(1, 40):
                os.truncate(filler, size - pages * 4096)
                doc = record_doc(f"nearly-{pages}")
                res = put_record(server.url, "Disk", doc)
                assert res.status in (201, 507), (res.status, res.body[:300])
                got = get_record(server.url, "Disk", doc["label"])
                if res.status == 507:
                    assert got.status == 404
                    continue
                assert got.status == 200 and got.json() == served(doc, "Disk"), \
                    "acknowledged, not readable"
                break
            else:
                raise AssertionError("40 free pages never sufficed for one record")
            assert not list((store / ".journal").glob("*.json")), "a journal left unapplied"
            filler.unlink()  # cleared
            assert put_record(server.url, "Disk", record_doc("after-full")).status == 201

            remount(mnt, "ro")  # fault 2: read-only
            try:
                res = put_record(server.url, "Disk", record_doc("read-only"), timeout=40)
                assert res.status == 503, (res.status, res.body[:300])
                assert check_5xx(res) is None, check_5xx(res)
                assert res.seconds < 10
                assert get_record(server.url, "Disk", "before-1").json() == served(kept[1], "Disk")
            finally:
                remount(mnt, "rw")
            assert put_record(server.url, "Disk", record_doc("after-read-only")).status == 201
            assert get_record(server.url, "Disk", "read-only").status == 404
            assert_no_debris(store)
            assert sorted(project_labels(server.url, "Disk")) == sorted(
                ["after-full", "after-read-only", "before-0", "before-1", "before-2",
                 f"nearly-{pages}"])
            server.stop()
            assert_check_clean(server.ini)
        finally:
            server.kill()
    assert "Traceback" not in server.log, server.log[-3000:]


def test_sqlite_full_disk(tmp_path: Path):
    with tmpfs(tmp_path / "mnt", "2m") as mnt:
        server = ServerProcess(tmp_path, {"sumatra.initdb": "true",
                                          "sqlalchemy.url": f"sqlite:///{mnt}/sumatra.sqlite"})
        add_test_user(server.ini)
        try:
            server.start()
            kept = record_doc("before")
            assert put_record(server.url, "Disk", kept).status == 201
            filler = fill(mnt)  # fault: no space left
            refused = [put_record(server.url, "Disk", record_doc(f"full-{i}", stdout_stderr=
                                                                 "x" * 100_000))
                       for i in range(3)]
            for res in refused:
                assert res.status == 507, (res.status, res.body[:300])
                assert check_5xx(res) is None, check_5xx(res)
            assert get_record(server.url, "Disk", "before").json() == served(kept, "Disk")
            filler.unlink()
            assert put_record(server.url, "Disk", record_doc("after")).status == 201
            assert sorted(project_labels(server.url, "Disk")) == ["after", "before"]
            server.stop()
            assert_check_clean(server.ini)
        finally:
            server.kill()
    assert "Traceback" not in server.log, server.log[-3000:]


# -- pooled connections: pinged when idle, not on every request ------------------------------


def test_engines_ping_only_when_asked(tmp_path: Path):
    """No ping per checkout (a round trip per request on PostgreSQL); the ini's
    ``sqlalchemy.pool_pre_ping = true`` still turns it on. (The setting reached
    SQLAlchemy as a string: "false" was true.)"""
    from pyramid_sumatra_backends.sqlalchemy.engine import create_engine

    for settings, pinged in (({}, False), ({"sqlalchemy.pool_pre_ping": "false"}, False),
                             ({"sqlalchemy.pool_pre_ping": "true"}, True)):
        engine = create_engine({"sqlalchemy.url": f"sqlite:///{tmp_path}/db.sqlite",
                                **settings})
        try:
            assert engine.pool._pre_ping is pinged, settings
        finally:
            engine.dispose()


@pytest.mark.postgres
def test_postgresql_idle_connection_the_server_closed_is_replaced(monkeypatch):
    """A pooled connection idle for longer than PING_IDLE_SECONDS is pinged at checkout,
    and one the server closed meanwhile (a restart, an idle timeout) is replaced: the
    caller never sees it. One just used is not pinged (no round trip)."""
    from pyramid_sumatra_backends.sqlalchemy import engine as engines

    with postgres_database() as url:
        monkeypatch.setattr(engines, "PING_IDLE_SECONDS", 0.2)
        engine = engines.create_engine({"sqlalchemy.url": url})
        try:
            assert engine.pool._pre_ping is False
            with engine.connect() as conn:
                first = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with engine.connect() as conn:  # at once: the same connection, no ping
                assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() == first
            with POSTGRES.admin() as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (first,))
            time.sleep(0.5)
            with engine.connect() as conn:
                second = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            assert second != first
        finally:
            engine.dispose()


# -- the database connection lost between the view and COMMIT ------------------------------


@pytest.mark.postgres
def test_connection_lost_at_commit_is_503_not_500():
    """The hooks all succeeded; COMMIT then meets a dead connection. It happens outside
    every hook (in pyramid_tm), so only the engine's error handler can make it a 503."""
    import transaction
    import webtest
    from pyramid.interfaces import INewRequest

    import pyramid_sumatra
    from pyramid_sumatra.demo import load_demo

    with postgres_database() as url:
        app = pyramid_sumatra.main({}, **{"sqlalchemy.url": url, "sumatra.initdb": "true",
                                          "sumatra.secret": "x" * 32})
        storage = app.registry["sumatra.storage"]
        try:
            with transaction.manager:
                load_demo(storage)
            backend = next(p for p in storage.pm.get_plugins() if hasattr(p, "Session"))
            killed = []

            def kill_connection() -> None:  # fault: the server drops us (failover, restart)
                pid = backend.db.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
                with POSTGRES.admin() as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                killed.append(pid)

            def on_new_request(event) -> None:  # inside pyramid_tm: its transaction is on
                if event.request.headers.get("X-Test-Fault") == "kill-at-commit":
                    event.request.tm.get().addBeforeCommitHook(kill_connection)

            app.registry.registerHandler(on_new_request, (INewRequest,))
            testapp = webtest.TestApp(app)
            headers = {**auth_header(), "Content-Type": "application/vnd.sumatra.record-v4+json"}
            res = testapp.put("/TestProject/lost/", json.dumps(record_doc("lost")),
                              headers={**headers, "X-Test-Fault": "kill-at-commit"},
                              expect_errors=True)
            assert killed
            assert res.status_int == 503, res.text[:500]
            assert res.headers["Retry-After"].isdigit() and res.json["error"]
            # Nothing was stored, and the next request reconnects by itself.
            testapp.get("/TestProject/lost/", headers=auth_header(), status=404)
            testapp.put("/TestProject/lost/", json.dumps(record_doc("lost")), headers=headers,
                        status=201)
        finally:
            storage.dispose()


# -- a write that keeps losing races ---------------------------------------------------------


def test_conflict_left_after_the_retries_is_503_busy(testapp, wsgi_app, monkeypatch, caplog):
    from pyramid_sumatra.storage.types import StorageConflict

    storage = wsgi_app.registry["sumatra.storage"]
    calls = []

    def always_conflicts(record, create):  # fault: another writer wins every time
        calls.append(record.label)
        raise StorageConflict(f"record {record.project_id}/{record.label} changed concurrently")

    monkeypatch.setattr(storage, "put_record", always_conflicts)
    res = testapp.put("/TestProject/hot/", json.dumps(record_doc("hot")),
                      headers={**auth_header(),
                               "Content-Type": "application/vnd.sumatra.record-v4+json"},
                      status=503)
    attempts = int(wsgi_app.registry.settings["retry.attempts"])
    assert len(calls) == attempts > 1  # replayed by pyramid_retry, then given up
    assert res.json["error"] == "storage busy" and res.headers["Retry-After"] == "1"
    assert "unhandled error" not in caplog.text
