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
from pathlib import Path

from pyramid_sumatra.storage.query import time_order_key
from pyramid_sumatra.storage.types import StoredRecord, UserInfo

from . import codec, indexlog
from .codec import IndexEntry
from .files import read_json
from .paths import Layout, name_problem

#: Held while a version's chain is walked or made whole (rare, and short but for that).
_CHAINS = threading.Lock()


class IndexState:
    """One version of a project's index, parsed, with the keys by time built lazily.

    A version is never changed once made: other threads may be reading it. The next
    version (``updated``) starts as this one plus the change, and becomes a dict of
    its own (one copy, whatever the number of versions in between) only when its
    entries are asked for, or after ``MAX_PENDING`` versions: so a run of commits to
    a large project costs each commit only its own records, not a copy of 100,000.
    The keys by time, once built, are carried to the next version with bisect.
    """

    #: Versions kept as changes before one is made whole (a lookup walks them).
    MAX_PENDING = 32

    __slots__ = ("_entries", "_by_time", "_parent", "_changed", "_removed", "_count",
                 "_pending")

    def __init__(self, entries: dict[str, IndexEntry],
                 by_time: list[str] | None = None) -> None:
        self._entries: dict[str, IndexEntry] | None = entries
        self._by_time = by_time
        self._parent: IndexState | None = None
        self._changed: dict[str, IndexEntry] = {}
        self._removed: frozenset[str] = frozenset()
        self._count = len(entries)
        self._pending = 0

    @property
    def entries(self) -> dict[str, IndexEntry]:
        """``{label: entry}``; do not modify it."""
        if self._entries is None:
            with _CHAINS:
                if self._entries is None:
                    self._materialise()
        assert self._entries is not None
        return self._entries

    def __len__(self) -> int:
        return self._count

    def get(self, label: str) -> IndexEntry | None:
        with _CHAINS:  # not while another thread makes a version whole
            state: IndexState | None = self
            while state is not None:
                if state._entries is not None:
                    return state._entries.get(label)
                if label in state._changed:
                    return state._changed[label]
                if label in state._removed:
                    return None
                state = state._parent
        return None

    def __contains__(self, label: str) -> bool:
        return self.get(label) is not None

    @property
    def by_time(self) -> list[str]:
        """Every label in ascending order of ``(timestamp, label)``: labels alone, not
        pairs, which would cost ~7 MB more per process at 100,000 records."""
        entries = self.entries
        if self._by_time is None:
            self._by_time = sorted(entries, key=time_order_key(entries))
        return self._by_time

    def updated(self, changed: dict[str, IndexEntry], removed: list[str]) -> IndexState:
        """The next version: this one with ``changed`` entries set and ``removed`` ones gone."""
        gone = frozenset(removed) - changed.keys()
        count = self._count + sum(label not in self for label in changed) \
            - sum(label in self for label in gone)
        state = IndexState.__new__(IndexState)
        state._entries, state._by_time, state._parent = None, None, self
        state._changed, state._removed, state._count = dict(changed), gone, count
        state._pending = self._pending + 1
        if state._pending >= self.MAX_PENDING:
            state.entries  # noqa: B018 - made whole now
        return state

    def _materialise(self) -> None:
        """Make this version's dict (and keys by time, if its base has them): one copy
        of the nearest whole version, then each version's change in order."""
        chain = []
        state: IndexState | None = self
        while state is not None and state._entries is None:
            chain.append(state)
            state = state._parent
        assert state is not None and state._entries is not None
        entries = dict(state._entries)
        by_time = None if state._by_time is None else list(state._by_time)
        key = time_order_key(entries)  # every label in by_time is in entries throughout
        for step in reversed(chain):
            for label in [*step._removed, *step._changed]:
                old = entries.get(label)
                if old is not None and by_time is not None:
                    del by_time[bisect.bisect_left(by_time, (old["timestamp"], label), key=key)]
                entries.pop(label, None)
            for label, entry in step._changed.items():
                entries[label] = entry
                if by_time is not None:
                    bisect.insort(by_time, label, key=key)
        self._by_time, self._entries = by_time, entries  # entries last: others test it
        self._parent, self._changed, self._removed, self._pending = None, {}, frozenset(), 0

    def after(self, commits: list[indexlog.Commit]) -> IndexState:
        """The version after ``commits`` (in order)."""
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
        return codec.to_users(self.users_doc())

    def users_doc(self) -> dict | None:
        """``users.json`` as parsed (None if there is none)."""
        return read_json(self.layout.users)
