"""The filesystem storage backend: a directory of JSON files.

``sumatra.backend = filesystem`` and ``sumatra.filesystem.root = DIR``. Layout::

    DIR/users.json
    DIR/projects/<id>/project.json       name, description, dates, count, grants
    DIR/projects/<id>/index.json         label -> index fields, one line per record
    DIR/projects/<id>/index.log          commits since index.json, one line each
    DIR/projects/<id>/records/<label>.json   the record document, readable
    DIR/.locks/  DIR/.journal/           commit machinery

Writes are staged in the current ``transaction`` (see :mod:`.stage`) and land at
commit, atomically, under per-project file locks, so several server processes
may share one directory.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Callable
from typing import Any

import transaction

from pyramid_sumatra.records import utcnow
from pyramid_sumatra.storage.hookspecs import hookimpl
from pyramid_sumatra.storage.plugins import PluginError
from pyramid_sumatra.storage.query import select_entries
from pyramid_sumatra.storage.types import (
    HistoryEntry,
    ProjectInfo,
    RecordPage,
    RecordQuery,
    StorageConflict,
    StorageUnavailable,
    StoredRecord,
    TokenInfo,
    TrashItem,
    UserInfo,
)

from . import codec, journal
from .check import check_store, clean_stray_files
from .codec import CorruptFile
from .disk import Disk
from .files import storage_error
from .history import HistoryFiles
from .paths import Layout, check_name, name_problem
from .stage import FilesystemDataManager, ProjectStage
from .tokens import TokenStore

log = logging.getLogger(__name__)


def create_backend(settings: dict[str, Any]) -> FilesystemBackend:
    """Entry point ``filesystem`` in group ``pyramid_sumatra.backends``."""
    return FilesystemBackend(settings)


def _copy(record: StoredRecord | None) -> StoredRecord | None:
    """A staged record as a read returns it: the caller's own copy, tags sorted."""
    return None if record is None else dataclasses.replace(record, tags=sorted(record.tags))


