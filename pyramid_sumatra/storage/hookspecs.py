"""The storage backend interface of Sumatra Server, as pluggy hookspecs.

Exactly one *backend* plugin implements the storage hooks (every hook below
marked ``@storage_hookspec``, listed in ``STORAGE_HOOKS``); it is chosen with
``sumatra.backend = NAME``, the name of an entry point in the group
``pyramid_sumatra.backends``. The entry point is a callable
``create_backend(settings: dict) -> object`` returning the plugin object whose
methods carry ``@hookimpl``. It must implement ``STORAGE_HOOKS`` (start-up
fails otherwise) and may implement ``OPTIONAL_STORAGE_HOOKS`` (marked
``@optional_storage_hookspec(capability)``: without them that capability, e.g.
personal API tokens, record history or the trash, is shown as unavailable;
without the history and trash hooks deletes destroy).

Every storage hook is called inside the current ``transaction`` (the request's,
or the CLI command's): a backend joins it (zope.sqlalchemy, or its own data
manager) so that nothing it writes persists unless that transaction commits.
A data manager (``transaction.get().join(dm)``, once per transaction) implements
``abort`` (the transaction ended before committing: drop what was staged),
``tpc_begin`` and ``commit`` (make nothing durable yet), ``tpc_vote`` (check
for conflicts and prepare; raise ``StorageConflict`` here, never later),
``tpc_finish`` (make it durable; must not fail), ``tpc_abort`` and ``sortKey``.
A store without two-phase commit (a DB-API connection) commits in ``tpc_vote``
and sorts last (a ``sortKey`` starting with ``~``), as zope.sqlalchemy does and
:class:`pyramid_sumatra.storage.datamanager.ConnectionDataManager` does for any
DB-API connection. On SQLite, a transaction that reads and then writes must take
the write lock when it begins (``BEGIN IMMEDIATE`` when
:data:`pyramid_sumatra.intent.write_intent` is true, i.e. not a GET): upgrading
a read lock later deadlocks two such writers until ``busy_timeout``.
Hooks raise :class:`~pyramid_sumatra.storage.types.StorageConflict` when a concurrent
writer won a race (the request is retried),
:class:`~pyramid_sumatra.storage.types.StorageUnavailable` when storage cannot be
reached (the client gets 503) and its subclass
:class:`~pyramid_sumatra.storage.types.StorageFull` when there is no space (507).
For a database driver that means: a unique or foreign-key violation and "database is
locked" (or a deadlock, a serialization failure) are ``StorageConflict``, "disk is
full" is ``StorageFull``, any other operational error is ``StorageUnavailable``;
anything else is a bug and propagates (500). Translate them in every hook and in the
data manager's commit (``ConnectionDataManager(translate=...)``).

Other plugins may wrap any hook (``@hookimpl(wrapper=True)``: audit, quotas,
read-only guards) and implement the event hooks at the end.
"""

from __future__ import annotations

from typing import Any

import pluggy

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

PROJECT_NAME = "pyramid_sumatra"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


def storage_hookspec(function):
    """A hook the backend must implement (``firstresult``); it is listed in STORAGE_HOOKS."""
    function.sumatra_storage_hook = True
    return hookspec(firstresult=True)(function)


def optional_storage_hookspec(capability: str):
    """A storage hook a backend may lack (``firstresult``), one of ``capability``'s hooks;
    it is listed in OPTIONAL_STORAGE_HOOKS and CAPABILITIES[capability]."""
    def mark(function):
        function.sumatra_storage_hook = "optional"
        function.sumatra_capability = capability
        return hookspec(firstresult=True)(function)
    return mark


# -- lifecycle ---------------------------------------------------------------


