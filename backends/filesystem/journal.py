"""The redo journal that makes a commit touching several files atomic and durable.

At vote time a transaction writes (to a temp file) the list of file
operations it will perform; renaming that file into ``.journal/`` is the
commit point. The operations are then applied, all while the transaction
holds the locks of every project it touches. If the process dies in between,
whoever finds the journal later (start-up, the next commit, ``check --repair``)
takes the same locks and applies it again: every operation is idempotent.

The journal is the only file a commit fsyncs (it, and ``.journal/`` for its
name): the files it then writes are left to the kernel, and the journal is kept,
renamed ``<seq>.<boot>.<txid>.applied`` in the same directory, as their durable
copy. Every :data:`CHECKPOINT_EVERY` commits, a checkpoint writes the whole
filesystem back (syncfs) and drops the applied journals it saw. After a power
loss the files may hold old data or none; the start-up that finds applied
journals of another boot applies them all again in commit order (``seq``,
taken under the locks), then the unapplied ones, then checkpoints. A commit
went from ten fsyncs to two.

Why renaming in place is safe: the next commit of any project fsyncs
``.journal/`` before it applies anything, which makes the rename durable too, so
after a crash a journal is either still pending (and nothing later shares its
locks) or applied and ordered; the applied ones that survive a checkpoint are
always the newest.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyramid_sumatra.storage.types import StorageConflict

from . import codec, indexlog
from .files import (
    atomic_write,
    fsync_dir,
    read_json,
    remove,
    remove_tree,
    sync_filesystem,
    write_temp,
)
from .paths import Layout

LOCK_TIMEOUT = 30.0

#: Applied journals kept before a checkpoint (see the module docstring): the cost of one
#: syncfs spread over this many commits, and at most this many replayed after a reboot.
CHECKPOINT_EVERY = 128
APPLIED = ".applied"


def _boot_id() -> str:
    """This boot of the machine: applied journals of another boot may not be on disk."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip().replace("-", "")[:16] or "unknown"
    except OSError:
        return "unknown"  # no way to tell: start-up always replays


BOOT = _boot_id()

Op = dict[str, Any]


class LockSet:
    """Exclusive locks on ``keys``, taken in sorted order (so never a deadlock).

    Each is a thread lock (threads of a process queue on it, woken at once) and then an
    flock of ``.locks/<key>.lock``, tried every :data:`POLL` seconds until the timeout
    (the kernel drops a dead process's flock). The file is opened for each acquisition
    and closed at release: a process keeps no descriptor per project. (filelock did the
    same at ~1 ms of CPU per lock on the development machine.)
    """

    def __init__(self, layout: Layout, keys: list[str], timeout: float = LOCK_TIMEOUT):
        self.layout, self.keys, self.timeout = layout, sorted(set(keys)), timeout
        self.held: list[tuple[threading.Lock, int]] = []

    def acquire(self) -> None:
        self.layout.locks.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.timeout
        try:
            for key in self.keys:
                self._acquire(key, str(self.layout.lock_file(key)), deadline)
        except BaseException:
            self.release()
            raise

    def _acquire(self, key: str, path: str, deadline: float) -> None:
        in_process = _thread_lock(path)
        if not in_process.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise StorageConflict(f"timed out waiting for the lock {key!r}")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except BaseException:
            in_process.release()
            raise
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StorageConflict(
                            f"timed out waiting for the lock {key!r}") from None
                    time.sleep(POLL)
        except BaseException:
            os.close(fd)
            in_process.release()
            raise
        self.held.append((in_process, fd))

    def release(self) -> None:
        while self.held:
            in_process, fd = self.held.pop()
            os.close(fd)  # drops the flock
            in_process.release()


#: Seconds between tries of a lock another process holds.
POLL = 0.001

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock(path: str) -> threading.Lock:
    with _thread_locks_guard:
        return _thread_locks.setdefault(path, threading.Lock())


def _forget_thread_locks() -> None:
    # A child forked while a thread held one would wait for it for ever.
    global _thread_locks_guard
    _thread_locks.clear()
    _thread_locks_guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_thread_locks)


@contextmanager
def locked(layout: Layout, keys: list[str]) -> Iterator[None]:
    locks = LockSet(layout, keys)
    locks.acquire()
    try:
        yield
    finally:
        locks.release()


def _applied_names(layout: Layout) -> list[str]:
    try:
        names = os.listdir(layout.journal)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.endswith(APPLIED))  # seq is zero-padded


def applied(layout: Layout) -> list[Path]:
    """Applied journals not yet checkpointed, oldest commit first."""
    return [layout.journal / n for n in _applied_names(layout)]


def _boot_of(path: Path) -> str:
    return path.name.split(".")[1]


def _mark_applied(layout: Layout, path: Path) -> int:
    """Keep a journal whose operations are applied, named by its place in commit order:
    after the last applied one (under the locks of the journals it shares files with)."""
    done = _applied_names(layout)
    last = int(done[-1].split(".")[0]) if done else 0
    seq = max(time.time_ns(), last + 1)  # a clock set back does not reorder
    os.replace(path, layout.journal / f"{seq:020d}.{BOOT}.{path.stem}{APPLIED}")
    return len(done) + 1


