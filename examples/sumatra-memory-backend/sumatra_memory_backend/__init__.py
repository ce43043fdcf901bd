"""A storage backend for Sumatra Server keeping everything in memory.

Registered as entry point ``memory`` in group ``pyramid_sumatra.backends``. Each
transaction works on a private copy of the data (read your own writes, see nobody
else's) and, at commit, installs it if no other transaction committed in between,
else fails with ``StorageConflict`` so that the caller replays it (optimistic,
serialisable). A copy per transaction is O(data): fine for tests and demos, and the
reason a real backend uses a database or files.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any

import transaction

from pyramid_sumatra.records import utcnow
from pyramid_sumatra.storage.hookspecs import hookimpl
from pyramid_sumatra.storage.query import select_entries
from pyramid_sumatra.storage.types import (
    HistoryEntry,
    ProjectInfo,
    RecordPage,
    RecordQuery,
    StorageConflict,
    StoredRecord,
    TokenInfo,
    TrashItem,
    UserInfo,
)


def create_backend(settings: dict[str, Any]) -> MemoryBackend:
    """The entry point: called once with the app's settings."""
    return MemoryBackend()


@dataclass
class Data:
    """Everything the backend stores."""

    users: dict[str, UserInfo] = field(default_factory=dict)
    projects: dict[str, ProjectInfo] = field(default_factory=dict)
    grants: dict[str, dict[str, str]] = field(default_factory=dict)  # project → principal → role
    records: dict[str, dict[str, StoredRecord]] = field(default_factory=dict)  # project → label
    tokens: dict[str, TokenInfo] = field(default_factory=dict)  # token id → token
    #: (project, label) → entries, oldest first; label "" is the project's own history.
    history: dict[tuple[str, str], list[HistoryEntry]] = field(default_factory=dict)
    #: (project, label, deleted_at) → the trashed item, with its body.
    trash: dict[tuple[str, str, str], TrashItem] = field(default_factory=dict)


class _Snapshot:
    """A transaction's private copy of the data; a ``transaction`` data manager."""

    def __init__(self, backend: MemoryBackend, txn):
        self.backend = backend
        self.transaction_manager = transaction.manager
        with backend.lock:
            self.version = backend.version
            self.data = copy.deepcopy(backend.data)
        self.dirty = False
        self.holding_lock = False
        txn.join(self)

    # The two-phase commit protocol of ``transaction``.
    def tpc_begin(self, txn) -> None:
        pass

    def commit(self, txn) -> None:
        pass

    def tpc_vote(self, txn) -> None:
        if not self.dirty:
            return
        self.backend.lock.acquire()  # held until tpc_finish/tpc_abort
        self.holding_lock = True
        if self.backend.version != self.version:
            raise StorageConflict("another transaction committed first")

    def tpc_finish(self, txn) -> None:
        if self.dirty:
            self.backend.data = self.data
            self.backend.version += 1
        self._end()

    def tpc_abort(self, txn) -> None:
        self._end()

    def abort(self, txn) -> None:
        self._end()

    def sortKey(self) -> str:
        return f"sumatra-memory-{id(self.backend)}"

    def _end(self) -> None:
        if self.holding_lock:
            self.holding_lock = False
            self.backend.lock.release()
        self.backend.local.snapshot = None


def _copy(record: StoredRecord, with_body: bool = True) -> StoredRecord:
    return dataclasses.replace(record, tags=list(record.tags),
                               body=record.body if with_body else None)


