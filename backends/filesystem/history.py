"""Record history and the trash in the filesystem backend.

Layout (beside ``projects/``, so that dropping a project's directory leaves them)::

    DIR/history/<project>/<label>.json       entries of one record, oldest first
    DIR/history/<project>/.project.json      the project's own entries (no label starts with '.')
    DIR/trash/<project>/<label>@<stamp>.json  a deleted record: its item and body
    DIR/trash/<project>/.project@<stamp>.json a deleted project (the whole project)

``<stamp>`` is the deletion time ``YYYYMMDDTHHMMSS.ffffff``. Like tokens.json, a
transaction stages *operations* and the commit re-applies them to the files as they
are then, under the project's history lock (:func:`lock_keys`): two writers
appending to one record's history both land, and writers to different projects do
not wait for each other.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from pyramid_sumatra.storage.types import HistoryEntry, TrashItem

from .codec import CorruptFile
from .files import dumps_readable, read_json
from .paths import check_name

PROJECT_FILE = ".project"

#: ("add", HistoryEntry, keep) | ("forget", project, label | None)
#: | ("trash", TrashItem) | ("untrash", project, label, deleted_at)
Op = tuple


def lock_keys(ops: list[Op]) -> set[str]:
    """The locks a commit of ``ops`` takes: one per project whose history or trash it
    changes (a project's files are all under ``history/<p>/`` and ``trash/<p>/``)."""
    projects = {op[1].project_id if op[0] in ("add", "trash") else op[1] for op in ops}
    return {lock_key(p) for p in projects}


def lock_key(project_id: str) -> str:
    """The lock of a project's history and trash files."""
    return f"history-{check_name(project_id)}"


def label_of(file_name: str) -> str:
    """The label a history file's name stands for (``""``: the project's own)."""
    return "" if file_name == PROJECT_FILE + ".json" else file_name[:-5]


def _stamp(deleted_at: str) -> str:
    return deleted_at.replace("-", "").replace(":", "").replace(" ", "T")


class HistoryFiles:
    """Paths, reads of the committed files, and the staged view over them."""

    def __init__(self, root: Path):
        self.root = root
        self.history = root / "history"
        self.trash = root / "trash"

    # -- paths -----------------------------------------------------------------

    def history_file(self, project_id: str, label: str) -> Path:
        name = check_name(label) if label else PROJECT_FILE
        return self.history / check_name(project_id) / f"{name}.json"

    def trash_file(self, project_id: str, label: str, deleted_at: str) -> Path:
        name = check_name(label) if label else PROJECT_FILE
        return self.trash / check_name(project_id) / f"{name}@{_stamp(deleted_at)}.json"

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # -- committed state ---------------------------------------------------------

    def read_history(self, project_id: str, label: str) -> list[HistoryEntry]:
        return history_entries(self.history_file(project_id, label), project_id, label)

    def history_labels(self, project_id: str) -> list[str]:
        directory = self.history / check_name(project_id)
        names = os.listdir(directory) if directory.is_dir() else []
        return [label_of(n) for n in names if n.endswith(".json") and not n.endswith(".tmp")]

    def read_trash(self, project_id: str | None) -> dict[tuple[str, str, str], TrashItem]:
        items = {}
        projects = [project_id] if project_id is not None else (
            sorted(os.listdir(self.trash)) if self.trash.is_dir() else [])
        for pid in projects:
            directory = self.trash / check_name(pid)
            if not directory.is_dir():
                continue
            for name in os.listdir(directory):
                if not name.endswith(".json") or "@" not in name or name.endswith(".tmp"):
                    continue
                item = trash_item(directory / name)
                if item is not None:
                    items[(item.project_id, item.label, item.deleted_at)] = item
        return items

    # -- the staged view ---------------------------------------------------------

    def history_view(self, ops: list[Op], project_id: str, label: str) -> list[HistoryEntry]:
        return _apply_history(self.read_history(project_id, label), ops, project_id, label)

    def trash_view(self, ops: list[Op], project_id: str | None
                   ) -> dict[tuple[str, str, str], TrashItem]:
        items = self.read_trash(project_id)
        for op in ops:
            if op[0] == "trash" and project_id in (None, op[1].project_id):
                items[(op[1].project_id, op[1].label, op[1].deleted_at)] = op[1]
            elif op[0] == "untrash":
                items.pop((op[1], op[2], op[3]), None)
        return items

    # -- the commit (under the lock) -----------------------------------------------

    def plan(self, ops: list[Op]) -> list[dict[str, Any]]:
        """Journal operations applying ``ops`` to the files as they are now."""
        journal: list[dict[str, Any]] = []
        histories: set[tuple[str, str]] = set()
        for op in ops:
            if op[0] == "add":
                histories.add((op[1].project_id, op[1].label))
            elif op[0] == "forget":
                labels = [op[2]] if op[2] is not None else self.history_labels(op[1]) + [
                    o[1].label for o in ops if o[0] == "add" and o[1].project_id == op[1]]
                histories.update((op[1], label) for label in labels)
        for project_id, label in sorted(histories):
            path = self.relative(self.history_file(project_id, label))
            entries = self.history_view(ops, project_id, label)
            if entries:
                journal.append({"op": "write", "path": path, "text": dumps_readable(
                    [_entry_doc(e) for e in entries])})
            else:
                journal.append({"op": "delete", "path": path})
        for op in ops:
            if op[0] == "trash":
                item = op[1]
                journal.append({"op": "write", "path": self.relative(self.trash_file(
                    item.project_id, item.label, item.deleted_at)),
                    "text": dumps_readable(dataclasses.asdict(item))})
            elif op[0] == "untrash":
                journal.append({"op": "delete", "path": self.relative(
                    self.trash_file(op[1], op[2], op[3]))})
        return journal


def history_entries(path: Path, project_id: str, label: str) -> list[HistoryEntry]:
    """A history file's entries (none if it does not exist); CorruptFile if unreadable."""
    try:
        return [HistoryEntry(project_id=project_id, label=label, **e)
                for e in read_json(path) or []]
    except (ValueError, TypeError, AttributeError) as exc:  # not JSON, or not entries
        raise CorruptFile(f"unreadable history file {path.name} of {project_id!r}: "
                          f"{type(exc).__name__}: {exc}") from exc


def trash_item(path: Path) -> TrashItem | None:
    """A trash file's item (None if it does not exist); CorruptFile if unreadable."""
    try:
        doc = read_json(path)
        return None if doc is None else TrashItem(**doc)
    except (ValueError, TypeError) as exc:
        raise CorruptFile(f"unreadable trash file {path.name} of {path.parent.name!r}: "
                          f"{type(exc).__name__}: {exc}") from exc


def _entry_doc(entry: HistoryEntry) -> dict[str, Any]:
    doc = dataclasses.asdict(entry)
    del doc["project_id"], doc["label"]
    return doc


def _apply_history(entries: list[HistoryEntry], ops: list[Op], project_id: str,
                   label: str) -> list[HistoryEntry]:
    for op in ops:
        if op[0] == "add" and (op[1].project_id, op[1].label) == (project_id, label):
            entries.append(op[1])
            entries.sort(key=lambda e: e.key)
            if op[2] > 0:
                del entries[:-op[2]]
        elif op[0] == "forget" and op[1] == project_id and op[2] in (None, label):
            entries = []
    return entries
