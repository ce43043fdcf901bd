"""Reading the committed state: what is on disk now, with the project indexes cached.

Files are only ever replaced whole (os.replace) or, for an index's log, appended to
(see :mod:`.indexlog`), so every read sees a complete file or a log whose unfinished
last line it leaves out. Parsed indexes are cached per project and reused while the
base file on disk is the same one (same inode, size, mtime and random serial in its
first bytes); lines appended to the log since are read and applied alone.
"""

from __future__ import annotations

import bisect
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from pyramid_sumatra.storage.types import StoredRecord, UserInfo

from . import codec, indexlog
from .codec import IndexEntry
from .files import read_json
from .paths import Layout, name_problem


@dataclass
class IndexState:
    """One version of a project's index, parsed, with the keys by time built lazily.

    The keys by time are built once, then carried to the next version by ``updated``
    with bisect, so a commit to a large project touches only its records. A version
    is never changed once made: other threads may be reading it.
    """

    entries: dict[str, IndexEntry]
    _by_time: list[tuple[str, str]] | None = None

    @property
    def by_time(self) -> list[tuple[str, str]]:
        """``(timestamp, label)`` of every record in ascending order."""
        if self._by_time is None:
            self._by_time = sorted((e["timestamp"], label) for label, e in self.entries.items())
        return self._by_time

    def updated(self, changed: dict[str, IndexEntry], removed: list[str]) -> IndexState:
        """The next version: a copy with ``changed`` entries set and ``removed`` ones gone."""
        entries = dict(self.entries)
        by_time = None if self._by_time is None else list(self._by_time)
        for label in [*removed, *changed]:
            old = entries.pop(label, None)
            if old is not None and by_time is not None:
                del by_time[bisect.bisect_left(by_time, (old["timestamp"], label))]
        for label, entry in changed.items():
            entries[label] = entry
            if by_time is not None:
                bisect.insort(by_time, (entry["timestamp"], label))
        return IndexState(entries, by_time)

    def after(self, commits: list[indexlog.Commit]) -> IndexState:
        """The version after ``commits`` (in order), made in one copy."""
        changed: dict[str, IndexEntry] = {}
        removed: set[str] = set()
        for commit_changed, commit_removed in commits:
            for label in commit_removed:
                changed.pop(label, None)
                removed.add(label)
            changed.update(commit_changed)
        return self.updated(changed, sorted(removed)) if commits else self


EMPTY = IndexState({})


class Disk:
    def __init__(self, layout: Layout):
        self.layout = layout
        #: project -> (the files it was read from, the parsed index)
        self._indexes: dict[str, tuple[indexlog.Source, IndexState]] = {}
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

    def index(self, project_id: str) -> dict[str, IndexEntry]:
        """``{label: index entry}`` of a project (empty if none); do not modify it."""
        return self.index_state(project_id).entries

    def index_state(self, project_id: str) -> IndexState:
        """The project's index as on disk now (cached; only a log's new lines are read)."""
        cached = self._indexes.get(project_id)
        found = indexlog.read(self.layout, project_id, cached[0] if cached else None)
        if found is None:
            return EMPTY
        source, entries, commits = found
        if entries is not None:
            state = IndexState(entries)
        else:
            assert cached is not None
            state = cached[1].after(commits)
        if cached is None or source != cached[0] or state is not cached[1]:
            with self._lock:
                self._indexes[project_id] = (source, state)
        return state

    def remember_index(self, project_id: str, state: IndexState) -> None:
        """Cache the index this process just wrote (under the project lock: nobody else
        wrote since), which saves reading back its own line or parsing a new base."""
        source = indexlog.written(self.layout, project_id)
        if source is not None:
            with self._lock:
                self._indexes[project_id] = (source, state)

    def read_index_uncached(self, project_id: str) -> dict[str, IndexEntry]:
        found = indexlog.read(self.layout, project_id)
        return {} if found is None else found[1] or {}

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
