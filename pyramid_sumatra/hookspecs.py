"""The storage backend interface of Sumatra Server, as pluggy hookspecs.

Exactly one *backend* plugin implements the storage hooks (every hook below
marked ``firstresult``); it is chosen with ``sumatra.backend = NAME``, the name
of an entry point in the group ``pyramid_sumatra.backends``. The entry point is
a callable ``create_backend(settings: dict) -> object`` returning the plugin
object whose methods carry ``@hookimpl``. It must implement ``STORAGE_HOOKS``
(start-up fails otherwise) and may implement ``OPTIONAL_STORAGE_HOOKS`` (sessions
and personal API tokens; without the token hooks tokens are unavailable).

Every storage hook is called inside the current ``transaction`` (the request's,
or the CLI command's): a backend joins it (zope.sqlalchemy, or its own data
manager) so that nothing it writes persists unless that transaction commits.
Hooks raise :class:`~pyramid_sumatra.types.StorageConflict` when a concurrent
writer won a race (the request is retried) and
:class:`~pyramid_sumatra.types.StorageUnavailable` when storage cannot be
reached (the client gets 503).

Other plugins may wrap any hook (``@hookimpl(wrapper=True)``: audit, quotas,
read-only guards) and implement the event hooks at the end.
"""

from __future__ import annotations

from typing import Any

import pluggy

from .types import ProjectInfo, RecordPage, RecordQuery, StoredRecord, TokenInfo, UserInfo

PROJECT_NAME = "pyramid_sumatra"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -- lifecycle ---------------------------------------------------------------


@hookspec(firstresult=True)
def sumatra_initialize_storage() -> bool:
    """Create or upgrade the storage schema so the other hooks can work.

    Idempotent: called by ``sumatra-server CONFIG initdb`` and at app start-up
    when ``sumatra.initdb = true``. Runs outside any request. Return True.
    """


@hookspec(firstresult=True)
def sumatra_storage_status() -> dict[str, Any]:
    """Report whether storage is reachable.

    Return ``{"ok": bool, "backend": name, ...}`` with any extra detail; never
    raise. Used by ``/_ready`` and ``sumatra-server check``.
    """


@hookspec(firstresult=True)
def sumatra_dispose_storage() -> bool:
    """Release connections, file handles and locks (app or CLI shutting down). Return True."""


@hookspec(firstresult=True)
def sumatra_check_storage(repair: bool) -> dict[str, Any]:
    """Check that storage is consistent; with ``repair`` also fix what can be fixed.

    Used by ``sumatra-server CONFIG check [--repair]``; runs outside any request
    and may take locks or scan everything. Return ``{"backend": name,
    "problems": [one line per problem found], "unrepaired": [the problems still
    there afterwards]}`` (without ``repair``, ``unrepaired`` equals ``problems``).
    Examples: a record count or index that disagrees with the records, stray
    temp files, grants to users that do not exist. Problems are reported, not
    raised; raise ``StorageUnavailable`` only if storage cannot be reached.
    """


# -- records -----------------------------------------------------------------


@hookspec(firstresult=True)
def sumatra_get_record(project_id: str, label: str) -> StoredRecord | None:
    """Return the record ``label`` of ``project_id`` with its body, or None if absent."""


@hookspec(firstresult=True)
def sumatra_put_record(record: StoredRecord, create: bool) -> bool:
    """Store ``record`` (body, revision and index fields), replacing any stored one.

    ``create`` is True when the caller believes the label is new: if a record
    with that label exists after all (a concurrent writer), raise
    ``StorageConflict`` instead of overwriting it. When ``create`` is False the
    record exists and is replaced. Also moves the project's ``last_updated`` to
    now. Return True.
    """


@hookspec(firstresult=True)
def sumatra_delete_record(project_id: str, label: str) -> bool:
    """Delete one record and its tags. Return True if it existed, False if not."""