def translate_errors(method):
    """Unreadable files and OS errors (disk full, permissions) become StorageUnavailable."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except CorruptFile as exc:
            raise StorageUnavailable(f"{exc}; run 'sumatra-server CONFIG check'") from exc
        except OSError as exc:
            raise storage_error(exc) from exc

    return wrapper


class FilesystemBackend:
    name = "filesystem"

    def __init__(self, settings: dict[str, Any]):
        root = settings.get("sumatra.filesystem.root")
        if not root:
            raise PluginError("the filesystem backend needs sumatra.filesystem.root = DIRECTORY "
                              "(or SUMATRA_FILESYSTEM_ROOT)")
        self.layout = Layout(root)
        self.disk = Disk(self.layout)
        self.tokens = TokenStore(self.layout.root)
        self.history = HistoryFiles(self.layout.root)
        # Finish commits a killed process left half-applied before anyone reads them
        # (start-up without initdb too); an unreadable store is reported later, by use.
        try:
            journal.recover_all(self.layout)
        except (OSError, ValueError, StorageConflict) as exc:
            log.warning("could not finish interrupted commits in %s: %s", root, exc)

    # -- the transaction's staged state -------------------------------------------

    def _dm(self) -> FilesystemDataManager:
        """This transaction's data manager (made on first use, joined on first write)."""
        txn = transaction.get()
        try:
            return txn.data(self)
        except KeyError:
            dm = FilesystemDataManager(self.layout, self.disk, transaction.manager)
            txn.set_data(self, dm)
            return dm

    def _writer(self) -> FilesystemDataManager:
        dm = self._dm()
        dm.join(transaction.get())
        return dm

    def _stage(self, project_id: str) -> ProjectStage | None:
        return self._dm().projects.get(project_id)

    def _project(self, project_id: str, count: bool = True
                 ) -> tuple[ProjectInfo | None, dict[str, str]]:
        """The project as this transaction sees it, with its grants (and staged record count)."""
        if name_problem(project_id):
            return None, {}
        dm = self._dm()
        st = dm.projects.get(project_id)
        if st is not None and st.deleted:
            return None, {}
        base = None if st is not None and st.drop else self._read_once(
            f"project:{project_id}", lambda: self.disk.project(project_id))
        if base is None and (st is None or st.create is None):
            return None, {}
        info = codec.to_project(base) if base is not None else dataclasses.replace(st.create)
        grants = dict(base.get("grants", {})) if base is not None else {}
        if st is not None:
            info.name = st.meta.get("name", info.name)
            info.description = st.meta.get("description", info.description)
            info.last_updated = max(info.last_updated, st.touched)
            for principal, role in st.grants.items():
                if role is None:
                    grants.pop(principal, None)
                else:
                    grants[principal] = role
            if count and (st.records or st.drop):
                info.record_count = len(self._entries(project_id))
        return info, grants

    def _read_once(self, key: str, read: Callable[[], Any]) -> Any:
        """A document as this transaction first read it (callers must not change it)."""
        docs = self._dm().read_docs
        if key not in docs:
            docs[key] = read()
        return docs[key]

    def _entries(self, project_id: str) -> dict[str, codec.IndexEntry]:
        """``{label: index entry}`` as this transaction sees it."""
        st = self._stage(project_id)
        if st is None:
            return {} if name_problem(project_id) else self.disk.index(project_id)
        if st.deleted:
            return {}
        entries = {} if st.drop else dict(self.disk.index(project_id))
        for label, record in st.records.items():
            if record is None:
                entries.pop(label, None)
            else:
                entries[label] = codec.compact_entry(codec.index_entry(record))
        return entries

    def _current(self, project_id: str, label: str) -> StoredRecord | None:
        """The record as this transaction sees it; a disk read is remembered for commit."""
        dm = self._dm()
        st = dm.projects.get(project_id)
        if st is not None:
            if st.deleted:
                return None
            if label in st.records:
                return _copy(st.records[label])
            if st.drop:
                return None
        record = self.disk.record(project_id, label)
        dm.seen.setdefault((project_id, label), record.revision if record else None)
        return record

    def _require_project(self, project_id: str) -> None:
        # Like the SQL backend's foreign keys: writing into a missing project is a conflict.
        if self._project(project_id, count=False)[0] is None:
            raise StorageConflict(f"no project {project_id!r}")

    # -- lifecycle ------------------------------------------------------------

    @hookimpl
    @translate_errors
    def sumatra_initialize_storage(self) -> bool:
        for directory in (self.layout.root, self.layout.projects, self.layout.locks,
                          self.layout.journal):
            directory.mkdir(parents=True, exist_ok=True)
        # Finish commits a dead process left half-applied, drop what dead writers left.
        journal.recover_all(self.layout)
        clean_stray_files(self.layout)
        return True

    @hookimpl
    def sumatra_storage_status(self) -> dict[str, Any]:
        root = self.layout.root
        ok = root.is_dir() and os.access(root, os.R_OK | os.W_OK | os.X_OK)
        status: dict[str, Any] = {"ok": ok, "backend": self.name, "root": str(root)}
        if not ok:
            status["detail"] = f"{root} is not a writable directory"
        return status

    @hookimpl
    def sumatra_dispose_storage(self) -> bool:
        self.disk = Disk(self.layout)  # forget cached indexes
        try:  # a clean stop leaves everything on disk, no journal to replay
            journal.checkpoint(self.layout, at_least=1)
        except OSError:
            log.warning("checkpoint of %s failed", self.layout.journal, exc_info=True)
        return True

    @hookimpl
    @translate_errors
    def sumatra_check_storage(self, repair: bool) -> dict[str, Any]:
        return check_store(self.layout, repair)

    # -- records --------------------------------------------------------------

    @hookimpl
    @translate_errors
    def sumatra_get_record(self, project_id: str, label: str) -> StoredRecord | None:
        if name_problem(project_id) or name_problem(label):
            return None
        return self._current(project_id, label)

    @hookimpl
    @translate_errors
    def sumatra_put_record(self, record: StoredRecord, create: bool) -> bool:
        check_name(record.project_id)
        check_name(record.label)
        dm = self._writer()
        self._require_project(record.project_id)
        existing = self._current(record.project_id, record.label)
        if create and existing is not None:
            raise StorageConflict(f"record {record.project_id}/{record.label} exists")
        st = dm.stage(record.project_id)
        if create and record.label not in st.records:
            st.creates.add(record.label)
        st.records[record.label] = dataclasses.replace(record,
                                                       tags=list(dict.fromkeys(record.tags)))
        st.touched = utcnow()
        return True

    @hookimpl
    @translate_errors
    def sumatra_delete_record(self, project_id: str, label: str) -> bool:
        if name_problem(project_id) or name_problem(label):
            return False
        if self._current(project_id, label) is None:
            return False
        self._stage_deletes(project_id, [label])
        return True

    def _stage_deletes(self, project_id: str, labels: list[str]) -> None:
        st = self._writer().stage(project_id)
        for label in labels:
            st.records[label] = None
            st.creates.discard(label)
        st.touched = utcnow()

    @hookimpl
    @translate_errors
    def sumatra_query_records(self, project_id: str, query: RecordQuery) -> RecordPage:
        st = self._stage(project_id)
        if st is None and not name_problem(project_id):  # committed state: sorted keys cached
            state = self.disk.index_state(project_id)
            page, next_cursor, total = select_entries(
                state.entries, query, by_time=lambda: state.by_time)
        else:
            page, next_cursor, total = select_entries(self._entries(project_id), query)
        if query.labels_only and not query.with_body:  # the project document needs no more
            return RecordPage(records=[], labels=[label for label, _ in page],
                              next_cursor=next_cursor, total=total)
        records = []
        for label, entry in page:
            if not query.with_body:
                # the fields at once (an entry read field by field splits its packed ones)
                records.append(codec.to_record(project_id, label, codec.entry_dict(entry), None))
                continue
            staged = _copy(st.records.get(label)) if st is not None else None
            stored = staged or self.disk.record(project_id, label)
            if stored is not None:  # None: deleted by a commit since the index was read
                records.append(stored)
        return RecordPage(records=records, next_cursor=next_cursor, total=total)

    @hookimpl
    @translate_errors
    def sumatra_most_recent_record(self, project_id: str) -> StoredRecord | None:
        entries = self._entries(project_id)
        if not entries:
            return None
        label = max(entries.items(), key=lambda item: (item[1]["timestamp"], item[0]))[0]
        return self._current(project_id, label)

    @hookimpl
    @translate_errors
    def sumatra_delete_records_by_tag(self, project_id: str, tag: str) -> int:
        entries = self._entries(project_id)
        labels = [label for label, entry in entries.items() if tag in entry["tags"]]
        if labels:
            dm = self._dm()
            for label in labels:
                dm.seen.setdefault((project_id, label), entries[label]["revision"])
            self._stage_deletes(project_id, labels)
        return len(labels)

    # -- projects -------------------------------------------------------------

    @hookimpl
    @translate_errors
    def sumatra_get_project(self, project_id: str) -> ProjectInfo | None:
        return self._project(project_id)[0]

    @hookimpl
    @translate_errors
    def sumatra_put_project(self, project: ProjectInfo) -> bool:
        check_name(project.id)
        dm = self._writer()
        now = utcnow()
        exists = self._project(project.id)[0] is not None
        st = dm.stage(project.id)
        st.touched = now
        if exists:
            st.meta.update(name=project.name, description=project.description)
            return False
        st.deleted = False
        st.create = ProjectInfo(id=project.id, name=project.name,
                                description=project.description, created=now,
                                last_updated=now)
        return True

    @hookimpl
    @translate_errors
    def sumatra_delete_project(self, project_id: str) -> bool:
        if self._project(project_id)[0] is None:
            return False
        self._writer().projects[project_id] = ProjectStage(drop=True, deleted=True)
        return True

    @hookimpl
    @translate_errors
    def sumatra_list_projects(self, principals: list[str] | None) -> list[ProjectInfo]:
        wanted = None if principals is None else set(principals)
        found = []
        for project_id in sorted(set(self.disk.project_ids()) | set(self._dm().projects)):
            info, grants = self._project(project_id)
            if info is not None and (wanted is None or not wanted.isdisjoint(grants)):
                found.append(info)
        found.sort(key=lambda p: p.last_updated, reverse=True)  # stable: ties stay by id
        return found

    # -- grants ---------------------------------------------------------------

    @hookimpl
    @translate_errors
    def sumatra_get_grants(self, project_id: str) -> dict[str, str]:
        return self._project(project_id)[1]

    @hookimpl
    @translate_errors
    def sumatra_set_grant(self, project_id: str, principal: str, role: str) -> bool:
        check_name(project_id)
        dm = self._writer()
        self._require_project(project_id)
        dm.stage(project_id).grants[principal] = role
        return True

    @hookimpl
    @translate_errors
    def sumatra_revoke_grant(self, project_id: str, principal: str) -> bool:
        if principal not in self._project(project_id)[1]:
            return False
        self._writer().stage(project_id).grants[principal] = None
        return True

    # -- users ----------------------------------------------------------------

    def _users(self) -> dict[str, UserInfo]:
        users = codec.to_users(self._read_once("users", self.disk.users_doc))
        for name, user in self._dm().users.items():
            if user is None:
                users.pop(name, None)
            else:
                users[name] = dataclasses.replace(user)
        return users

    @hookimpl
    @translate_errors
    def sumatra_get_user(self, username: str) -> UserInfo | None:
        return self._users().get(username)

    @hookimpl
    @translate_errors
    def sumatra_put_user(self, user: UserInfo) -> bool:
        existing = self._users().get(user.username)
        created = existing.created if existing else (user.created or utcnow())
        self._writer().users[user.username] = dataclasses.replace(user, created=created)
        return existing is None

    @hookimpl
    @translate_errors
    def sumatra_delete_user(self, username: str) -> bool:
        for project_id in sorted(set(self.disk.project_ids()) | set(self._dm().projects)):
            if username in self._project(project_id)[1]:
                self._writer().stage(project_id).grants[username] = None
        if username not in self._users():
            return False
        self._writer().users[username] = None
        return True

    @hookimpl
    @translate_errors
    def sumatra_list_users(self) -> list[UserInfo]:
        return [user for _, user in sorted(self._users().items())]

    # -- sessions and API tokens (tokens.py) ------------------------------------

    @hookimpl
    @translate_errors
    def sumatra_bump_session_generation(self, username: str) -> int | None:
        user = self._users().get(username)
        if user is None:
            return None
        user.session_generation += 1
        self._writer().users[username] = user
        return user.session_generation

    @hookimpl
    @translate_errors
    def sumatra_put_token(self, token: TokenInfo) -> bool:
        return self.tokens.put(self._writer().token_ops, token)

    @hookimpl
    @translate_errors
    def sumatra_get_token(self, token_id: str) -> TokenInfo | None:
        return self.tokens.get(self._dm().token_ops, token_id)

    @hookimpl
    @translate_errors
    def sumatra_list_tokens(self, username: str | None) -> list[TokenInfo]:
        return self.tokens.list(self._dm().token_ops, username)

    @hookimpl
    @translate_errors
    def sumatra_delete_token(self, username: str, name: str) -> bool:
        return self.tokens.delete(self._writer().token_ops, username, name)

    @hookimpl
    @translate_errors
    def sumatra_touch_token(self, token_id: str, last_used: str) -> bool:
        return self.tokens.touch(self._writer().token_ops, token_id, last_used)

    # -- history and the trash (history.py) ------------------------------------------

    @hookimpl
    @translate_errors
    def sumatra_add_history(self, entry: HistoryEntry, keep: int) -> bool:
        self.history.history_file(entry.project_id, entry.label)  # refuses unsafe names
        self._writer().history_ops.append(("add", dataclasses.replace(entry), keep))
        return True

    @hookimpl
    @translate_errors
    def sumatra_list_history(self, project_id: str, label: str, limit: int,
                             before: str | None) -> list[HistoryEntry]:
        if name_problem(project_id) or (label and name_problem(label)):
            return []
        entries = self.history.history_view(self._dm().history_ops, project_id, label)
        return [e for e in reversed(entries) if before is None or e.key < before][:limit]

    @hookimpl
    @translate_errors
    def sumatra_delete_history(self, project_id: str, label: str | None) -> int:
        if name_problem(project_id) or (label and name_problem(label)):
            return 0
        ops = self._dm().history_ops
        labels = [label] if label is not None else self.history.history_labels(project_id)
        count = sum(len(self.history.history_view(ops, project_id, x)) for x in labels)
        self._writer().history_ops.append(("forget", project_id, label))
        return count

    @hookimpl
    @translate_errors
    def sumatra_put_trash(self, item: TrashItem) -> bool:
        self.history.trash_file(item.project_id, item.label, item.deleted_at)
        self._writer().history_ops.append(("trash", dataclasses.replace(item)))
        return True

    @hookimpl
    @translate_errors
    def sumatra_list_trash(self, project_id: str | None, older_than: str | None,
                           limit: int | None) -> list[TrashItem]:
        if project_id is not None and name_problem(project_id):
            return []
        items = [dataclasses.replace(i, body=None) for i in self.history.trash_view(
            self._dm().history_ops, project_id).values()
            if older_than is None or i.deleted_at < older_than]
        items.sort(key=lambda i: (i.project_id, i.label))
        items.sort(key=lambda i: i.deleted_at, reverse=True)
        return items if limit is None else items[:limit]

    @hookimpl
    @translate_errors
    def sumatra_get_trash(self, project_id: str, label: str, deleted_at: str) -> TrashItem | None:
        if name_problem(project_id) or (label and name_problem(label)):
            return None
        item = self.history.trash_view(self._dm().history_ops, project_id).get(
            (project_id, label, deleted_at))
        return None if item is None else dataclasses.replace(item)

    @hookimpl
    @translate_errors
    def sumatra_delete_trash(self, project_id: str, label: str, deleted_at: str) -> bool:
        if self.sumatra_get_trash(project_id, label, deleted_at) is None:
            return False
        self._writer().history_ops.append(("untrash", project_id, label, deleted_at))
        return True