@storage_hookspec
def sumatra_initialize_storage() -> bool:
    """Create or upgrade the storage schema so the other hooks can work.

    Idempotent: called by ``sumatra-server CONFIG initdb`` and at app start-up
    when ``sumatra.initdb = true``. Runs outside any request, sometimes inside a
    CLI command's transaction and sometimes in none: open a connection of your own
    and commit it here, do not join the transaction. May create the store's folder.
    Return True.
    """


@storage_hookspec
def sumatra_storage_status() -> dict[str, Any]:
    """Report whether storage is reachable.

    Return ``{"ok": bool, "backend": name, ...}`` with any extra detail, and
    ``"detail"``: why not, when not ok (the CLI prints it); never raise, and never
    create the store here. Used by ``/_ready`` and ``sumatra-server check``.
    """


@storage_hookspec
def sumatra_dispose_storage() -> bool:
    """Release connections, file handles and locks (app or CLI shutting down). Return True."""


@storage_hookspec
def sumatra_check_storage(repair: bool) -> dict[str, Any]:
    """Check that storage is consistent; with ``repair`` also fix what can be fixed.

    Used by ``sumatra-server CONFIG check [--repair]``; runs outside any request
    (like ``sumatra_initialize_storage``: its own connection, committed here) and
    may take locks or scan everything. Return ``{"backend": name,
    "problems": [one line per problem found], "unrepaired": [the problems still
    there afterwards]}`` (without ``repair``, ``unrepaired`` equals ``problems``).
    Examples: a record count or index that disagrees with the records, stray
    temp files, grants to users that do not exist. Problems are reported, not
    raised; raise ``StorageUnavailable`` only if storage cannot be reached.
    """


# -- records -----------------------------------------------------------------


@storage_hookspec
def sumatra_get_record(project_id: str, label: str) -> StoredRecord | None:
    """Return the record ``label`` of ``project_id`` with its body, or None if absent.

    Its ``tags`` are sorted, each once (as every hook returning records does).
    """


@storage_hookspec
def sumatra_put_record(record: StoredRecord, create: bool) -> bool:
    """Store ``record`` (body, revision and index fields), replacing any stored one.

    ``create`` is True when the caller believes the label is new: if a record
    with that label exists after all (a concurrent writer), raise
    ``StorageConflict`` instead of overwriting it. When ``create`` is False the
    record exists and is replaced. Also moves the project's ``last_updated`` to
    now. Return True.

    Tags are stored once each (``["b", "a", "b"]`` reads back as ``["a", "b"]``);
    ``body`` and ``revision`` are kept exactly as given. The project must exist
    (the app creates it first): writing into a missing one raises
    ``StorageConflict`` (a concurrent delete; the request is retried) and stores
    nothing.

    ``record.parameters`` holds the flattened parameters the app derived from the body;
    a backend may keep them and return them (from this hook's records and queries) so
    that queries and plots need not parse bodies, or ignore them (records then read back
    with ``parameters`` None and the app parses).
    """


@storage_hookspec
def sumatra_delete_record(project_id: str, label: str) -> bool:
    """Delete one record and its tags. Return True if it existed, False if not.

    Deleting moves the project's ``last_updated`` to now (as every delete of records does).
    """


@storage_hookspec
def sumatra_query_records(project_id: str, query: RecordQuery) -> RecordPage:
    """Select records of a project by ``query`` (see :class:`RecordQuery`).

    Must be one query or one index read, not one read per record. Bodies are
    included only when ``query.with_body`` is True (``body`` is None
    otherwise). ``next_cursor`` is set when ``limit`` cut the result short;
    passing it back as ``query.cursor`` returns the next page, stable under
    concurrent inserts. ``total`` counts every match, ignoring limit and cursor.
    An unknown ``order`` field raises ValueError.

    ``text`` is a plain substring (``%`` and ``_`` are no wildcards) of the label,
    reason or outcome, ignoring case (of any letter, not only A-Z). ``limit=0``
    is a count: no records, ``next_cursor`` None, ``total`` set (the app itself
    pages with 1 to 1000). ``since`` and ``until`` are compared as text with the
    ``YYYY-MM-DD HH:MM:SS`` timestamps, both inclusive: a date-only ``since``
    starts at that day, a date-only ``until`` excludes that day (the app sends
    ``YYYY-MM-DD 23:59:59``). :func:`pyramid_sumatra.storage.query.select_entries`
    does all this for rows held in memory.

    ``with_parameters`` asks for ``StoredRecord.parameters``: a backend that keeps
    them fills them (exactly as stored by ``sumatra_put_record``), and without
    ``with_body`` need not read bodies; a backend that does not keep them ignores the
    flag (``parameters`` None).
    """


