"""A typed facade over ``pm.hook``: the only way the app and CLI reach storage."""

from __future__ import annotations

from typing import Any

import pluggy
import transaction

from .hookspecs import HISTORY_HOOKS, TOKEN_HOOKS, TRASH_HOOKS
from .types import (
    ExternalIdentity,
    HistoryEntry,
    ProjectInfo,
    ProjectRecord,
    RecordPage,
    RecordQuery,
    StoredRecord,
    TokenInfo,
    TrashItem,
    UserInfo,
)


class Storage:
    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm
        self.hook = pm.hook

    # lifecycle
    def initialize(self) -> bool:
        return self.hook.sumatra_initialize_storage()

    def status(self) -> dict[str, Any]:
        return self.hook.sumatra_storage_status()

    def dispose(self) -> None:
        self.hook.sumatra_dispose_storage()

    def check(self, repair: bool = False) -> dict[str, Any]:
        """Consistency problems found (and with ``repair`` fixed); see the hookspec."""
        return self.hook.sumatra_check_storage(repair=repair)

    # records
    def get_record(self, project_id: str, label: str) -> StoredRecord | None:
        return self.hook.sumatra_get_record(project_id=project_id, label=label)

    def put_record(self, record: StoredRecord, create: bool) -> None:
        self.hook.sumatra_put_record(record=record, create=create)
        self._after_commit(self.hook.sumatra_record_saved,
                           project_id=record.project_id, label=record.label, created=create)

    def delete_record(self, project_id: str, label: str) -> bool:
        deleted = self.hook.sumatra_delete_record(project_id=project_id, label=label)
        if deleted:
            self._after_commit(self.hook.sumatra_record_deleted,
                               project_id=project_id, label=label)
        return bool(deleted)

    def query_records(self, project_id: str, query: RecordQuery | None = None) -> RecordPage:
        return self.hook.sumatra_query_records(project_id=project_id, query=query or RecordQuery())

    def search_records(self, project_id: str, query: RecordQuery, where: Any) -> RecordPage:
        """Records matching ``query`` and the query tree ``where`` (None: no tree).

        Through the backend's ``sumatra_search_records`` when it has one and takes
        the query; else the reference evaluator over ``sumatra_query_records``.
        """
        if where is None:
            return self.query_records(project_id, query)
        if self.implements("sumatra_search_records"):
            page = self.hook.sumatra_search_records(project_id=project_id, query=query,
                                                    where=where)
            if page is not None:
                return page
        from ..query.search import fallback_search  # the query package imports this one

        return fallback_search(self.query_records, project_id, query, where)

    def most_recent_record(self, project_id: str) -> StoredRecord | None:
        return self.hook.sumatra_most_recent_record(project_id=project_id)

    def delete_records_by_tag(self, project_id: str, tag: str) -> int:
        return self.hook.sumatra_delete_records_by_tag(project_id=project_id, tag=tag)

    # projects
    def get_project(self, project_id: str) -> ProjectInfo | None:
        return self.hook.sumatra_get_project(project_id=project_id)

    def get_project_record(self, project_id: str, label: str,
                           username: str | None = None) -> ProjectRecord | None:
        """The project, its grants and its record ``label`` (None if absent) in one call;
        None without the project. One query where the backend has the optional hook,
        which may read the user ``username`` with them (hookspecs)."""
        if not hasattr(self, "_project_record_available"):  # asked on every record request
            self._project_record_available = self.implements("sumatra_get_project_record")
        if self._project_record_available:
            return self.hook.sumatra_get_project_record(project_id=project_id, label=label,
                                                        username=username)
        info = self.get_project(project_id)
        if info is None:
            return None
        return info, self.get_grants(project_id), self.get_record(project_id, label)

    def put_project(self, project: ProjectInfo) -> bool:
        return bool(self.hook.sumatra_put_project(project=project))

    def delete_project(self, project_id: str) -> bool:
        return bool(self.hook.sumatra_delete_project(project_id=project_id))

    def list_projects(self, principals: list[str] | None) -> list[ProjectInfo]:
        return self.hook.sumatra_list_projects(principals=principals)

    # grants
    def get_grants(self, project_id: str) -> dict[str, str]:
        return self.hook.sumatra_get_grants(project_id=project_id) or {}

    def set_grant(self, project_id: str, principal: str, role: str) -> None:
        self.hook.sumatra_set_grant(project_id=project_id, principal=principal, role=role)

    def revoke_grant(self, project_id: str, principal: str) -> bool:
        return bool(self.hook.sumatra_revoke_grant(project_id=project_id, principal=principal))

    # users
    def get_user(self, username: str) -> UserInfo | None:
        return self.hook.sumatra_get_user(username=username)

    def put_user(self, user: UserInfo) -> bool:
        return bool(self.hook.sumatra_put_user(user=user))

    def delete_user(self, username: str) -> bool:
        # Its tokens first: a user re-created under the name must not inherit them.
        for token in self.list_tokens(username):
            self.delete_token(username, token.name)
        return bool(self.hook.sumatra_delete_user(username=username))

    def list_users(self) -> list[UserInfo]:
        return self.hook.sumatra_list_users()

    # sessions and tokens (optional hooks: hookspecs.OPTIONAL_STORAGE_HOOKS)
    def implements(self, hook: str) -> bool:
        """Whether the backend implements ``hook`` (an optional storage hook, say)."""
        return any(not impl.hookwrapper and not impl.wrapper
                   for impl in getattr(self.hook, hook).get_hookimpls())

    @property
    def tokens_available(self) -> bool:
        """Whether the backend implements every token hook."""
        if not hasattr(self, "_tokens_available"):
            self._tokens_available = all(self.implements(h) for h in TOKEN_HOOKS)
        return self._tokens_available

    def bump_session_generation(self, username: str) -> int | None:
        """End every session of the user; the new generation, or None if no such user."""
        if self.implements("sumatra_bump_session_generation"):
            return self.hook.sumatra_bump_session_generation(username=username)
        user = self.get_user(username)
        if user is None:
            return None
        user.session_generation += 1
        self.put_user(user)
        return user.session_generation

    def put_token(self, token: TokenInfo) -> bool:
        return bool(self.hook.sumatra_put_token(token=token))

    def get_token(self, token_id: str) -> TokenInfo | None:
        if not self.tokens_available:
            return None
        return self.hook.sumatra_get_token(token_id=token_id)

    def list_tokens(self, username: str | None) -> list[TokenInfo]:
        if not self.tokens_available:
            return []
        return self.hook.sumatra_list_tokens(username=username) or []

    def delete_token(self, username: str, name: str) -> bool:
        return bool(self.hook.sumatra_delete_token(username=username, name=name))

    def touch_token(self, token_id: str, last_used: str) -> bool:
        return bool(self.hook.sumatra_touch_token(token_id=token_id, last_used=last_used))

    def authenticate(self, username: str, password: str) -> bool:
        return bool(self.hook.sumatra_authenticate(username=username, password=password))

    def external_identity(self, username: str) -> ExternalIdentity | None:
        """What an identity source knows of ``username`` (None: not an external user)."""
        return self.hook.sumatra_external_identity(username=username)

    @staticmethod
    def _after_commit(hook, **kwargs) -> None:
        def fire(committed: bool) -> None:
            if committed:
                hook(**kwargs)

        transaction.get().addAfterCommitHook(fire)

    # history and trash (optional hooks: hookspecs.HISTORY_HOOKS, TRASH_HOOKS)
    #: Retention (``sumatra.history.keep``, ``sumatra.trash.keep_days``): build_storage sets them.
    history_keep: int = 100
    trash_keep_days: int = 30

    @property
    def history_available(self) -> bool:
        if not hasattr(self, "_history_available"):
            self._history_available = all(self.implements(h) for h in HISTORY_HOOKS)
        return self._history_available

    @property
    def trash_available(self) -> bool:
        if not hasattr(self, "_trash_available"):
            self._trash_available = all(self.implements(h) for h in TRASH_HOOKS)
        return self._trash_available

    def add_history(self, entry: HistoryEntry, prune: bool = True) -> None:
        """Append ``entry``; ``prune=False`` skips trimming to ``history_keep`` this time
        (a record's first entry: the next change trims)."""
        self.hook.sumatra_add_history(entry=entry, keep=self.history_keep if prune else 0)

    def list_history(self, project_id: str, label: str, limit: int,
                     before: str | None = None) -> list[HistoryEntry]:
        if not self.history_available:
            return []
        return self.hook.sumatra_list_history(project_id=project_id, label=label, limit=limit,
                                              before=before) or []

    def delete_history(self, project_id: str, label: str | None) -> int:
        if not self.history_available:
            return 0
        return int(self.hook.sumatra_delete_history(project_id=project_id, label=label) or 0)

    def put_trash(self, item: TrashItem) -> None:
        self.hook.sumatra_put_trash(item=item)

    def list_trash(self, project_id: str | None, older_than: str | None = None,
                   limit: int | None = None) -> list[TrashItem]:
        if not self.trash_available:
            return []
        return self.hook.sumatra_list_trash(project_id=project_id, older_than=older_than,
                                            limit=limit) or []

    def get_trash(self, project_id: str, label: str, deleted_at: str) -> TrashItem | None:
        if not self.trash_available:
            return None
        return self.hook.sumatra_get_trash(project_id=project_id, label=label,
                                           deleted_at=deleted_at)

    def delete_trash(self, project_id: str, label: str, deleted_at: str) -> bool:
        return bool(self.hook.sumatra_delete_trash(project_id=project_id, label=label,
                                                   deleted_at=deleted_at))
