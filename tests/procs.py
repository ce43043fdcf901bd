"""Real server processes for the fault and scale-out tests.

A :class:`ServerProcess` writes a temporary ini (``[app:main] use = egg:pyramid_sumatra``
plus the test's settings, ``[server:main] use = egg:waitress#main`` on a loopback
port), runs ``pserve`` on it, waits for ``/_health`` and is always killed at the end.
:func:`http` is a tiny client that never hangs: every request has a timeout, and a
dead server is an ``OSError`` rather than a status.
"""

from __future__ import annotations

import base64
import http.client as httplib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import (  # free_port re-exported: the fault tests import it from here
    DATA,
    free_port,
    served,
)

BIN = Path(sys.executable).parent
USER, PASSWORD = "testuser", "abc123"
RECORD_TYPE = "application/vnd.sumatra.record-v4+json"
RECORD_ACCEPT = "application/vnd.sumatra.record-v4+json, application/json"
PROJECT_ACCEPT = "application/vnd.sumatra.project-v4+json, application/json"

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


def write_ini(path: Path, settings: dict[str, str], port: int, threads: int = 8) -> Path:
    # "%" would be taken for ini interpolation; settings here never need it.
    app = "\n".join(f"{key} = {value}" for key, value in settings.items())
    path.write_text(f"[app:main]\nuse = egg:pyramid_sumatra\n{app}\n\n"
                    f"[server:main]\nuse = egg:waitress#main\nlisten = 127.0.0.1:{port}\n"
                    f"threads = {threads}\nchannel_timeout = 30\n{_LOGGING}")
    return path


def cli(ini: Path, *args: str, stdin: str = "", timeout: float = 60,
        user: str | None = None) -> subprocess.CompletedProcess:
    """``sumatra-server INI ARGS…``; its exit status, stdout and stderr."""
    command = [str(BIN / "sumatra-server"), str(ini), *args]
    if user:
        command = ["runuser", "-u", user, "--", *command]
    return subprocess.run(command, input=stdin, capture_output=True, text=True,
                          timeout=timeout, check=False)


def add_test_user(ini: Path) -> None:
    done = cli(ini, "adduser", USER, stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr


class ServerProcess:
    """``pserve`` on a temporary ini; a context manager that always kills it."""

    def __init__(self, directory: Path, settings: dict[str, str], name: str = "server",
                 threads: int = 8, user: str | None = None, ini: Path | None = None,
                 port: int | None = None):
        """Serve ``settings`` by waitress, or a ready ``ini`` that listens on ``port``."""
        self.directory = directory
        self.port = port or free_port()
        self.ini = ini or write_ini(directory / f"{name}.ini",
                                    {"sumatra.secret": "x" * 32, **settings}, self.port,
                                    threads)
        self.log_path = directory / f"{name}.log"
        self.url = f"http://127.0.0.1:{self.port}"
        self.user = user
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 40) -> ServerProcess:
        command = [str(BIN / "pserve"), str(self.ini)]
        if self.user:  # e.g. "nobody": file permissions then apply (root ignores them)
            command = ["runuser", "-u", self.user, "--", *command]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.directory, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pserve exited with {self.proc.returncode}:\n{self.log}")
            try:
                if http("GET", self.url + "/_health", timeout=2).status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"pserve did not answer /_health within {timeout} s:\n{self.log}")

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # The whole session: runuser's child too.
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind runs in the server."""
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not end within 10 s."""
        self._signal(signal.SIGTERM)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.kill()


# -- a client that never hangs ----------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float = 0.0

    def json(self) -> Any:
        return json.loads(self.body)