@storage_hookspec
def sumatra_most_recent_record(project_id: str) -> StoredRecord | None:
    """Return the record with the latest timestamp (ties: greatest label), with body, or None."""


@storage_hookspec
def sumatra_delete_records_by_tag(project_id: str, tag: str) -> int:
    """Delete every record of the project having ``tag``; return how many were deleted.

    Moves the project's ``last_updated`` to now if any was deleted.
    """


# -- projects ----------------------------------------------------------------


@storage_hookspec
def sumatra_get_project(project_id: str) -> ProjectInfo | None:
    """Return the project (with ``record_count`` and ``last_updated``), or None if absent."""


@storage_hookspec
def sumatra_put_project(project: ProjectInfo) -> bool:
    """Create the project, or update its name and description. Return True if it was created.

    ``created`` and ``last_updated`` are set by the backend on creation;
    ``last_updated`` also moves on update.
    """


@storage_hookspec
def sumatra_delete_project(project_id: str) -> bool:
    """Delete a project with all its records and grants. Return True if it existed."""


@storage_hookspec
def sumatra_list_projects(principals: list[str] | None) -> list[ProjectInfo]:
    """Return projects on which any of ``principals`` (usernames, or ``anonymous``) holds a grant.

    ``None`` means every project (server administrators). Newest
    ``last_updated`` first, ties broken by id (ascending). ``record_count`` is set,
    as in ``sumatra_get_project``.
    """


@optional_storage_hookspec("project_record")
def sumatra_get_project_record(project_id: str, label: str,
                               username: str | None) -> ProjectRecord | None:
    """Return ``(project, grants, record)`` at once: what ``sumatra_get_project``,
    ``sumatra_get_grants`` and ``sumatra_get_record(project_id, label)`` return (the
    record None when absent); None when there is no such project.

    ``username``: the user the request names in its credentials (HTTP Basic), which
    ``sumatra_get_user`` is asked for next in the same transaction, or None. A backend
    may read that user in the same query and answer that call from it (it must be the
    user as stored now, not remembered from an earlier transaction); others ignore it.

    Optional: every request for a record needs all three (the permission check, then the
    record), and a database backend reads them in one query, one round trip instead of
    three. Without it the app calls those three hooks.
    """


# -- grants ------------------------------------------------------------------


@storage_hookspec
def sumatra_get_grants(project_id: str) -> dict[str, str]:
    """Return ``{principal: role}`` for the project (empty if none or no such project).

    Principals are usernames or ``anonymous``; roles are ``read``, ``write``, ``admin``.
    """


@storage_hookspec
def sumatra_set_grant(project_id: str, principal: str, role: str) -> bool:
    """Grant ``principal`` the ``role`` on the project, replacing any earlier role. Return True.

    Granting on a missing project raises ``StorageConflict`` and stores nothing.
    """


@storage_hookspec
def sumatra_revoke_grant(project_id: str, principal: str) -> bool:
    """Remove the principal's grant. Return True if there was one."""


# -- users -------------------------------------------------------------------


@storage_hookspec
def sumatra_get_user(username: str) -> UserInfo | None:
    """Return the user (with its password hash, never a clear password), or None."""


