"""The redo journal that makes a commit touching several files atomic.

At vote time a transaction writes (to a temp file) the list of file
operations it will perform; renaming that file into ``.journal/`` is the
commit point. The operations are then applied and the journal removed, all
while the transaction holds the locks of every project it touches. If the
process dies in between, whoever finds the journal later (start-up, the next
commit, ``check --repair``) takes the same locks and applies it again: every
operation is idempotent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from pyramid_sumatra.storage.types import StorageConflict

from . import codec, indexlog
from .files import atomic_write, fsync_dir, read_json, remove, remove_tree, write_temp
from .paths import Layout

LOCK_TIMEOUT = 30.0

Op = dict[str, Any]


class LockSet:
    """Exclusive file locks on ``keys``, taken in sorted order (so never a deadlock)."""

    def __init__(self, layout: Layout, keys: list[str], timeout: float = LOCK_TIMEOUT):
        self.layout, self.keys, self.timeout = layout, sorted(set(keys)), timeout
        self.held: list[FileLock] = []

    def acquire(self) -> None:
        self.layout.locks.mkdir(parents=True, exist_ok=True)
        try:
            for key in self.keys:
                lock = FileLock(self.layout.lock_file(key), timeout=self.timeout,
                                poll_interval=0.001)
                try:
                    lock.acquire()
                except Timeout:
                    raise StorageConflict(f"timed out waiting for the lock {key!r}") from None
                self.held.append(lock)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        while self.held:
            self.held.pop().release()


@contextmanager
def locked(layout: Layout, keys: list[str]) -> Iterator[None]:
    locks = LockSet(layout, keys)
    locks.acquire()
    try:
        yield
    finally:
        locks.release()


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


def apply(layout: Layout, ops: list[Op]) -> None:
    """Perform ``ops`` (idempotently) and make them durable."""
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
            atomic_write(target, op["text"])
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
                indexlog.append(layout, op["project"], op["set"], op["remove"])
        else:
            raise ValueError(f"unknown journal operation {kind!r}")
    for directory in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
        if directory.exists():
            fsync_dir(directory)


def finish(layout: Layout, path: Path, ops: list[Op]) -> None:
    apply(layout, ops)
    remove(path)
    fsync_dir(layout.journal)


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


def recover_all(layout: Layout) -> int:
    return sum(recover(layout, path) for path in pending(layout))
