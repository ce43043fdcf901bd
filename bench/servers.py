"""Serve an app the way production.ini does: pserve, waitress, a generated ini file."""

from __future__ import annotations

import configparser
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PRODUCTION_INI = REPO / "production.ini"

_LOGGING = """
[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s] %(message)s
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def production_server_settings() -> dict[str, str]:
    """production.ini's [server:main], as it is in this checkout."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(PRODUCTION_INI)
    return dict(parser["server:main"])


def clean_env() -> dict[str, str]:
    """The environment for child processes: no production overrides, the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUMATRA_")}
    # A PYTHONPATH given by the caller comes first: the app of another checkout can be
    # measured with this bench (before/after comparisons).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(REPO)]))
    return env


#: [server:main] settings to try instead of production's (``--server threads=16``).
SERVER_OVERRIDES: dict[str, str] = {}


def write_ini(path: Path, app: dict[str, str], port: int) -> Path:
    """An ini with ``app`` as [app:main] and production's [server:main] on ``port``."""
    server = production_server_settings()
    if SERVER_OVERRIDES.get("use", server["use"]) != server["use"]:
        server = {}  # another server: production's keys would not apply to it
    server.update(SERVER_OVERRIDES)
    if server["use"] == "egg:waitress#main":
        server["listen"] = f"127.0.0.1:{port}"
    else:
        server.pop("listen", None)
        server["bind"] = f"127.0.0.1:{port}"
    lines = ["[app:main]", *(f"{k} = {v}" for k, v in app.items()), "", "[server:main]",
             *(f"{k} = {v}" for k, v in server.items()), _LOGGING]
    path.write_text("\n".join(lines))
    return path


class Server:
    """A pserve process serving one ini file on 127.0.0.1."""

    def __init__(self, ini: Path, port: int, log: Path):
        self.ini, self.port, self.log = ini, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> Server:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([str(VENV_BIN / "pserve"), str(self.ini)],
                                            stdout=log, stderr=subprocess.STDOUT,
                                            env=clean_env(), cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pserve {self.ini} exited; see {self.log}:\n"
                                   + self.log.read_text()[-3000:])
            try:
                urllib.request.urlopen(self.url + "/_health", timeout=2).close()
                return self._all_workers_up(deadline)
            except urllib.error.HTTPError:  # answers: good enough (the ceilings have no /_health)
                return self._all_workers_up(deadline)
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"pserve {self.ini} did not answer within {timeout} s")

    def _all_workers_up(self, deadline: float) -> Server:
        """Wait until the worker count holds still. The first answer comes from the first
        worker up; a client connecting before the others listen (reuse_port: a socket per
        worker) has every connection on that one worker, for the whole run: the bare GET
        app then measured 2,200 req/s instead of 7,000."""
        assert self.process is not None
        count, since = 0, time.monotonic()
        while time.monotonic() < deadline:
            now = len(_process_tree(self.process.pid))
            if now != count:
                count, since = now, time.monotonic()
            elif time.monotonic() - since >= 1.0:
                break
            time.sleep(0.1)
        time.sleep(0.5)  # the last worker's socket, opened just after it was forked
        return self

    def rss_mb(self) -> float:
        """Resident memory of the server (VmRSS of its process and workers, summed), MB."""
        assert self.process is not None
        return sum(_proc_mb(pid, "status", "VmRSS:") for pid in _process_tree(self.process.pid))

    def pss_mb(self) -> float:
        """Memory the server occupies (Pss of its process and workers, summed), MB.

        Workers forked from a process that loaded the app share its pages: summed RSS
        counts those pages once per process; Pss divides each page among its sharers.
        """
        assert self.process is not None
        return sum(_proc_mb(pid, "smaps_rollup", "Pss:") for pid in _process_tree(self.process.pid))

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server has used so far: its process and workers."""
        assert self.process is not None
        return sum(_cpu_seconds(pid) for pid in _process_tree(self.process.pid))

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a pre-fork server's workers)."""
    tree, index = [pid], 0
    while index < len(tree):
        children = Path(f"/proc/{tree[index]}/task/{tree[index]}/children")
        with contextlib.suppress(OSError):
            tree += [int(child) for child in children.read_text().split()]
        index += 1
    return tree


def _proc_mb(pid: int, file: str, field: str) -> float:
    """A kB field of ``/proc/PID/FILE`` (``VmRSS:`` of status, ``Pss:`` of
    smaps_rollup) in MB; 0 for a process that exited meanwhile."""
    try:
        text = Path(f"/proc/{pid}/{file}").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0  # a worker that exited meanwhile
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prepare_store(ini: Path, username: str, password: str) -> None:
    """What an operator does before the first ``pserve production.ini``: ``sumatra-server
    INI initdb``, then ``adduser NAME`` with the password on stdin."""
    for args, given in ((["initdb"], None), (["adduser", username], password + "\n")):
        done = subprocess.run([str(VENV_BIN / "sumatra-server"), str(ini), *args],
                              input=given, text=True, capture_output=True,
                              env=clean_env(), cwd=REPO)
        if done.returncode:
            raise RuntimeError(f"sumatra-server {args[0]} failed: {done.stdout}{done.stderr}")