@storage_hookspec
def sumatra_put_user(user: UserInfo) -> bool:
    """Create or replace the user. Return True if it was created.

    A new user's ``created`` is ``user.created``, or now if that is empty; replacing
    a user keeps the stored ``created`` (the hash, ``is_admin`` and
    ``session_generation`` are replaced: without ``sumatra_bump_session_generation``
    the app ends sessions through this hook).
    """


@storage_hookspec
def sumatra_delete_user(username: str) -> bool:
    """Delete the user and every grant it holds. Return True if it existed."""


@storage_hookspec
def sumatra_list_users() -> list[UserInfo]:
    """Return every user, ordered by username."""


# -- sessions and personal API tokens (optional: see OPTIONAL_STORAGE_HOOKS) ---


@optional_storage_hookspec("sessions")
def sumatra_bump_session_generation(username: str) -> int | None:
    """Add one to the user's ``session_generation``, atomically; return the new value.

    Every browser session of the user ends at once (logout, password change). Return
    None if there is no such user. Without this hook the app reads the user and
    puts it back with the generation plus one.
    """


@optional_storage_hookspec("tokens")
def sumatra_put_token(token: TokenInfo) -> bool:
    """Store a new token (its ``secret_hash``, never a secret). Return True.

    Return False, storing nothing, if ``token.username`` already has a token
    named ``token.name``. A token whose ``id`` exists after all (a concurrent
    writer) raises ``StorageConflict``. The user must exist (the app checks).
    """


@optional_storage_hookspec("tokens")
def sumatra_get_token(token_id: str) -> TokenInfo | None:
    """Return the token with this ``id``, or None. Called on every token-authenticated
    request: a key lookup (primary key, dict), never a scan of all tokens."""


@optional_storage_hookspec("tokens")
def sumatra_list_tokens(username: str | None) -> list[TokenInfo]:
    """Return the user's tokens ordered by name; ``None``: every user's, by username
    then name (dump and copy). Empty when there are none."""


@optional_storage_hookspec("tokens")
def sumatra_delete_token(username: str, name: str) -> bool:
    """Revoke (delete) the user's token ``name``. Return True if it existed.

    ``sumatra_delete_user`` need not delete tokens: the app revokes them first.
    """


@optional_storage_hookspec("tokens")
def sumatra_touch_token(token_id: str, last_used: str) -> bool:
    """Set the token's ``last_used`` (UTC text). Return True if the token exists.

    The app calls it at most about once a minute per token, not per request.
    """


# -- not storage: authentication and events ------------------------------------


@hookspec(firstresult=True)
def sumatra_authenticate(username: str, password: str) -> bool | None:
    """Decide a login attempt: True accepts, False rejects, None leaves it to the next plugin.

    The built-in implementation checks the stored password hash; an
    institution's plugin (``ldap``) is asked for users who are not local: a local
    user with a password is decided first by the built-in check, so a directory
    entry of the same name cannot take the account over and local users log in
    while the directory is down. The user must also exist in storage for grants to
    apply (the app adds an external user from ``sumatra_external_identity``).
    """


@hookspec(firstresult=True)
def sumatra_external_identity(username: str) -> ExternalIdentity | None:
    """What an identity source (the ``ldap`` plugin) knows about ``username`` now.

    Called after ``sumatra_authenticate`` accepted a login (the app then adds or
    updates the local user: display name, mail, marked external) and for a session or
    API token whose groups are older than the source's cache time (groups as
    ``group:NAME`` principals). Return an
    :class:`~pyramid_sumatra.auth.external.ExternalIdentity`, or None if the user is
    not this source's. Raise
    :class:`~pyramid_sumatra.auth.external.DirectoryUnavailable` when the source
    cannot be reached (the client gets 503 + Retry-After).
    """


@hookspec
def sumatra_record_saved(project_id: str, label: str, created: bool) -> None:
    """Called after the transaction that saved a record committed."""


