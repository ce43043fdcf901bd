"""A project's index on disk: a base snapshot and an append-only log of commits.

``index.json`` (the base) holds every entry, one line per record, and a random
serial; ``index.log`` starts with a header naming that serial, then holds one line
per commit since the base was written, ``{"set": {label: entry}, "remove": [label]}``.
A commit appends its line and fsyncs it: the base is never rewritten by a commit,
so a write costs the same at 100,000 records as at 1,000.

When the log outgrows a fraction of the base, the committing process (still under
the project lock, its commit done) compacts: it writes a new base with a new serial,
then removes the log. A log whose header names another serial is what a compaction
that died between those two steps leaves: the new base already holds all of it, so
it is ignored (and replaced by the next append). Readers open the log before the
base, so the base they find is the log's own or a newer one that holds all of it.

A last line without its newline is a torn append: its writer died, and its commit,
still in the journal, will be appended again. Readers leave it out; a writer cuts it
off (under the lock) before appending. A base without a serial (the format before
the log, written by hand, or by an older ``check --repair``) has no log: the first
commit rewrites it with a serial. A store written before the log existed (a base
with a serial, no log) is read as it is; its first commit starts the log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import codec
from .codec import IndexEntry
from .files import atomic_write, fsync_dir, remove
from .paths import Layout

#: Compact when the log is larger than this fraction of the base (and than MIN_LOG):
#: a commit's line is appended ~FRACTION x records / entries-per-commit times
#: before the base is rewritten once, so rewriting costs each commit O(1) on average.
COMPACT_FRACTION = 0.25
MIN_LOG = 1 << 20

#: How many bytes of a base hold its serial (see codec.index_serial).
HEAD = 96


@dataclass(frozen=True)
class Source:
    """Which files an index was read from and how far, to read only what is appended."""

    base: tuple  # (inode, size, mtime, first bytes) of index.json
    serial: str | None
    log: int | None  # inode of index.log (applied or ignored), None if there is none
    log_end: int  # bytes of the log applied (0: none)


Commit = tuple[dict[str, IndexEntry], list[str]]  # (entries set, labels removed)


def apply_commit(entries: dict[str, IndexEntry], changed: dict[str, IndexEntry],
                 removed: list[str]) -> None:
    for label in removed:
        entries.pop(label, None)
    entries.update(changed)


def _open(path: Path):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


def read(layout: Layout, project_id: str, cached: Source | None = None
         ) -> tuple[Source, dict[str, IndexEntry] | None, list[Commit]] | None:
    """The index as on disk now: None if there is no index.json; else its source and
    either all entries, or (``cached`` naming the same base) None and the commits
    appended to the log since ``cached`` was read (none: unchanged)."""
    log_f = _open(layout.index_log(project_id))  # the log first: see the module docstring
    try:
        base_f = _open(layout.index_file(project_id))
        if base_f is None:
            return None
        with base_f:
            st = os.fstat(base_f.fileno())
            head = base_f.read(HEAD)
            base = (st.st_ino, st.st_size, st.st_mtime_ns, head)
            log_st = os.fstat(log_f.fileno()) if log_f is not None else None
            log_ino = log_st.st_ino if log_st is not None else None
            if cached is not None and cached.base == base:
                tail = _tail(log_f, log_st, cached)
                if tail is not None:
                    return tail
            entries = codec.read_index(base_f)
        serial = codec.index_serial(head)
        log_end = 0
        if log_f is not None and serial is not None:
            header = log_f.readline()
            if header.endswith(b"\n") and codec.parse_log_header(header) == serial:
                commits, used = codec.parse_log_lines(log_f.read())
                for changed, removed in commits:
                    apply_commit(entries, changed, removed)
                log_end = len(header) + used
        return Source(base, serial, log_ino, log_end), entries, []
    finally:
        if log_f is not None:
            log_f.close()


def written(layout: Layout, project_id: str) -> Source | None:
    """The source of the index its writer has just written, without reading it back
    (under the project lock, right after :func:`append` or :func:`write_base`)."""
    try:
        with open(layout.index_file(project_id), "rb") as f:
            st = os.fstat(f.fileno())
            head = f.read(HEAD)
    except FileNotFoundError:
        return None
    serial = codec.index_serial(head)
    try:
        log = layout.index_log(project_id).stat()
    except FileNotFoundError:
        log = None
    return Source((st.st_ino, st.st_size, st.st_mtime_ns, head), serial,
                  None if log is None else log.st_ino,
                  0 if log is None or serial is None else log.st_size)


def _tail(log_f, log_st, cached: Source
          ) -> tuple[Source, None, list[Commit]] | None:
    """What was appended since ``cached`` (same base); None if the log was replaced."""
    if log_f is None:
        return (cached, None, []) if cached.log is None else None
    start = cached.log_end
    if cached.log is None:  # the base's first log since this process read it
        if cached.serial is None:
            return cached, None, []  # no log applies to a base without serial
        header = log_f.readline()
        if not (header.endswith(b"\n") and codec.parse_log_header(header) == cached.serial):
            return Source(cached.base, cached.serial, log_st.st_ino, 0), None, []
        start = len(header)
    elif cached.log != log_st.st_ino or log_st.st_size < start:
        return None  # replaced or cut short: read it afresh
    elif start == 0:
        return cached, None, []  # a log that does not apply to this base
    if log_st.st_size == start:
        return Source(cached.base, cached.serial, log_st.st_ino, start), None, []
    log_f.seek(start)
    commits, used = codec.parse_log_lines(log_f.read())
    return Source(cached.base, cached.serial, log_st.st_ino, start + used), None, commits


def inspect(layout: Layout, project_id: str) -> tuple[dict[str, IndexEntry] | None, list[str]]:
    """For ``check``: the entries (None: no index.json) and what is wrong with the log
    (stale, torn tail); CorruptFile if a file is unreadable."""
    found = read(layout, project_id)
    if found is None:
        return None, []
    source, entries, _ = found
    assert entries is not None
    problems = []
    path = layout.index_log(project_id)
    if source.log is not None:
        size = path.stat().st_size
        if source.log_end == 0:
            problems.append("index.log belongs to another index.json (an interrupted "
                            "compaction or a hand-written index)")
        elif size > source.log_end:
            problems.append(f"index.log ends in a torn line ({size - source.log_end} bytes)")
    return entries, problems


def write_base(layout: Layout, project_id: str, entries: dict) -> None:
    """Replace the base with ``entries`` (a new serial) and drop the log it holds."""
    atomic_write(layout.index_file(project_id), codec.index_text(entries))
    if remove(layout.index_log(project_id)):
        fsync_dir(layout.project_dir(project_id))


def append(layout: Layout, project_id: str, changed: dict[str, dict], removed: list[str],
           durable: bool = True) -> None:
    """Record one commit's change to the index (under the project lock); the line is
    fsync'd if ``durable``.

    Idempotent, as the journal needs: a commit appended twice sets and removes the
    same entries twice (and commits replayed in their order end as they did).
    """
    base_path = layout.index_file(project_id)
    try:
        with open(base_path, "rb") as f:
            serial = codec.index_serial(f.read(HEAD))
    except FileNotFoundError:
        serial = None
        entries: dict = {}
    else:
        entries = {}
        if serial is None:
            with open(base_path, "rb") as f:
                entries = codec.read_index(f)
    if serial is None:  # no base, or one without a serial: a base holding this commit
        apply_commit(entries, {k: codec.compact_entry(v) for k, v in changed.items()}, removed)
        write_base(layout, project_id, entries)
        return
    line = codec.log_line(changed, removed)
    path = layout.index_log(project_id)
    try:
        f = open(path, "r+b")
    except FileNotFoundError:
        f = None
    if f is not None:
        with f:
            header = f.readline()
            if header.endswith(b"\n") and codec.parse_log_header(header) == serial:
                _cut_torn_tail(f, len(header))
                f.seek(0, os.SEEK_END)
                f.write(line.encode("utf-8"))
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
                return
    # The first commit since the base (or the log is a dead compaction's): a new log.
    atomic_write(path, codec.log_header(serial) + line, durable)


def _cut_torn_tail(f, start: int) -> None:
    """Truncate a last line its writer did not finish (it died: the lock was free)."""
    size = os.fstat(f.fileno()).st_size
    if size <= start:
        return
    f.seek(size - 1)
    if f.read(1) == b"\n":
        return
    f.seek(start)
    data = f.read()
    f.truncate(start + data.rfind(b"\n") + 1)


def needs_compaction(layout: Layout, project_id: str) -> bool:
    try:
        log_size = layout.index_log(project_id).stat().st_size
        base_size = layout.index_file(project_id).stat().st_size
    except FileNotFoundError:
        return False
    return log_size > max(MIN_LOG, COMPACT_FRACTION * base_size)
