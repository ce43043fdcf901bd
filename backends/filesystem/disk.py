"""Reading the committed state: what is on disk now, with the project indexes cached.

Files are only ever replaced whole (os.replace), so every read sees a complete
file. Parsed indexes are cached per project and reused while the file on disk
is the same one (same inode, size, mtime and random serial in its first bytes).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from pyramid_sumatra.types import StoredRecord, UserInfo

from . import codec
from .files import read_json
from .paths import Layout, name_problem


class Disk:
    def __init__(self, layout: Layout):
        self.layout = layout
        # project -> (file signature, entries, serialised lines of those entries)
        self._indexes: dict[str, tuple[tuple, dict[str, dict], dict[str, str]]] = {}
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
        return self.index_state(project_id)[0]

    def index_state(self, project_id: str) -> tuple[dict[str, dict], dict[str, str]]:
        """The entries and their cached lines (see codec.index_text); modify neither."""
        path = self.layout.index_file(project_id)
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            return {}, {}
        with f:
            st = os.fstat(f.fileno())
            head = f.read(96)
            signature = (st.st_ino, st.st_size, st.st_mtime_ns, codec.index_serial(head))
            cached = self._indexes.get(project_id)
            if cached and cached[0] == signature:
                return cached[1], cached[2]
            entries = codec.parse_index((head + f.read()).decode("utf-8"))
        with self._lock:
            self._indexes[project_id] = (signature, entries, {})
        return entries, {}

    def remember_index(self, project_id: str, entries: dict[str, dict],
                       lines: dict[str, str]) -> None:
        """Cache the index this process just wrote (saves parsing it again)."""
        try:
            with open(self.layout.index_file(project_id), "rb") as f:
                st = os.fstat(f.fileno())
                head = f.read(96)
        except FileNotFoundError:
            return
        signature = (st.st_ino, st.st_size, st.st_mtime_ns, codec.index_serial(head))
        with self._lock:
            self._indexes[project_id] = (signature, entries, lines)

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
