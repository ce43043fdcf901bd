"""Serve an app the way production.ini does: pserve, waitress, a generated ini file."""

from __future__ import annotations

import configparser
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
    server = {**production_server_settings(), **SERVER_OVERRIDES}
    server["listen"] = f"127.0.0.1:{port}"
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
                return self
            except urllib.error.HTTPError:  # answers: good enough (the ceilings have no /_health)
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"pserve {self.ini} did not answer within {timeout} s")

    def rss_mb(self) -> float:
        """Resident memory of the server process (VmRSS), in MB."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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


def adduser(ini: Path, username: str, password: str) -> None:
    """``sumatra-server INI adduser NAME`` with the password on stdin (as an operator would)."""
    done = subprocess.run([str(VENV_BIN / "sumatra-server"), str(ini), "adduser", username],
                          input=password + "\n", text=True, capture_output=True,
                          env=clean_env(), cwd=REPO)
    if done.returncode:
        raise RuntimeError(f"sumatra-server adduser failed: {done.stdout}{done.stderr}")