@hookspec(firstresult=True)
def sumatra_query_records(project_id: str, query: RecordQuery) -> RecordPage:
    """Select records of a project by ``query`` (see :class:`RecordQuery`).

    Must be one query or one index read, not one read per record. Bodies are
    included only when ``query.with_body`` is True (``body`` is None
    otherwise). ``next_cursor`` is set when ``limit`` cut the result short;
    passing it back as ``query.cursor`` returns the next page, stable under
    concurrent inserts. ``total`` counts every match, ignoring limit and cursor.
    An unknown ``order`` field raises ValueError.
    """


@hookspec(firstresult=True)
def sumatra_most_recent_record(project_id: str) -> StoredRecord | None:
    """Return the record with the latest timestamp (ties: greatest label), with body, or None."""


@hookspec(firstresult=True)
def sumatra_delete_records_by_tag(project_id: str, tag: str) -> int:
    """Delete every record of the project having ``tag``; return how many were deleted."""


# -- projects ----------------------------------------------------------------


@hookspec(firstresult=True)
def sumatra_get_project(project_id: str) -> ProjectInfo | None:
    """Return the project (with ``record_count`` and ``last_updated``), or None if absent."""


@hookspec(firstresult=True)
def sumatra_put_project(project: ProjectInfo) -> bool:
    """Create the project, or update its name and description. Return True if it was created.

    ``created`` and ``last_updated`` are set by the backend on creation;
    ``last_updated`` also moves on update.
    """


@hookspec(firstresult=True)
def sumatra_delete_project(project_id: str) -> bool:
    """Delete a project with all its records and grants. Return True if it existed."""


@hookspec(firstresult=True)
def sumatra_list_projects(principals: list[str] | None) -> list[ProjectInfo]:
    """Return projects on which any of ``principals`` (usernames, or ``anonymous``) holds a grant.

    ``None`` means every project (server administrators). Newest
    ``last_updated`` first, ties broken by id.
    """


# -- grants ------------------------------------------------------------------


@hookspec(firstresult=True)
def sumatra_get_grants(project_id: str) -> dict[str, str]:
    """Return ``{principal: role}`` for the project (empty if none or no such project).

    Principals are usernames or ``anonymous``; roles are ``read``, ``write``, ``admin``.
    """


@hookspec(firstresult=True)
def sumatra_set_grant(project_id: str, principal: str, role: str) -> bool:
    """Grant ``principal`` the ``role`` on the project, replacing any earlier role. Return True."""


@hookspec(firstresult=True)
def sumatra_revoke_grant(project_id: str, principal: str) -> bool:
    """Remove the principal's grant. Return True if there was one."""


# -- users -------------------------------------------------------------------


@hookspec(firstresult=True)
def sumatra_get_user(username: str) -> UserInfo | None:
    """Return the user (with its password hash, never a clear password), or None."""


@hookspec(firstresult=True)
def sumatra_put_user(user: UserInfo) -> bool:
    """Create or replace the user. Return True if it was created."""


@hookspec(firstresult=True)
def sumatra_delete_user(username: str) -> bool:
    """Delete the user and every grant it holds. Return True if it existed."""


@hookspec(firstresult=True)
def sumatra_list_users() -> list[UserInfo]:
    """Return every user, ordered by username."""


# -- sessions and personal API tokens (optional: see OPTIONAL_STORAGE_HOOKS) ---


@hookspec(firstresult=True)
def sumatra_bump_session_generation(username: str) -> int | None:
    """Add one to the user's ``session_generation``, atomically; return the new value.

    Every browser session of the user ends at once (logout, password change). Return
    None if there is no such user. Without this hook the app reads the user and
    puts it back with the generation plus one.
    """


@hookspec(firstresult=True)
def sumatra_put_token(token: TokenInfo) -> bool:
    """Store a new token (its ``secret_hash``, never a secret). Return True.

    Return False, storing nothing, if ``token.username`` already has a token
    named ``token.name``. A token whose ``id`` exists after all (a concurrent
    writer) raises ``StorageConflict``. The user must exist (the app checks).
    """


