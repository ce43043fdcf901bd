"""An audit log for Sumatra Server: a JSON line per committed storage write.

Registered as entry point ``audit-log`` in group ``pyramid_sumatra.plugins``;
enable it with ``sumatra.plugins = audit-log`` and choose the file with
``sumatra.audit_log.path``. It wraps the backend's hooks (``wrapper=True``), so it
works with any backend, and writes only after the transaction commits.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import transaction

from pyramid_sumatra.records import utcnow
from pyramid_sumatra.storage.hookspecs import hookimpl
from pyramid_sumatra.storage.types import ProjectInfo, StoredRecord, UserInfo


def create_plugin(settings: dict[str, Any]) -> AuditLog:
    """The entry point: called once with the app's settings."""
    return AuditLog(Path(settings.get("sumatra.audit_log.path") or "sumatra-audit.jsonl"))


def _acting_user() -> str | None:
    """Who made the current request (None in the command line)."""
    from pyramid.threadlocal import get_current_request

    request = get_current_request()
    return getattr(request, "authenticated_userid", None) if request is not None else None


class AuditLog:
    def __init__(self, path: Path):
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()

    def note(self, action: str, **details: Any) -> None:
        """Queue a line; it is written when (and if) the current transaction commits."""
        entry = {"time": utcnow(), "by": _acting_user(), "action": action, **details}
        if entry["by"] is None:
            del entry["by"]
        line = json.dumps(entry, ensure_ascii=False, sort_keys=False) + "\n"
        transaction.get().addAfterCommitHook(self._write, args=(line,))

    def _write(self, committed: bool, line: str) -> None:
        if committed:
            with self.lock, self.path.open("a", encoding="utf-8") as f:
                f.write(line)

    # Each wrapper lets the backend do the work (``yield``), then notes what happened.
    # An exception from the backend propagates out of ``yield``: nothing is noted.

    @hookimpl(wrapper=True)
    def sumatra_put_record(self, record: StoredRecord, create: bool):
        result = yield
        self.note("put_record", project=record.project_id, label=record.label,
                  created=create, revision=record.revision)
        return result

    @hookimpl(wrapper=True)
    def sumatra_delete_record(self, project_id: str, label: str):
        deleted = yield
        if deleted:
            self.note("delete_record", project=project_id, label=label)
        return deleted

    @hookimpl(wrapper=True)
    def sumatra_delete_records_by_tag(self, project_id: str, tag: str):
        count = yield
        if count:
            self.note("delete_records_by_tag", project=project_id, tag=tag, count=count)
        return count

    @hookimpl(wrapper=True)
    def sumatra_put_project(self, project: ProjectInfo):
        created = yield
        self.note("put_project", project=project.id, created=bool(created))
        return created

    @hookimpl(wrapper=True)
    def sumatra_delete_project(self, project_id: str):
        deleted = yield
        if deleted:
            self.note("delete_project", project=project_id)
        return deleted

    @hookimpl(wrapper=True)
    def sumatra_set_grant(self, project_id: str, principal: str, role: str):
        result = yield
        self.note("set_grant", project=project_id, principal=principal, role=role)
        return result

    @hookimpl(wrapper=True)
    def sumatra_revoke_grant(self, project_id: str, principal: str):
        revoked = yield
        if revoked:
            self.note("revoke_grant", project=project_id, principal=principal)
        return revoked

    @hookimpl(wrapper=True)
    def sumatra_put_user(self, user: UserInfo):
        created = yield
        # Never the password hash: only that the user (or its password) changed.
        self.note("put_user", user=user.username, created=bool(created), admin=user.is_admin)
        return created

    @hookimpl(wrapper=True)
    def sumatra_delete_user(self, username: str):
        deleted = yield
        if deleted:
            self.note("delete_user", user=username)
        return deleted