@hookspec
def sumatra_record_deleted(project_id: str, label: str) -> None:
    """Called after the transaction that deleted a record committed."""


# -- record history and the trash (optional) ----------------
# Without them the app still works: deletes destroy, and the pages say that history and
# trash are unavailable. Both live apart from records and projects: deleting a record
# or a project (sumatra_delete_record, sumatra_delete_project) leaves them alone.

@optional_storage_hookspec("history")
def sumatra_add_history(entry: HistoryEntry, keep: int) -> bool:
    """Append ``entry`` to the history of its record (or project, ``label == ""``).

    With ``keep > 0``, afterwards only the ``keep`` newest entries (by ``entry.key``)
    of that record are kept; 0 keeps everything. Return True. Must be cheap: it runs
    on every PUT (one insert and one bounded delete, or one file rewrite).
    """


@optional_storage_hookspec("history")
def sumatra_list_history(project_id: str, label: str, limit: int,
                         before: str | None) -> list[HistoryEntry]:
    """Return up to ``limit`` entries of one record (``label == ""``: the project's own),
    newest first (``key`` descending), only those whose ``key`` is below ``before``
    when given. Empty when there are none."""


@optional_storage_hookspec("history")
def sumatra_delete_history(project_id: str, label: str | None) -> int:
    """Forget history (purge): the record's (``label``), or with ``label=None`` every
    entry of the project including its own. Return how many entries went."""


@optional_storage_hookspec("trash")
def sumatra_put_trash(item: TrashItem) -> bool:
    """Keep ``item`` (with its body) in the trash. Return True. An item with the same
    ``(project_id, label, deleted_at)`` is replaced."""


@optional_storage_hookspec("trash")
def sumatra_list_trash(project_id: str | None, older_than: str | None,
                       limit: int | None) -> list[TrashItem]:
    """Return trashed items without their bodies (``body`` None), newest
    ``deleted_at`` first: a project's records and itself (``project_id``), or every
    item (None); only those deleted before ``older_than`` when given; at most
    ``limit`` (None: all)."""


@optional_storage_hookspec("trash")
def sumatra_get_trash(project_id: str, label: str, deleted_at: str) -> TrashItem | None:
    """Return the trashed item with its body, or None."""


@optional_storage_hookspec("trash")
def sumatra_delete_trash(project_id: str, label: str, deleted_at: str) -> bool:
    """Remove an item from the trash (restored or purged). Return True if it was there."""


# -- record queries (optional: without it the app evaluates queries itself) -----------


@optional_storage_hookspec("search")
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
    cursor or an unknown ``order`` raises ValueError. The filesystem backend lacks
    it: the app falls back.
    """


#: Hooks a backend must implement (the ones marked ``@storage_hookspec``, in order);
#: start-up fails if one is missing.
STORAGE_HOOKS = tuple(name for name, value in list(globals().items())
                      if getattr(value, "sumatra_storage_hook", None) is True)
#: Storage hooks a backend may lack (``@optional_storage_hookspec``), and those of each
#: capability: without the token hooks tokens are unavailable (the page and the CLI say
#: so; a token is just a wrong password); without ``sessions`` logout bumps the session
#: generation through get_user/put_user. The built-in backends implement them all.
OPTIONAL_STORAGE_HOOKS = tuple(name for name, value in list(globals().items())
                               if getattr(value, "sumatra_storage_hook", None) == "optional")
CAPABILITIES: dict[str, tuple[str, ...]] = {}
for _name in OPTIONAL_STORAGE_HOOKS:
    _capability = globals()[_name].sumatra_capability
    CAPABILITIES[_capability] = (*CAPABILITIES.get(_capability, ()), _name)
TOKEN_HOOKS = CAPABILITIES["tokens"]
HISTORY_HOOKS = CAPABILITIES["history"]
TRASH_HOOKS = CAPABILITIES["trash"]
QUERY_HOOKS = CAPABILITIES["search"]