class MemoryBackend:
    name = "memory"

    def __init__(self) -> None:
        self.data = Data()
        self.version = 0
        self.lock = threading.Lock()
        self.local = threading.local()

    def _data(self, write: bool = False) -> Data:
        """The current transaction's copy (joined on first use)."""
        txn = transaction.get()
        snapshot = getattr(self.local, "snapshot", None)
        if snapshot is None or snapshot.txn is not txn:
            snapshot = _Snapshot(self, txn)
            snapshot.txn = txn
            self.local.snapshot = snapshot
        snapshot.dirty = snapshot.dirty or write
        return snapshot.data

    def _touch(self, data: Data, project_id: str, count: int = 0) -> None:
        project = data.projects.get(project_id)
        if project is not None:
            project.last_updated = utcnow()
            project.record_count += count

    # -- lifecycle ------------------------------------------------------------

    @hookimpl
    def sumatra_initialize_storage(self) -> bool:
        return True  # nothing to create

    @hookimpl
    def sumatra_storage_status(self) -> dict[str, Any]:
        return {"ok": True, "backend": self.name, "projects": len(self.data.projects)}

    @hookimpl
    def sumatra_dispose_storage(self) -> bool:
        return True

    @hookimpl
    def sumatra_check_storage(self, repair: bool) -> dict[str, Any]:
        data = self._data(write=repair)
        problems = []
        for project in data.projects.values():
            actual = len(data.records.get(project.id, {}))
            if project.record_count != actual:
                problems.append(f"project {project.id!r}: record_count is "
                                f"{project.record_count}, there are {actual} records")
                if repair:
                    project.record_count = actual
        return {"backend": self.name, "problems": problems,
                "unrepaired": [] if repair else list(problems)}

    # -- records --------------------------------------------------------------

    @hookimpl
    def sumatra_get_record(self, project_id: str, label: str) -> StoredRecord | None:
        record = self._data().records.get(project_id, {}).get(label)
        return None if record is None else _copy(record)

    @hookimpl
    def sumatra_put_record(self, record: StoredRecord, create: bool) -> bool:
        data = self._data(write=True)
        if record.project_id not in data.projects:
            raise StorageConflict(f"no project {record.project_id!r}")
        records = data.records.setdefault(record.project_id, {})
        existed = record.label in records
        if create and existed:
            raise StorageConflict(f"record {record.label!r} exists")
        records[record.label] = dataclasses.replace(
            record, tags=sorted(dict.fromkeys(record.tags)))
        self._touch(data, record.project_id, 0 if existed else 1)
        return True

    @hookimpl
    def sumatra_delete_record(self, project_id: str, label: str) -> bool:
        data = self._data(write=True)
        if data.records.get(project_id, {}).pop(label, None) is None:
            return False
        self._touch(data, project_id, -1)
        return True

    @hookimpl
    def sumatra_query_records(self, project_id: str, query: RecordQuery) -> RecordPage:
        records = self._data().records.get(project_id, {})
        # The kit's query engine filters, orders and pages rows of index fields.
        page, next_cursor, total = select_entries(
            {label: vars(record) for label, record in records.items()}, query)
        return RecordPage(records=[_copy(records[label], query.with_body) for label, _ in page],
                          next_cursor=next_cursor, total=total)

    @hookimpl
    def sumatra_most_recent_record(self, project_id: str) -> StoredRecord | None:
        records = self._data().records.get(project_id, {}).values()
        newest = max(records, key=lambda r: (r.timestamp, r.label), default=None)
        return None if newest is None else _copy(newest)

    @hookimpl
    def sumatra_delete_records_by_tag(self, project_id: str, tag: str) -> int:
        data = self._data(write=True)
        records = data.records.get(project_id, {})
        doomed = [label for label, r in records.items() if tag in r.tags]
        for label in doomed:
            del records[label]
        if doomed:
            self._touch(data, project_id, -len(doomed))
        return len(doomed)

    # -- projects -------------------------------------------------------------

    @hookimpl
    def sumatra_get_project(self, project_id: str) -> ProjectInfo | None:
        project = self._data().projects.get(project_id)
        return None if project is None else dataclasses.replace(project)

    @hookimpl
    def sumatra_put_project(self, project: ProjectInfo) -> bool:
        data = self._data(write=True)
        now = utcnow()
        stored = data.projects.get(project.id)
        if stored is not None:
            stored.name, stored.description, stored.last_updated = (
                project.name, project.description, now)
            return False
        data.projects[project.id] = ProjectInfo(
            id=project.id, name=project.name, description=project.description,
            created=now, last_updated=now, record_count=0)
        return True

    @hookimpl
    def sumatra_delete_project(self, project_id: str) -> bool:
        data = self._data(write=True)
        data.records.pop(project_id, None)
        data.grants.pop(project_id, None)
        return data.projects.pop(project_id, None) is not None

    @hookimpl
    def sumatra_list_projects(self, principals: list[str] | None) -> list[ProjectInfo]:
        data = self._data()
        wanted = None if principals is None else set(principals)
        found = [dataclasses.replace(p) for p in data.projects.values()
                 if wanted is None or wanted & set(data.grants.get(p.id, {}))]
        found.sort(key=lambda p: p.id)
        found.sort(key=lambda p: p.last_updated, reverse=True)  # stable: ties stay by id
        return found

    # -- grants ---------------------------------------------------------------

    @hookimpl
    def sumatra_get_grants(self, project_id: str) -> dict[str, str]:
        return dict(self._data().grants.get(project_id, {}))

    @hookimpl
    def sumatra_set_grant(self, project_id: str, principal: str, role: str) -> bool:
        data = self._data(write=True)
        if project_id not in data.projects:
            raise StorageConflict(f"no project {project_id!r}")
        data.grants.setdefault(project_id, {})[principal] = role
        return True

    @hookimpl
    def sumatra_revoke_grant(self, project_id: str, principal: str) -> bool:
        return self._data(write=True).grants.get(project_id, {}).pop(principal, None) is not None

    # -- users ----------------------------------------------------------------

    @hookimpl
    def sumatra_get_user(self, username: str) -> UserInfo | None:
        user = self._data().users.get(username)
        return None if user is None else dataclasses.replace(user)

    @hookimpl
    def sumatra_put_user(self, user: UserInfo) -> bool:
        data = self._data(write=True)
        stored = data.users.get(user.username)
        created = stored.created if stored else (user.created or utcnow())
        data.users[user.username] = dataclasses.replace(user, created=created)
        return stored is None

    @hookimpl
    def sumatra_delete_user(self, username: str) -> bool:
        data = self._data(write=True)
        for grants in data.grants.values():
            grants.pop(username, None)
        return data.users.pop(username, None) is not None

    @hookimpl
    def sumatra_list_users(self) -> list[UserInfo]:
        return [dataclasses.replace(u) for _, u in sorted(self._data().users.items())]

    # -- sessions and API tokens (optional hooks; without them tokens are unavailable) --

    @hookimpl
    def sumatra_bump_session_generation(self, username: str) -> int | None:
        user = self._data(write=True).users.get(username)
        if user is None:
            return None
        user.session_generation += 1
        return user.session_generation

    @hookimpl
    def sumatra_put_token(self, token: TokenInfo) -> bool:
        data = self._data(write=True)
        if any(t.username == token.username and t.name == token.name
               for t in data.tokens.values()):
            return False
        if token.id in data.tokens:
            raise StorageConflict(f"token id {token.id!r} exists")
        data.tokens[token.id] = copy.deepcopy(token)
        return True

    @hookimpl
    def sumatra_get_token(self, token_id: str) -> TokenInfo | None:
        token = self._data().tokens.get(token_id)  # a dict: one key lookup
        return None if token is None else copy.deepcopy(token)

    @hookimpl
    def sumatra_list_tokens(self, username: str | None) -> list[TokenInfo]:
        return sorted((copy.deepcopy(t) for t in self._data().tokens.values()
                       if username is None or t.username == username),
                      key=lambda t: (t.username, t.name))

    @hookimpl
    def sumatra_delete_token(self, username: str, name: str) -> bool:
        data = self._data(write=True)
        for token_id, t in list(data.tokens.items()):
            if t.username == username and t.name == name:
                del data.tokens[token_id]
                return True
        return False

    @hookimpl
    def sumatra_touch_token(self, token_id: str, last_used: str) -> bool:
        token = self._data(write=True).tokens.get(token_id)
        if token is None:
            return False
        token.last_used = last_used
        return True

    # -- history and the trash (optional hooks) -----------------------------------

    @hookimpl
    def sumatra_add_history(self, entry: HistoryEntry, keep: int) -> bool:
        entries = self._data(write=True).history.setdefault(
            (entry.project_id, entry.label), [])
        entries.append(dataclasses.replace(entry, changes=copy.deepcopy(entry.changes)))
        entries.sort(key=lambda e: e.key)
        if keep > 0:
            del entries[:-keep]
        return True

    @hookimpl
    def sumatra_list_history(self, project_id: str, label: str, limit: int,
                             before: str | None) -> list[HistoryEntry]:
        entries = self._data().history.get((project_id, label), [])
        found = [e for e in reversed(entries) if before is None or e.key < before]
        return [dataclasses.replace(e, changes=copy.deepcopy(e.changes)) for e in found[:limit]]

    @hookimpl
    def sumatra_delete_history(self, project_id: str, label: str | None) -> int:
        data = self._data(write=True)
        keys = [k for k in data.history if k[0] == project_id and label in (None, k[1])]
        return sum(len(data.history.pop(k)) for k in keys)

    @hookimpl
    def sumatra_put_trash(self, item: TrashItem) -> bool:
        self._data(write=True).trash[(item.project_id, item.label, item.deleted_at)] = \
            dataclasses.replace(item)
        return True

    @hookimpl
    def sumatra_list_trash(self, project_id: str | None, older_than: str | None,
                           limit: int | None) -> list[TrashItem]:
        items = [dataclasses.replace(i, body=None) for i in self._data().trash.values()
                 if (project_id is None or i.project_id == project_id)
                 and (older_than is None or i.deleted_at < older_than)]
        items.sort(key=lambda i: (i.project_id, i.label))
        items.sort(key=lambda i: i.deleted_at, reverse=True)
        return items if limit is None else items[:limit]

    @hookimpl
    def sumatra_get_trash(self, project_id: str, label: str, deleted_at: str) -> TrashItem | None:
        item = self._data().trash.get((project_id, label, deleted_at))
        return None if item is None else dataclasses.replace(item)

    @hookimpl
    def sumatra_delete_trash(self, project_id: str, label: str, deleted_at: str) -> bool:
        return self._data(write=True).trash.pop((project_id, label, deleted_at), None) \
            is not None