def pending(layout: Layout, keys: list[str] | None = None) -> list[Path]:
    """Committed journals not yet fully applied; only those locking one of ``keys`` if given."""
    try:
        names = sorted(os.listdir(layout.journal))
    except FileNotFoundError:
        return []
    paths = [layout.journal / n for n in names if n.endswith(".json") and not n.startswith(".")]
    if keys is None:
        return paths
    wanted = set(keys)
    found = []
    for path in paths:
        doc = read_json(path)
        if doc is not None and wanted.intersection(doc["locks"]):
            found.append(path)
    return found


def prepare(layout: Layout, txid: str, locks: list[str], ops: list[Op]) -> Path:
    """Write the journal to a temp file (the vote); return it."""
    text = json.dumps({"id": txid, "locks": sorted(locks), "ops": ops}, ensure_ascii=False)
    return write_temp(layout.journal / f"{txid}.json", text)


def commit(layout: Layout, temp: Path, txid: str) -> Path:
    """The commit point: the journal becomes durable under its real name."""
    path = layout.journal / f"{txid}.json"
    os.replace(temp, path)
    fsync_dir(layout.journal)
    return path


def apply(layout: Layout, ops: list[Op], durable: bool = True) -> None:
    """Perform ``ops`` (idempotently); ``durable``: fsync what they wrote, and the
    directories they changed."""
    dirs: set[Path] = set()

    def touched(target: Path) -> None:
        # A directory made now must itself be recorded in its parent.
        missing = target.parent
        while not missing.exists():
            dirs.add(missing.parent)
            missing = missing.parent
        dirs.add(target.parent)

    for op in ops:
        kind = op["op"]
        if kind == "drop":
            remove_tree(layout.project_dir(op["project"]))
        elif kind == "write":
            target = layout.absolute(op["path"])
            touched(target)
            atomic_write(target, op["text"], durable)
        elif kind == "delete":
            target = layout.absolute(op["path"])
            remove(target)
            dirs.add(target.parent)
        elif kind == "index":  # one line appended to the log, or a new base (indexlog)
            target = layout.index_file(op["project"])
            touched(target)
            if op["reset"]:
                indexlog.write_base(layout, op["project"], {
                    label: codec.compact_entry(entry) for label, entry in op["set"].items()})
            else:
                indexlog.append(layout, op["project"], op["set"], op["remove"], durable)
        else:
            raise ValueError(f"unknown journal operation {kind!r}")
    if not durable:
        return
    for directory in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
        if directory.exists():
            fsync_dir(directory)


def finish(layout: Layout, path: Path, ops: list[Op]) -> int:
    """Apply a committed journal's ``ops`` and keep it, applied, until a checkpoint;
    how many applied journals there are now (the caller checkpoints at enough)."""
    apply(layout, ops, durable=False)
    return _mark_applied(layout, path)


def checkpoint(layout: Layout, at_least: int | None = None) -> int:
    """Once ``at_least`` journals (default :data:`CHECKPOINT_EVERY`) are applied: write
    the filesystem back, then drop them (all they wrote is on disk); how many."""
    names = _applied_names(layout)
    if not names or len(names) < (CHECKPOINT_EVERY if at_least is None else at_least):
        return 0
    done = [layout.journal / n for n in names]
    sync_filesystem(layout.root)  # what they wrote was cached before they were listed
    for path in done:
        remove(path)
    fsync_dir(layout.journal)
    return len(done)


def recover(layout: Layout, path: Path) -> bool:
    """Apply a journal left by a process that died; True if this call applied it."""
    doc = read_json(path)
    if doc is None:
        return False
    with locked(layout, doc["locks"]):
        if not path.exists():  # its owner was alive and finished meanwhile
            return False
        finish(layout, path, doc["ops"])
    return True


def _after_reboot(journals: list[Path]) -> bool:
    return any(_boot_of(p) != BOOT or BOOT == "unknown" for p in journals)


def _locks_of(paths: list[Path]) -> set[str]:
    keys: set[str] = set()
    for path in paths:
        doc = read_json(path)
        if doc is not None:
            keys.update(doc["locks"])
    return keys


def replay_after_reboot(layout: Layout) -> int:
    """Apply every kept journal again, in commit order, if any is of another boot (what
    it wrote may not have reached the disk), then checkpoint; how many were replayed."""
    while _after_reboot(applied(layout)):
        keys = _locks_of(applied(layout) + pending(layout))
        with locked(layout, sorted(keys)):
            done, waiting = applied(layout), pending(layout)
            if not _after_reboot(done):
                return 0  # another process was first
            if _locks_of(done + waiting) - keys:
                continue  # a newer journal needs more locks: take them all, then replay
            for path in done:
                doc = read_json(path)
                if doc is not None:
                    apply(layout, doc["ops"], durable=False)
            for path in waiting:  # their writers are gone too: they come last
                doc = read_json(path)
                if doc is not None:
                    finish(layout, path, doc["ops"])
            checkpoint(layout, at_least=1)
            return len(done)
    return 0


def recover_all(layout: Layout) -> int:
    replayed = replay_after_reboot(layout)
    return replayed + sum(recover(layout, path) for path in pending(layout))