@hookspec(firstresult=True)
def sumatra_get_token(token_id: str) -> TokenInfo | None:
    """Return the token with this ``id``, or None. Called on every token-authenticated
    request: a key lookup (primary key, dict), never a scan of all tokens."""


@hookspec(firstresult=True)
def sumatra_list_tokens(username: str | None) -> list[TokenInfo]:
    """Return the user's tokens ordered by name; ``None``: every user's, by username
    then name (dump and copy). Empty when there are none."""


@hookspec(firstresult=True)
def sumatra_delete_token(username: str, name: str) -> bool:
    """Revoke (delete) the user's token ``name``. Return True if it existed.

    ``sumatra_delete_user`` need not delete tokens: the app revokes them first.
    """


@hookspec(firstresult=True)
def sumatra_touch_token(token_id: str, last_used: str) -> bool:
    """Set the token's ``last_used`` (UTC text). Return True if the token exists.

    The app calls it at most about once a minute per token, not per request.
    """


# -- not storage: authentication and events ------------------------------------


@hookspec(firstresult=True)
def sumatra_authenticate(username: str, password: str) -> bool | None:
    """Decide a login attempt: True accepts, False rejects, None leaves it to the next plugin.

    The built-in implementation checks the stored password hash; an
    institution's plugin can consult LDAP first. The user must also exist in
    storage for grants to apply.
    """


@hookspec
def sumatra_record_saved(project_id: str, label: str, created: bool) -> None:
    """Called after the transaction that saved a record committed."""


@hookspec
def sumatra_record_deleted(project_id: str, label: str) -> None:
    """Called after the transaction that deleted a record committed."""


#: Hooks a backend must implement; start-up fails if one is missing.
STORAGE_HOOKS = (
    "sumatra_initialize_storage",
    "sumatra_storage_status",
    "sumatra_dispose_storage",
    "sumatra_check_storage",
    "sumatra_get_record",
    "sumatra_put_record",
    "sumatra_delete_record",
    "sumatra_query_records",
    "sumatra_most_recent_record",
    "sumatra_delete_records_by_tag",
    "sumatra_get_project",
    "sumatra_put_project",
    "sumatra_delete_project",
    "sumatra_list_projects",
    "sumatra_get_grants",
    "sumatra_set_grant",
    "sumatra_revoke_grant",
    "sumatra_get_user",
    "sumatra_put_user",
    "sumatra_delete_user",
    "sumatra_list_users",
)

#: Storage hooks a backend may lack: tokens are then unavailable (the page and the
#: CLI say so; a token is just a wrong password) and logout bumps the session
#: generation through get_user/put_user. The built-in backends implement them all.
TOKEN_HOOKS = (
    "sumatra_put_token",
    "sumatra_get_token",
    "sumatra_list_tokens",
    "sumatra_delete_token",
    "sumatra_touch_token",
)
OPTIONAL_STORAGE_HOOKS = ("sumatra_bump_session_generation", *TOKEN_HOOKS)


# -- record queries (optional: without it the app evaluates queries itself) -----------


@hookspec(firstresult=True)
def sumatra_search_records(project_id: str, query: RecordQuery, where: Any) -> RecordPage | None:
    """Select the records that match ``query`` AND the query-language tree ``where``.

    ``where`` is a :mod:`pyramid_sumatra.query.tree` node (docs/query.md); the
    records selected must be exactly those :func:`pyramid_sumatra.query.matches`
    accepts (the contract suite checks it). Otherwise as ``sumatra_query_records``:
    same order, bodies only with ``query.with_body``, ``labels`` for
    ``query.labels_only``, ``next_cursor`` when ``limit`` cut the page short;
    ``total`` may be None when counting would cost a second pass. A backend may
    return None to leave this query to the app, which then reads pages of
    ``sumatra_query_records`` and applies the reference evaluator. A malformed
    cursor or an unknown ``order`` raises ValueError.
    """


#: Optional hooks the built-in filesystem backend lacks (the app falls back).
QUERY_HOOKS = ("sumatra_search_records",)
