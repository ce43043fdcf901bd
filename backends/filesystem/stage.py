"""One transaction's staged writes, and the data manager that commits them.

Writes are kept in memory as *intentions* (put this record, grant that role,
drop that project) and reads in the same transaction see them. At commit the
intentions are re-applied to the state on disk under the project locks, after
checking that nothing this transaction read and then changed was changed by
someone else meanwhile (otherwise :class:`StorageConflict`: the request is
retried). Two-phase commit: ``tpc_vote`` locks, validates and writes the
journal; ``tpc_finish`` makes it the commit point and applies it.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import transaction.interfaces
from zope.interface import implementer

from pyramid_sumatra.storage.types import (
    ProjectInfo,
    StorageConflict,
    StorageFull,
    StoredRecord,
    UserInfo,
)

from . import codec, indexlog, journal
from . import history as history_file
from . import tokens as token_file
from .disk import EMPTY, Disk, IndexState
from .files import dumps_readable, remove, storage_error
from .paths import Layout

log = logging.getLogger(__name__)


@dataclass
class ProjectStage:
    """What this transaction does to one project."""

    drop: bool = False  # the project on disk (if any) is removed first
    deleted: bool = False  # and, finally, there is no project
    create: ProjectInfo | None = None  # created by this transaction
    meta: dict[str, str] = field(default_factory=dict)  # name, description
    touched: str = ""  # new last_updated
    grants: dict[str, str | None] = field(default_factory=dict)  # None: revoked
    records: dict[str, StoredRecord | None] = field(default_factory=dict)  # None: deleted
    creates: set[str] = field(default_factory=set)  # labels put with create=True


@implementer(transaction.interfaces.IDataManagerSavepoint)
class FilesystemSavepoint:
    """Staged writes as they were; ``rollback`` returns to them."""

    def __init__(self, dm: FilesystemDataManager):
        self.dm = dm
        self.state = copy.deepcopy((dm.projects, dm.users, dm.seen, dm.token_ops,
                                    dm.history_ops))

    def rollback(self) -> None:
        (self.dm.projects, self.dm.users, self.dm.seen, self.dm.token_ops,
         self.dm.history_ops) = copy.deepcopy(self.state)


@implementer(transaction.interfaces.ISavepointDataManager)
class FilesystemDataManager:
    def __init__(self, layout: Layout, disk: Disk, manager):
        self.layout, self.disk = layout, disk
        self.transaction_manager = manager
        self.projects: dict[str, ProjectStage] = {}
        self.users: dict[str, UserInfo | None] = {}
        self.token_ops: list[token_file.Op] = []  # applied to tokens.json at commit
        #: applied to history/ and trash/ at commit (history.py)
        self.history_ops: list[history_file.Op] = []
        #: (project, label) -> the revision this transaction read from disk (None: absent).
        self.seen: dict[tuple[str, str], str | None] = {}
        self.joined = False
        self.txid = uuid.uuid4().hex
        self._locks: journal.LockSet | None = None
        self._temp: Path | None = None
        self._ops: list[journal.Op] = []
        self._indexes: dict[str, IndexState] = {}  # project -> its index after this commit
        self._texts: dict[tuple[str, str], str] = {}  # (project, label) -> record file text
        #: Documents this transaction read (project.json, users.json), read once: a PUT
        #: read project.json five times and users.json three.
        self.read_docs: dict[str, Any] = {}

    # -- staging ----------------------------------------------------------------

    def stage(self, project_id: str) -> ProjectStage:
        return self.projects.setdefault(project_id, ProjectStage())

    def join(self, txn) -> None:
        if not self.joined:
            txn.join(self)
            self.joined = True

    @property
    def dirty(self) -> bool:
        return bool(self.projects or self.users or self.token_ops or self.history_ops)

    # -- IDataManager (and savepoints) ---------------------------------------------

    def savepoint(self) -> FilesystemSavepoint:
        return FilesystemSavepoint(self)

    def sortKey(self) -> str:
        return f"filesystem:{self.layout.root}"

    def abort(self, txn) -> None:
        self._reset()

    def tpc_begin(self, txn) -> None:
        pass

    def commit(self, txn) -> None:
        pass

    def tpc_vote(self, txn) -> None:
        try:
            self._vote()
        except OSError as exc:  # disk full, read-only: nothing was committed
            self._release()
            raise storage_error(exc) from exc

    def _vote(self) -> None:
        if not self._has_writes():
            return
        keys = self._lock_keys()
        # Encoded before the locks: a record's text depends on the record alone, and
        # every other writer of the project waits while the locks are held.
        self._texts = {(pid, label): codec.record_text(record)
                       for pid, st in self.projects.items()
                       for label, record in st.records.items() if record is not None}
        while True:
            self._locks = journal.LockSet(self.layout, keys)
            self._locks.acquire()
            # A journal on our projects while we hold their locks is a dead writer's:
            # let go, apply it (under its own locks), and start again.
            stale = journal.pending(self.layout, keys)
            if not stale:
                break
            self._locks.release()
            for path in stale:
                journal.recover(self.layout, path)
        try:
            self._ops = self._plan()
            self._temp = journal.prepare(self.layout, self.txid, keys, self._ops)
            self._ensure_room(self._temp)
        except BaseException:
            self._release()
            raise

    def _ensure_room(self, journal_file: Path) -> None:
        """507 now, before the commit point, unless applying the journal fits on the disk:
        past that point a full disk would leave an acknowledged write unapplied (a 201,
        then a 404 until recovery)."""
        st = os.statvfs(journal_file.parent)
        block = st.f_frsize or 4096
        # Every file is rewritten through a temp copy, each no larger than the journal;
        # an index only gets a line appended (a compaction that finds no room waits).
        need = journal_file.stat().st_size + block * (len(self._ops) + 1)
        if st.f_bavail * block < need:
            raise StorageFull(f"no space left on the device of the store: the commit needs "
                              f"{need} bytes, {st.f_bavail * block} are free")

    def tpc_finish(self, txn) -> None:
        if self._temp is None:
            self._reset()
            return
        kept = 0
        try:
            path = journal.commit(self.layout, self._temp, self.txid)
            self._temp = None
            try:
                kept = journal.finish(self.layout, path, self._ops)
            except Exception:  # the journal is committed: recovery will finish the work
                log.exception("applying journal %s failed; it will be applied again", path)
            else:
                for project_id, state in self._indexes.items():
                    self._compact(project_id, state)
                    self.disk.remember_index(project_id, state)
        finally:
            self._release()
            self._reset()
        try:  # after the locks: other writers go on while the disk catches up
            if kept >= journal.CHECKPOINT_EVERY:
                journal.checkpoint(self.layout)
        except OSError:  # the journals stay, and the next commit tries again
            log.warning("checkpoint of %s failed", self.layout.journal, exc_info=True)

    def _compact(self, project_id: str, state: IndexState) -> None:
        """Fold a project's index log into a new base once it is large (still under the
        lock, the commit done: ``state`` is what base and log hold); see indexlog."""
        try:
            if indexlog.needs_compaction(self.layout, project_id):
                indexlog.write_base(self.layout, project_id, state.entries)
        except OSError:  # no room, say: base and log stay as they are, and correct
            log.warning("compacting the index of %s failed", project_id, exc_info=True)

    def tpc_abort(self, txn) -> None:
        self._release()
        self._reset()

    def _release(self) -> None:
        if self._temp is not None:
            remove(self._temp)
            self._temp = None
        if self._locks is not None:
            self._locks.release()
            self._locks = None

    def _reset(self) -> None:
        self.projects.clear()
        self.users.clear()
        self.token_ops = []
        self.history_ops = []
        self.seen.clear()
        self._ops = []
        self._indexes = {}
        self._texts = {}
        self.read_docs = {}
        self.joined = False

    # -- planning the commit (under the locks) -------------------------------------

    def _has_writes(self) -> bool:
        return self.dirty  # stages are only made by writes

    def _lock_keys(self) -> list[str]:
        keys = [Layout.project_lock(pid) for pid in self.projects]
        if self.users:
            keys.append(Layout.USERS_LOCK)
        if self.token_ops:
            keys.append(token_file.LOCK)
        keys.extend(history_file.lock_keys(self.history_ops))
        return keys

    def _plan(self) -> list[journal.Op]:
        ops: list[journal.Op] = []
        for project_id, st in sorted(self.projects.items()):
            ops.extend(self._plan_project(project_id, st))
        if self.users:
            users = self.disk.users()
            for name, user in self.users.items():
                if user is None:
                    users.pop(name, None)
                else:
                    if name in users and users[name].created:
                        user = dataclasses.replace(user, created=users[name].created)
                    users[name] = user
            ops.append({"op": "write", "path": self.layout.relative(self.layout.users),
                        "text": dumps_readable(codec.users_doc(users))})
        if self.token_ops:
            tokens_path = token_file.path(self.layout.root)
            ops.append(token_file.write_op(self.layout.root, self.layout.relative(tokens_path),
                                           self.token_ops))
        if self.history_ops:
            ops.extend(history_file.HistoryFiles(self.layout.root).plan(self.history_ops))
        return ops

    def _plan_project(self, project_id: str, st: ProjectStage) -> list[journal.Op]:
        on_disk = self.disk.project(project_id)
        if st.create is not None and not st.drop and on_disk is not None:
            raise StorageConflict(f"project {project_id!r} was created concurrently")
        if st.deleted:
            return [{"op": "drop", "project": project_id}] if on_disk is not None else []
        if st.create is None and on_disk is None:
            raise StorageConflict(f"project {project_id!r} was deleted concurrently")
        if not st.drop:
            self._validate_records(project_id, st)
        ops: list[journal.Op] = [{"op": "drop", "project": project_id}] \
            if st.drop and on_disk is not None else []
        base = None if st.drop else on_disk
        current = EMPTY if base is None else self.disk.index_state(project_id)
        changed: dict[str, dict] = {}  # as the journal writes them
        removed: list[str] = []
        # New files before the index lists them, files removed after it stops listing
        # them: a reader of the index always finds the files it names.
        deletes: list[journal.Op] = []
        for label, record in sorted(st.records.items()):
            path = self.layout.relative(self.layout.record_file(project_id, label))
            if record is None:
                if label in current or base is not None:
                    deletes.append({"op": "delete", "path": path})
                    removed.append(label)
            else:
                ops.append({"op": "write", "path": path, "text": self._texts[project_id, label]})
                changed[label] = codec.index_entry(record)
        after = current.updated({label: codec.compact_entry(entry)
                                 for label, entry in changed.items()}, removed)
        if changed or removed or base is None:
            ops.append({"op": "index", "project": project_id, "reset": base is None,
                        "set": changed, "remove": removed})
            self._indexes[project_id] = after
        ops.extend(deletes)
        info = codec.to_project(base) if base is not None else st.create
        assert info is not None
        grants = dict(base.get("grants", {})) if base is not None else {}
        for principal, role in st.grants.items():
            if role is None:
                grants.pop(principal, None)
            else:
                grants[principal] = role
        info = ProjectInfo(id=project_id, name=st.meta.get("name", info.name),
                           description=st.meta.get("description", info.description),
                           created=info.created,
                           last_updated=max(info.last_updated, st.touched),
                           record_count=len(after))
        ops.append({"op": "write", "path": self.layout.relative(
            self.layout.project_file(project_id)),
            "text": dumps_readable(codec.project_doc(info, grants), finite=True)})
        return ops

    def _validate_records(self, project_id: str, st: ProjectStage) -> None:
        """Refuse to overwrite what another writer changed since this transaction read it."""
        for label in st.records:
            current = self.disk.record(project_id, label)
            revision = current.revision if current else None
            if label in st.creates and revision is not None:
                raise StorageConflict(f"record {project_id}/{label} was created concurrently")
            seen = self.seen.get((project_id, label), revision)
            if seen != revision:
                raise StorageConflict(f"record {project_id}/{label} was changed concurrently")
