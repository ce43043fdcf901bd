"""Scale-out: two app processes on ONE store, 32 clients at once.

The store is a PostgreSQL database, or a filesystem store (whose file locks are meant
to let several processes share one directory).

The clients write new labels and the same few labels (through either process, at
random) and read back, for a few seconds. Every acknowledged PUT must be stored, no
answer may be a 500, and the project's count and record list must agree with what
was acknowledged.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
import transaction
from conftest import POSTGRES, served
from procs import (
    PROJECT_ACCEPT,
    ServerProcess,
    Writers,
    add_test_user,
    assert_check_clean,
    assert_stored,
    auth_header,
    check_5xx,
    cli,
    get_record,
    http,
    project_labels,
    put_record,
    record_doc,
    wait_for_acks,
)

from pyramid_sumatra import build_storage, resolve_settings

CLIENTS = 32
SECONDS = 5.0
PROJECT = "Scale"
SHARED = [f"shared-{k}" for k in range(6)]


def shared_doc(label: str, outcome: str) -> dict:
    # Same "how it ran" for every writer of a label; only a result field differs, so
    # whichever update lands last, the stored document is one that was sent.
    return record_doc(label, outcome=outcome, script_arguments=f"shared {label}")


class Load:
    def __init__(self, urls: list[str]):
        self.urls = urls
        self.lock = threading.Lock()
        self.statuses: dict[int, int] = {}
        self.acked: dict[str, dict] = {}  # new labels: the document
        self.shared_acked: dict[str, set[str]] = {}  # shared label -> outcomes acked
        self.shared_sent: dict[str, set[str]] = {}  # … and every outcome sent
        self.unanswered: set[str] = set()  # labels of PUTs without an answer
        self.problems: list[str] = []
        self.busy = 0  # 503 "storage busy": a write still conflicting after the retries
        self.reads = 0

    def note(self, what: str, res) -> None:
        with self.lock:
            self.statuses[res.status] = self.statuses.get(res.status, 0) + 1
            if res.status == 503 and check_5xx(res) is None \
                    and res.json()["error"] == "storage busy":
                self.busy += 1
            elif res.status >= 500:
                self.problems.append(f"{what}: {check_5xx(res) or res.status}")

    def client(self, index: int, deadline: float) -> None:
        rng = random.Random(index)
        n = 0
        while time.monotonic() < deadline:
            n += 1
            url = rng.choice(self.urls)
            action = rng.random()
            try:
                if action < 0.4:
                    self._put_new(url, f"c{index}-{n}", index)
                elif action < 0.7:
                    self._put_shared(url, rng.choice(SHARED), f"{index}-{n}")
                elif action < 0.9:
                    self._read_back(url, rng)
                else:
                    res = http("GET", f"{url}/{PROJECT}/", None,
                               {**auth_header(), "Accept": PROJECT_ACCEPT}, timeout=30)
                    self.note("GET project", res)
                    if res.status not in (200, 404):  # 404 until the first record lands
                        self.problems.append(f"GET project: {res.status}")
            except OSError as exc:
                with self.lock:
                    self.problems.append(f"no answer: {exc!r}")

    def _put_new(self, url: str, label: str, index: int) -> None:
        doc = record_doc(label, tags=[f"client{index}"])
        with self.lock:
            self.unanswered.add(label)
        res = put_record(url, PROJECT, doc, timeout=30)
        self.note(f"PUT {label}", res)
        with self.lock:
            self.unanswered.discard(label)
            if res.status == 201:
                self.acked[label] = doc
            elif res.status < 500:
                self.problems.append(f"PUT {label}: {res.status} {res.body[:200]!r}")

    def _put_shared(self, url: str, label: str, outcome: str) -> None:
        with self.lock:
            self.shared_sent.setdefault(label, set()).add(outcome)
        res = put_record(url, PROJECT, shared_doc(label, outcome), timeout=30)
        self.note(f"PUT {label}", res)
        if res.status in (200, 201):
            with self.lock:
                self.shared_acked.setdefault(label, set()).add(outcome)
        elif res.status < 500:
            self.problems.append(f"PUT {label}: {res.status} {res.body[:200]!r}")

    def _read_back(self, url: str, rng: random.Random) -> None:
        """An acknowledged write is visible through either process at once."""
        with self.lock:
            if not self.acked:
                return
            label, doc = rng.choice(list(self.acked.items()))
            self.reads += 1
        res = get_record(url, PROJECT, label, timeout=30)
        self.note(f"GET {label}", res)
        if res.status != 200 or res.json() != served(doc, PROJECT):
            self.problems.append(f"GET {label} after its PUT was acknowledged: {res.status}")


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres),
                                     "filesystem"])
def test_two_processes_on_one_store(backend: str, tmp_path: Path):
    if backend == "postgresql":
        url = POSTGRES.create(prefix="sumatra_scale_")
        store = {"sqlalchemy.url": url}
    else:
        url = ""
        store = {"sumatra.backend": "filesystem",
                 "sumatra.filesystem.root": str(tmp_path / "store")}
    settings = {"sumatra.initdb": "true", **store}
    servers = [ServerProcess(tmp_path, settings, name=name, threads=16) for name in "ab"]
    try:
        add_test_user(servers[0].ini)
        # Both replicas boot at once (a rolling deploy): initdb twice, concurrently.
        starters = [threading.Thread(target=s.start) for s in servers]
        for t in starters:
            t.start()
        for t in starters:
            t.join(timeout=60)
        for s in servers:
            assert s.proc is not None and s.proc.poll() is None, s.log[-2000:]

        for s in servers:  # each process verifies the password once (argon2), then caches
            assert http("GET", s.url + "/", None, auth_header(), timeout=30).status == 200
        load = Load([s.url for s in servers])
        deadline = time.monotonic() + SECONDS
        clients = [threading.Thread(target=load.client, args=(i, deadline), daemon=True)
                   for i in range(CLIENTS)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(timeout=SECONDS + 90)
        assert not any(t.is_alive() for t in clients), "a client hung"

        assert load.statuses.get(500, 0) == 0, load.problems[:5]
        assert not load.problems, load.problems[:5]
        shared_puts = sum(len(sent) for sent in load.shared_sent.values())
        if backend == "postgresql":  # row locks: concurrent updates wait, never give up
            assert load.busy == 0
        else:  # optimistic: a label rewritten by 16 clients may exhaust the retries
            assert load.busy <= shared_puts // 4, (load.busy, shared_puts)
        assert len(load.acked) >= 8 and load.shared_acked, load.statuses

        # Every acknowledged PUT is stored, read through both processes.
        for i, (label, doc) in enumerate(sorted(load.acked.items())):
            assert get_record(servers[i % 2].url, PROJECT, label).json() == served(doc, PROJECT)
        for label in load.shared_acked:
            stored = get_record(servers[0].url, PROJECT, label).json()
            # The last update wins: one of the outcomes sent for that label.
            assert stored["outcome"] in load.shared_sent[label]
            assert stored == served(shared_doc(label, stored["outcome"]), PROJECT)

        expected = set(load.acked) | set(load.shared_acked)
        for server in servers:
            listed = project_labels(server.url, PROJECT)
            assert len(listed) == len(set(listed))
            assert set(listed) == expected | (set(listed) & load.unanswered)
        for index in range(0, CLIENTS, 5):  # the tag index agrees too
            tagged = {label for label, doc in load.acked.items()
                      if doc["tags"] == [f"client{index}"]}
            res = http("GET", f"{servers[index % 2].url}/{PROJECT}/?tags=client{index}", None,
                       {**auth_header(), "Accept": PROJECT_ACCEPT}, timeout=30)
            assert {u.rstrip("/").rsplit("/", 1)[1] for u in res.json()["records"]} == tagged
        storage = build_storage(resolve_settings(store))
        try:
            with transaction.manager:
                info = storage.get_project(PROJECT)
            assert info is not None and info.record_count == len(listed)
        finally:
            storage.dispose()
        for server in servers:
            server.stop()
        done = cli(servers[0].ini, "check")
        assert done.returncode == 0 and "consistent" in done.stdout, done.stdout + done.stderr
        total = sum(load.statuses.values())
        print(f"scale-out {backend}: {total} requests in {SECONDS} s through 2 processes, "
              f"{load.statuses}, {len(expected)} labels, {load.reads} read-backs, "
              f"{load.busy} of {shared_puts} PUTs of shared labels busy")
    finally:
        for server in servers:
            server.kill()
        if url:
            POSTGRES.drop(url)
    for server in servers:
        assert "Traceback" not in server.log, server.log[-3000:]


@pytest.mark.parametrize("backend", ["sqlite", "filesystem"])
def test_one_process_killed_the_other_goes_on(backend: str, tmp_path: Path):
    """Two processes on one SQLite file or filesystem store; SIGKILL one while both take
    writes. Whatever the dead one held (SQLite's write lock, a project's file lock, a
    committed but unapplied journal) must not stop or break the survivor."""
    store = ({"sqlalchemy.url": f"sqlite:///{tmp_path}/sumatra.sqlite"} if backend == "sqlite"
             else {"sumatra.backend": "filesystem",
                   "sumatra.filesystem.root": str(tmp_path / "store")})
    settings = {"sumatra.initdb": "true", **store}
    victim, survivor = (ServerProcess(tmp_path, settings, name=name) for name in "ab")
    try:
        add_test_user(victim.ini)
        victim.start()
        survivor.start()
        with Writers(lambda: victim.url, PROJECT, prefix="a") as doomed, \
                Writers(lambda: survivor.url, PROJECT, prefix="b") as going_on:
            wait_for_acks(doomed, 8)
            wait_for_acks(going_on, 8)
            time.sleep(0.5)
            doomed.fault_on()
            victim.kill()  # fault: SIGKILL one of the two
            acked = len(going_on.tally.acked)
            wait_for_acks(going_on, acked + 16, timeout=30)
        assert len(going_on.tally.acked) >= acked + 16, going_on.tally.statuses
        for writers in (doomed, going_on):
            assert not writers.tally.bad_5xx, writers.tally.bad_5xx[:5]
        assert set(going_on.tally.statuses) == {201}, going_on.tally.statuses
        assert going_on.tally.connection_errors == 0
        assert doomed.tally.connection_errors >= 1
        for writers in (doomed, going_on):  # read through the survivor
            assert_stored(survivor.url, PROJECT, writers.tally)
        survivor.stop()
        assert_check_clean(survivor.ini, dead=victim.proc.pid)
        print(f"{backend}: survivor acknowledged {len(going_on.tally.acked)} PUTs, the killed "
              f"one {len(doomed.tally.acked)}")
    finally:
        victim.kill()
        survivor.kill()
    for server in (victim, survivor):
        assert "Traceback" not in server.log, server.log[-3000:]
