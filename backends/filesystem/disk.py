"""Reading the committed state: what is on disk now, with the project indexes cached.

Files are only ever replaced whole (os.replace), so every read sees a complete
file. Parsed indexes are cached per project and reused while the file on disk
is the same one (same inode, size, mtime and random serial in its first bytes).
"""

from __future__ import annotations

import bisect
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from pyramid_sumatra.storage.types import StoredRecord, UserInfo

from . import codec
from .files import read_json
from .paths import Layout, name_problem


@dataclass
class IndexState:
    """One version of a project's index, parsed, with what is derived from it lazily.

    Derived lists (keys by time for paging, labels and serialised lines in file
    order for writing) are built once, then carried to the next version by
    ``updated`` with bisect, so a commit to a large project touches only its records.
    """

    entries: dict[str, dict]
    _by_time: list[tuple[str, str]] | None = None
    _labels: list[str] | None = None
    _lines: list[str] | None = None
    #: The file this version was read from and its serial: its lines are taken from
    #: there when a commit first needs them (not kept by every reader: 100,000
    #: records' lines are ~40 MB per process).
    _source: tuple[Path, bytes] | None = None

    def _load_lines(self) -> None:
        """Lines and labels from the source file, if it is still this version."""
        if self._lines is not None or self._source is None:
            return
        path, serial = self._source
        self._source = None
        try:
            data = path.read_bytes()
        except OSError:
            return
        if codec.index_serial(data[:96]) != serial:
            return  # rewritten since: serialise afresh
        labels = sorted(self.entries)
        lines = codec.index_lines(data.decode("utf-8"), labels)
        if lines is not None:
            self._labels, self._lines = labels, lines

    @property
    def by_time(self) -> list[tuple[str, str]]:
        """``(timestamp, label)`` of every record in ascending order."""
        if self._by_time is None:
            self._by_time = sorted((e["timestamp"], label) for label, e in self.entries.items())
        return self._by_time

    def text(self) -> str:
        """The index file's text."""
        self._load_lines()
        if self._lines is None:
            self._labels = sorted(self.entries)
            self._lines = [codec.index_line(label, self.entries[label]) for label in self._labels]
        return codec.index_text(self.entries, self._lines)

    def updated(self, changed: dict[str, dict], removed: list[str]) -> IndexState:
        """The next version: a copy with ``changed`` entries set and ``removed`` ones gone."""
        self._load_lines()
        entries = dict(self.entries)
        by_time = None if self._by_time is None else list(self._by_time)
        labels = None if self._labels is None else list(self._labels)
        lines = None if self._lines is None or labels is None else list(self._lines)
        for label in [*removed, *changed]:
            old = entries.pop(label, None)
            if old is None:
                continue
            if by_time is not None:
                del by_time[bisect.bisect_left(by_time, (old["timestamp"], label))]
            if labels is not None and lines is not None:
                at = bisect.bisect_left(labels, label)
                del labels[at], lines[at]
        for label, entry in changed.items():
            entries[label] = entry
            if by_time is not None:
                bisect.insort(by_time, (entry["timestamp"], label))
            if labels is not None and lines is not None:
                at = bisect.bisect_left(labels, label)
                labels.insert(at, label)
                lines.insert(at, codec.index_line(label, entry))
        return IndexState(entries, by_time, labels, lines)


EMPTY = IndexState({})


class Disk:
    def __init__(self, layout: Layout):
        self.layout = layout
        self._indexes: dict[str, tuple[tuple, IndexState]] = {}  # project -> (signature, state)
        self._lock = threading.Lock()

    # -- projects ---------------------------------------------------------------

    def project_ids(self) -> list[str]:
        try:
            names = os.listdir(self.layout.projects)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if name_problem(n) is None
                      and (self.layout.projects / n / "project.json").is_file())

    def project(self, project_id: str) -> dict | None:
        return read_json(self.layout.project_file(project_id))

    def index(self, project_id: str) -> dict[str, dict]:
        """``{label: index entry}`` of a project (empty if none); do not modify it."""
        return self.index_state(project_id).entries

    def index_state(self, project_id: str) -> IndexState:
        """The project's index as on disk now (cached while the file is unchanged)."""
        path = self.layout.index_file(project_id)
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            return EMPTY
        with f:
            st = os.fstat(f.fileno())
            head = f.read(96)
            signature = (st.st_ino, st.st_size, st.st_mtime_ns, codec.index_serial(head))
            cached = self._indexes.get(project_id)
            if cached and cached[0] == signature:
                return cached[1]
            entries = codec.parse_index((head + f.read()).decode("utf-8"))
            state = IndexState(entries, _source=(path, codec.index_serial(head)))
        with self._lock:
            self._indexes[project_id] = (signature, state)
        return state

    def remember_index(self, project_id: str, state: IndexState) -> None:
        """Cache the index this process just wrote (saves parsing and sorting it again)."""
        try:
            with open(self.layout.index_file(project_id), "rb") as f:
                st = os.fstat(f.fileno())
                head = f.read(96)
        except FileNotFoundError:
            return
        signature = (st.st_ino, st.st_size, st.st_mtime_ns, codec.index_serial(head))
        with self._lock:
            self._indexes[project_id] = (signature, state)

    def read_index_uncached(self, project_id: str) -> dict[str, dict]:
        path = self.layout.index_file(project_id)
        try:
            return codec.parse_index(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    # -- records ----------------------------------------------------------------

    def record(self, project_id: str, label: str) -> StoredRecord | None:
        return self.record_at(self.layout.record_file(project_id, label), project_id, label)

    @staticmethod
    def record_at(path: Path, project_id: str, label: str) -> StoredRecord | None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return codec.parse_record(text, project_id, label)[0]

    # -- users ------------------------------------------------------------------

    def users(self) -> dict[str, UserInfo]:
        return codec.to_users(read_json(self.layout.users))
