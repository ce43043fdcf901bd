"""``sumatra-server CONFIG check [--repair]`` for the filesystem backend.

The record files are the truth: an index (``index.json`` and its log) that
disagrees with them, or whose log ends in a torn line or belongs to another base,
is rebuilt from them, and so is a project's record count. Temp files and set-aside
directories left by dead processes are removed, interrupted commits finished,
grants to users that no longer exist dropped, unreadable record files moved to
``lost+found/``, and so are unreadable history and trash files. Everything runs
under every lock, so it is safe beside running servers.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from pyramid_sumatra.records import utcnow
from pyramid_sumatra.storage.types import ANONYMOUS, ProjectInfo

from . import codec, indexlog, journal
from . import history as history_file
from . import tokens as token_file
from .codec import CorruptFile
from .disk import Disk
from .files import atomic_write, dumps_readable, is_temp, pid_alive, read_json, temp_owner
from .paths import Layout, name_problem


def _stray_files(layout: Layout) -> list[Path]:
    """Temp files and set-aside trees whose writing process is gone."""
    found = []
    for directory, dirnames, filenames in os.walk(layout.root):
        here = Path(directory)
        if here == layout.locks:
            dirnames[:] = []
            continue
        for name in list(dirnames):
            if name.endswith(".trash") and not pid_alive(temp_owner(Path(name[:-6] + ".tmp"))):
                found.append(here / name)
                dirnames.remove(name)
        found.extend(here / n for n in filenames
                     if is_temp(here / n) and not pid_alive(temp_owner(here / n)))
    return found


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clean_stray_files(layout: Layout) -> int:
    stray = _stray_files(layout)
    for path in stray:
        _remove(path)
    return len(stray)


class _Report:
    def __init__(self, repair: bool):
        self.repair = repair
        self.problems: list[str] = []
        self.unrepaired: list[str] = []

    def problem(self, text: str, fixable: bool = True) -> bool:
        """Record a problem; True if the caller should repair it now."""
        self.problems.append(text)
        if not (self.repair and fixable):
            self.unrepaired.append(text)
        return self.repair and fixable


def _lost_and_found(layout: Layout, path: Path, project_id: str, kind: str = "") -> None:
    target = layout.root / "lost+found" / project_id / kind
    target.mkdir(parents=True, exist_ok=True)
    os.replace(path, target / f"{path.name}.{utcnow().replace(' ', 'T')}")


def _check_project(layout: Layout, disk: Disk, project_id: str, users: set[str] | None,
                   report: _Report) -> None:
    where = f"project {project_id!r}"
    try:
        doc = disk.project(project_id)
    except ValueError:
        doc = None
    actual: dict[str, dict] = {}
    records_dir = layout.records_dir(project_id)
    names = sorted(os.listdir(records_dir)) if records_dir.is_dir() else []
    for name in names:
        path = records_dir / name
        if is_temp(path) or not name.endswith(".json"):
            continue
        label = name[:-5]
        try:
            actual[label] = codec.parse_record(path.read_text(encoding="utf-8"),
                                               project_id, label)[1]
        except (CorruptFile, UnicodeDecodeError) as exc:
            if report.problem(f"{where}: unreadable record file {name} ({exc})"):
                _lost_and_found(layout, path, project_id)
    if doc is None:
        if report.problem(f"{where}: project.json is missing or unreadable"):
            now = utcnow()
            doc = codec.project_doc(ProjectInfo(id=project_id, name=project_id, created=now,
                                                last_updated=now), {})
        else:
            return
    try:
        index, log_problems = indexlog.inspect(layout, project_id)
    except CorruptFile as exc:
        index, log_problems = None, [f"({exc})"]
    if index is None:
        fix_index = report.problem(f"{where}: the index (index.json, index.log) is missing "
                                   f"or unreadable {' '.join(log_problems)}".rstrip())
    else:
        fix_index = False
        for text in log_problems:
            fix_index |= report.problem(f"{where}: {text}")
        # Compared as the index keeps them (an entry from the record file, compacted).
        actual_entries = {label: codec.compact_entry(entry) for label, entry in actual.items()}
        only_index = sorted(set(index) - set(actual))
        only_files = sorted(set(actual) - set(index))
        differ = sorted(label for label in set(index) & set(actual)
                        if index[label] != actual_entries[label])
        for what, labels in (("in the index but have no file", only_index),
                             ("have files but are not in the index", only_files),
                             ("differ between file and index", differ)):
            if labels:
                shown = ", ".join(labels[:5]) + (" ..." if len(labels) > 5 else "")
                fix_index |= report.problem(f"{where}: {len(labels)} records {what}: {shown}")
    if fix_index:  # a new base from the record files, and no log
        indexlog.write_base(layout, project_id, actual)
    changed = False
    if doc.get("record_count") != len(actual):
        changed |= report.problem(f"{where}: record_count is {doc.get('record_count')}, "
                                  f"there are {len(actual)} records")
        doc["record_count"] = len(actual)
    grants = doc.setdefault("grants", {})
    for principal in sorted(grants) if users is not None else ():
        # group:NAME grants name a directory group, not a user
        if principal != ANONYMOUS and principal not in users and \
                not principal.startswith("group:"):
            if report.problem(f"{where}: grant to unknown user {principal!r}"):
                del grants[principal]
                changed = True
    if changed or not layout.project_file(project_id).exists():
        atomic_write(layout.project_file(project_id), dumps_readable(doc))


def _history_projects(history: history_file.HistoryFiles) -> list[str]:
    """Projects with history or trash files (a deleted project keeps both)."""
    return sorted({name for directory in (history.history, history.trash) if directory.is_dir()
                   for name in os.listdir(directory)
                   if name_problem(name) is None and (directory / name).is_dir()})


def _check_history(layout: Layout, history: history_file.HistoryFiles, project_id: str,
                   report: _Report) -> None:
    """Every history and trash file of a project parses as what it holds; one that does
    not is moved to ``lost+found/<project>/history`` (or ``trash``)."""
    def readable_history(path: Path) -> None:
        history_file.history_entries(path, project_id, history_file.label_of(path.name))

    for kind, directory, readable in (("history", history.history, readable_history),
                                      ("trash", history.trash, history_file.trash_item)):
        folder = directory / project_id
        for name in sorted(os.listdir(folder)) if folder.is_dir() else []:
            path = folder / name
            if is_temp(path) or not name.endswith(".json"):
                continue
            try:
                readable(path)
            except CorruptFile as exc:
                if report.problem(f"project {project_id!r}: {exc}"):
                    _lost_and_found(layout, path, project_id, kind)


def check_store(layout: Layout, repair: bool) -> dict[str, Any]:
    """Check (and with ``repair`` fix) the whole store; see the module docstring."""
    report = _Report(repair)
    disk = Disk(layout)
    if not layout.root.is_dir():
        report.problem(f"{layout.root} does not exist (run initdb)", fixable=False)
        return {"backend": "filesystem", "problems": report.problems,
                "unrepaired": report.unrepaired}
    if repair:
        journal.recover_all(layout)
    project_dirs = sorted(n for n in os.listdir(layout.projects)
                          if name_problem(n) is None and (layout.projects / n).is_dir()) \
        if layout.projects.is_dir() else []
    history = history_file.HistoryFiles(layout.root)
    history_projects = _history_projects(history)
    keys = [Layout.USERS_LOCK, token_file.LOCK] + [Layout.project_lock(p) for p in project_dirs]
    keys += [history_file.lock_key(p) for p in history_projects]
    with journal.locked(layout, keys):
        for path in journal.pending(layout, keys):
            if report.problem(f"interrupted commit {path.name}"):
                journal.finish(layout, path, read_json(path)["ops"])
        for path in _stray_files(layout):
            if report.problem(f"stray file {layout.relative(path)}"):
                _remove(path)
        users: set[str] | None
        try:
            users = set(disk.users())
        except (ValueError, KeyError, AttributeError) as exc:
            report.problem(f"users.json is unreadable: {exc}", fixable=False)
            users = None  # then grants cannot be judged
        for project_id in project_dirs:
            _check_project(layout, disk, project_id, users, report)
        for project_id in history_projects:
            _check_history(layout, history, project_id, report)
    return {"backend": "filesystem", "problems": report.problems,
            "unrepaired": report.unrepaired}
