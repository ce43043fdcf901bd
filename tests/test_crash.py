"""SIGKILL a real server while a client writes: nothing acknowledged is lost, nothing is torn.

A ``pserve`` process serves a temporary ini; a client thread PUTs new records
and updates of earlier ones as fast as it can; the server is killed with
SIGKILL mid-stream, twice. Afterwards every stored file (or the SQLite
database) is whole, ``sumatra-server CONFIG check`` is clean after a restart,
and every PUT that got its 200/201 reads back as acknowledged (or as a later
write that was in flight when the server died).
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import free_port

from pyramid_sumatra.cli import main as cli

BIN = Path(sys.executable).parent
AUTH = {"Authorization": "Basic " + base64.b64encode(b"alice:secret123").decode()}
V4 = "application/vnd.sumatra.record-v4+json"

SETTINGS = {
    "filesystem": lambda tmp: f"sumatra.backend = filesystem\n"
                              f"sumatra.filesystem.root = {tmp}/store\n",
    "sqlite": lambda tmp: f"sumatra.backend = sqlalchemy\n"
                          f"sqlalchemy.url = sqlite:///{tmp}/sumatra.sqlite\n",
}


def write_ini(tmp_path: Path, kind: str, port: int) -> str:
    ini = tmp_path / "crash.ini"
    ini.write_text(
        "[app:main]\nuse = egg:pyramid_sumatra\n" + SETTINGS[kind](tmp_path)
        + "sumatra.initdb = true\nsumatra.secret = " + "s" * 32 + "\n\n"
        f"[server:main]\nuse = egg:waitress#main\nlisten = 127.0.0.1:{port}\nthreads = 4\n")
    return str(ini)


def request(port: int, method: str, path: str, body: dict | None = None,
            timeout: float = 5) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {**AUTH, "Accept": V4}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = V4
        conn.request(method, path, body=data, headers=headers)
        res = conn.getresponse()
        return res.status, res.read()
    finally:
        conn.close()


class Server:
    def __init__(self, ini: str, port: int, log: Path):
        self.ini, self.port, self.log = ini, port, log

    def start(self) -> Server:
        self.proc = subprocess.Popen([str(BIN / "pserve"), self.ini],
                                     stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if request(self.port, "GET", "/_health", timeout=1)[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        self.proc.kill()
        raise AssertionError(f"server did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Writer(threading.Thread):
    """PUTs records until the server stops answering; remembers what was acknowledged."""

    def __init__(self, port: int, round_: int):
        super().__init__(daemon=True)
        self.port, self.round = port, round_
        self.acked: dict[str, str] = {}  # label -> outcome acknowledged
        self.in_flight: dict[str, list[str]] = {}  # label -> outcomes sent since the ack
        self.count = 0

    def put(self, label: str, outcome: str) -> bool:
        doc = {"label": label, "timestamp": "2024-05-01 12:00:00", "outcome": outcome,
               "reason": "crash test", "tags": ["crash"], "output_data": [],
               "parameters": {"content": "x = " + "1" * 2000, "type": "SimpleParameterSet"}}
        self.in_flight.setdefault(label, []).append(outcome)
        try:
            status, _ = request(self.port, "PUT", f"/crash/{label}/", doc)
        except OSError:
            return False
        if status in (200, 201):
            self.acked[label] = outcome
            self.in_flight[label] = []
            self.count += 1
            return True
        raise AssertionError(f"PUT {label} answered {status}")

    def run(self) -> None:
        i = 0
        while True:
            label = f"r{self.round}-{i:04d}"
            if not self.put(label, "new"):
                return
            if i % 3 == 2:  # the second PUT of smt run: an update of an earlier record
                earlier = f"r{self.round}-{i - 2:04d}"
                if not self.put(earlier, f"updated {i}"):
                    return
            i += 1


def assert_files_whole(tmp_path: Path, kind: str) -> int:
    if kind == "sqlite":
        with sqlite3.connect(tmp_path / "sumatra.sqlite") as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return 1
    files = [p for p in (tmp_path / "store").rglob("*.json") if not p.name.startswith(".")]
    for path in files:
        json.loads(path.read_text())  # whole: old or new, never a part
    return len(files)


@pytest.mark.parametrize("kind", ["filesystem", "sqlite"])
def test_sigkill_mid_stream_loses_nothing_acknowledged(tmp_path, kind, monkeypatch, capsys):
    port = free_port()
    ini = write_ini(tmp_path, kind, port)
    assert cli([ini, "initdb"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("secret123\n"))
    assert cli([ini, "adduser", "alice"]) == 0
    server = Server(ini, port, tmp_path / "server.log").start()
    writers = []
    try:
        for round_ in (1, 2):
            writer = Writer(port, round_)
            writer.start()
            deadline = time.monotonic() + 20
            while writer.count < 15 + 5 * round_ and time.monotonic() < deadline:
                time.sleep(0.01)
            server.kill()
            writer.join(10)
            assert not writer.is_alive()
            assert writer.count >= 15, "the client wrote too little before the kill"
            writers.append(writer)
            assert assert_files_whole(tmp_path, kind) > 0
            server.start()  # recovery runs at start-up
        for writer in writers:
            for label, outcome in writer.acked.items():
                status, body = request(port, "GET", f"/crash/{label}/")
                assert status == 200, f"acknowledged {label} is gone"
                assert json.loads(body)["outcome"] in [outcome, *writer.in_flight[label]]
    finally:
        server.stop()
    capsys.readouterr()
    assert cli([ini, "check"]) == 0, capsys.readouterr().err
    assert "consistent" in capsys.readouterr().out