def auth_header(username: str = USER, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def http(method: str, url: str, body: bytes | str | None = None,
         headers: dict[str, str] | None = None, timeout: float = 15) -> Reply:
    """One request on a fresh connection; OSError (timeouts too) if the server fails."""
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    if isinstance(body, str):
        body = body.encode()
    started = time.monotonic()
    conn = httplib.HTTPConnection(host, int(port or 80), timeout=timeout)
    try:
        conn.request(method, "/" + path, body=body, headers=headers or {})
        res = conn.getresponse()
        data = res.read()
    except httplib.HTTPException as exc:  # e.g. RemoteDisconnected is both
        raise ConnectionError(f"{method} {url}: {exc!r}") from exc
    finally:
        conn.close()
    return Reply(res.status, {k.lower(): v for k, v in res.getheaders()}, data,
                 time.monotonic() - started)


def record_doc(label: str, **changes: Any) -> dict:
    """A complete Sumatra 0.7 record document labelled ``label``."""
    doc = json.loads((DATA / "example_0.7.json").read_text())
    doc.pop("project_id", None)
    doc.update(label=label, **changes)
    return doc


def put_record(base: str, project: str, doc: dict, timeout: float = 15) -> Reply:
    return http("PUT", f"{base}/{project}/{doc['label']}/", json.dumps(doc),
                {**auth_header(), "Content-Type": RECORD_TYPE}, timeout=timeout)


def get_record(base: str, project: str, label: str, timeout: float = 15) -> Reply:
    return http("GET", f"{base}/{project}/{label}/", None,
                {**auth_header(), "Accept": RECORD_ACCEPT}, timeout=timeout)


def project_labels(base: str, project: str) -> list[str]:
    """Every label the project's record list names (no filter)."""
    res = http("GET", f"{base}/{project}/", None, {**auth_header(), "Accept": PROJECT_ACCEPT},
               timeout=30)
    assert res.status == 200, (res.status, res.body[:300])
    return [url.rstrip("/").rsplit("/", 1)[1] for url in res.json()["records"]]


@dataclass
class Tally:
    """What the clients saw: statuses, acknowledged documents, failures to connect."""

    statuses: dict[int, int] = field(default_factory=dict)
    acked: dict[str, dict] = field(default_factory=dict)  # label -> the last document acked
    unknown: dict[str, dict] = field(default_factory=dict)  # sent, no answer
    errors: list[str] = field(default_factory=list)  # bodies of 5xx answers
    bad_5xx: list[str] = field(default_factory=list)  # 5xx without a proper JSON body
    connection_errors: int = 0
    slowest_5xx: float = 0.0  # seconds: storage down must not mean a hang

    def count(self, status: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + self.connection_errors


def check_5xx(res: Reply) -> str | None:
    """What is wrong with a 5xx answer (None: a proper 503/507 with a JSON body)."""
    if res.status not in (503, 507):
        return f"status {res.status}: {res.body[:300]!r}"
    if res.status == 503 and not res.headers.get("retry-after", "").isdigit():
        return f"503 without Retry-After: {res.headers}"
    try:
        body = res.json()
    except ValueError:
        return f"{res.status} without a JSON body: {res.body[:300]!r}"
    if not (isinstance(body, dict) and body.get("error") and "detail" in body):
        return f"{res.status} JSON body lacks error/detail: {body}"
    return None


# -- load: writers, and what must be stored afterwards --------------------------------


class Writers:
    """``n`` client threads PUTting new records (distinct labels) until stopped."""

    def __init__(self, base: Callable[[], str], project: str, n: int = 8,
                 timeout: float = 15, prefix: str = "w"):
        self.base, self.project, self.timeout, self.prefix = base, project, timeout, prefix
        self.tally = Tally()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        # While a fault is on (or was switched during a request) 503/507 are allowed.
        self.fault = threading.Event()
        self.fault_switches = 0
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(n)]

    def _run(self, index: int) -> None:
        n = 0
        while not self.stopping.is_set():
            n += 1
            label = f"{self.prefix}{index}-{n}"
            # A distinct body per PUT: a torn or mixed-up write cannot pass the check.
            doc = record_doc(label, script_arguments=f"{label} {uuid.uuid4().hex}",
                             tags=[f"writer{index}"])
            before = (self.fault.is_set(), self.fault_switches)
            try:
                res = put_record(self.base(), self.project, doc, timeout=self.timeout)
            except OSError:
                with self.lock:
                    self.tally.connection_errors += 1
                    self.tally.unknown[label] = doc
                time.sleep(0.05)
                continue
            with self.lock:
                self.tally.count(res.status)
                if res.status in (200, 201):
                    self.tally.acked[label] = doc
                elif res.status >= 500:
                    self.tally.unknown[label] = doc  # it may or may not have landed
                    problem = check_5xx(res)
                    fault = before != (False, self.fault_switches) or self.fault.is_set()
                    self.tally.slowest_5xx = max(self.tally.slowest_5xx, res.seconds)
                    if problem or not fault:
                        self.tally.bad_5xx.append(problem or f"{res.status} before the fault")
                    self.tally.errors.append(res.body.decode(errors="replace")[:200])
                else:
                    self.tally.bad_5xx.append(f"unexpected {res.status}: {res.body[:200]!r}")
            if res.status >= 500:
                time.sleep(0.05)

    def fault_on(self) -> None:
        self.fault_switches += 1
        self.fault.set()

    def fault_off(self) -> None:
        self.fault_switches += 1
        self.fault.clear()

    def __enter__(self) -> Writers:
        for t in self.threads:
            t.start()
        return self

    def stop(self, timeout: float = 30) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=timeout)
        assert not any(t.is_alive() for t in self.threads), "a client thread hung"

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_for_acks(writers: Writers, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len(writers.tally.acked) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def assert_stored(base: str, project: str, tally: Tally) -> int:
    """Every acknowledged PUT is there, whole; unanswered ones are whole or absent."""
    for label, doc in tally.acked.items():
        res = get_record(base, project, label)
        assert res.status == 200, f"acknowledged {label} is gone: {res.status}"
        assert res.json() == served(doc, project), f"acknowledged {label} came back different"
    landed = 0
    for label, doc in tally.unknown.items():
        if label in tally.acked:
            continue
        res = get_record(base, project, label)
        assert res.status in (200, 404), (label, res.status, res.body[:200])
        if res.status == 200:
            assert res.json() == served(doc, project), f"unacknowledged {label} is torn"
            landed += 1
    listed = set(project_labels(base, project))
    assert set(tally.acked) <= listed
    return landed


def assert_check_clean(ini: Path, dead: int | None = None) -> None:
    """``check`` is clean; or finds only temp files of the ``dead`` process (nothing
    torn, no index or count off), which ``check --repair`` removes."""
    done = cli(ini, "check")
    if done.returncode and dead is not None:
        problems = [line for line in done.stderr.splitlines() if "problem: " in line]
        assert problems and all(f".{dead}." in line and line.endswith(".tmp")
                                for line in problems), done.stderr
        assert cli(ini, "check", "--repair").returncode == 0
        done = cli(ini, "check")
    assert done.returncode == 0, f"check found problems:\n{done.stdout}{done.stderr}"
    assert "consistent" in done.stdout
