"""Plain values exchanged between the app and storage backends.

Backends receive and return these; they never see a request or a response.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from transaction.interfaces import TransientError

#: Roles a grant may carry, weakest first.
ROLES = ("read", "write", "admin")
#: The pseudo-user whose grant makes a project public.
ANONYMOUS = "anonymous"


class StorageError(Exception):
    """Base class of errors a backend raises on purpose."""


class StorageConflict(StorageError, TransientError):
    """A concurrent writer got there first (e.g. two creates of one label).

    It is a ``TransientError``: pyramid_retry replays the request, which then
    sees the other writer's result.
    """


class StorageUnavailable(StorageError):
    """The storage cannot be reached or written now (database down, disk full)."""


class StorageFull(StorageUnavailable):
    """No space left for the write (disk full, quota): 507 until an operator frees space."""


@dataclass
class StoredRecord:
    """One record: the JSON document as text, plus the fields storage indexes.

    ``body`` is the document serialised as JSON; ``revision`` names that exact
    body (it becomes the ETag). The index fields are derived from the body by
    :func:`pyramid_sumatra.records.index_fields` and only ever used to filter and
    sort; the body is the truth.
    """

    project_id: str
    label: str
    body: str | None
    revision: str
    timestamp: str  # UTC, "YYYY-MM-DD HH:MM:SS", sorts as text
    tags: list[str] = field(default_factory=list)
    user: str = ""
    main_file: str = ""
    version: str = ""
    executable: str = ""
    reason: str = ""
    outcome: str = ""
    duration: float | None = None
    #: The record's parameters flattened (``{"solver.tol": 1e-6}``), as
    #: :func:`pyramid_sumatra.parameters.record_parameters` derives them from the body:
    #: text, booleans, numbers, and ``[]`` for a value that compares with nothing.
    #: None when the backend did not keep them (the app then parses the body).
    parameters: dict[str, bool | int | float | str | list] | None = None

    @property
    def document(self) -> dict:
        if self.body is None:
            raise ValueError("record fetched without its body")
        return json.loads(self.body)


#: Index fields a :class:`RecordQuery` may be ordered by.
SORTABLE = ("timestamp", "label", "user", "main_file", "version", "executable", "reason",
            "outcome", "duration")


@dataclass
class RecordQuery:
    """What to select from a project's records.

    Results are ordered newest first (timestamp, then label, both descending)
    unless ``order`` names another index field (prefix ``-`` for descending).
    ``cursor`` is an opaque string returned in :class:`RecordPage`.
    """

    tags: list[str] | None = None  # any of these
    text: str | None = None  # substring of label, reason or outcome, ignoring case
    user: str | None = None
    main_file: str | None = None
    since: str | None = None  # inclusive, same format as StoredRecord.timestamp
    until: str | None = None  # inclusive (a date alone sorts before that day's times)
    limit: int | None = None  # 0: count only (RecordPage.total, no records)
    cursor: str | None = None
    order: str = "-timestamp"
    with_body: bool = False
    #: The caller needs labels only (the project document): a backend may then fill
    #: RecordPage.labels instead of records, skipping 100,000 StoredRecords and tags.
    labels_only: bool = False
    #: A hint: False when the caller does not need ``RecordPage.total`` (a query's pages),
    #: so a backend may skip counting (a second pass over the matches) and leave it None.
    count_total: bool = True
    #: The caller needs ``StoredRecord.parameters`` (the plots): a backend that keeps them
    #: fills them, and then need not read bodies unless ``with_body`` asks; a backend
    #: that does not keep them ignores the flag (parameters None, bodies as asked).
    with_parameters: bool = False


@dataclass
class RecordPage:
    records: list[StoredRecord]
    next_cursor: str | None = None
    total: int | None = None  # all records matching the filters, ignoring limit/cursor
    labels: list[str] | None = None  # set instead of records for RecordQuery.labels_only
    #: Or, for RecordQuery.labels_only, the labels joined by "\n" (no label holds one):
    #: a whole project's 100,000 labels as one string, not 100,000 objects.
    labels_text: str | None = None

    def all_labels(self) -> list[str]:
        if self.labels_text is not None:
            return self.labels_text.split("\n") if self.labels_text else []
        return self.labels if self.labels is not None else [r.label for r in self.records]

    def joined_labels(self) -> str:
        """The labels joined by "\n" (what ``labels_text`` holds)."""
        if self.labels_text is not None:
            return self.labels_text
        return "\n".join(self.all_labels())


@dataclass
class ProjectInfo:
    id: str
    name: str = ""
    description: str = ""
    created: str = ""  # UTC "YYYY-MM-DD HH:MM:SS.ffffff"
    last_updated: str = ""
    record_count: int = 0


#: ``sumatra_get_project_record``'s answer: the project, its grants, the record (or None).
ProjectRecord = tuple[ProjectInfo, dict[str, str], StoredRecord | None]


@dataclass
class UserInfo:
    username: str
    password_hash: str
    is_admin: bool = False
    created: str = ""  # UTC "YYYY-MM-DD HH:MM:SS.ffffff", like ProjectInfo.created
    #: Bumped to end every session of the user at once (logout, password change):
    #: a session is valid only while it names the user's current generation.
    session_generation: int = 0
    #: Users who log in elsewhere (revision 0007): "" for a local user, else the source
    #: ("ldap", "oidc"); their password_hash is auth.external.EXTERNAL_PASSWORD.
    source: str = ""
    display_name: str = ""
    email: str = ""
    #: The groups the user's last OpenID Connect login reported (revision 0009), and
    #: when (UTC "YYYY-MM-DD HH:MM:SS"): API tokens use them, as the provider cannot be
    #: asked without the user. None: none kept (never so logged in, or a backend that
    #: does not store them; the user's tokens then get no group principals).
    groups: tuple[str, ...] | None = None
    groups_seen: str = ""


#: What a personal API token may do: ``read`` only, or also ``write``.
TOKEN_SCOPES = ("read", "write")


@dataclass
class TokenInfo:
    """A personal API token, as stored: never the secret, only its SHA-256.

    ``id`` is the public part of the token (``smt_<id>_<secret>``) and its key in
    storage; ``name`` is unique per user. ``projects`` empty means every project
    the user may reach. Times are UTC "YYYY-MM-DD HH:MM:SS"; ``expires`` and
    ``last_used`` may be None (never expires, never used).
    """

    id: str
    username: str
    name: str
    secret_hash: str
    scope: str = "write"
    projects: list[str] = field(default_factory=list)
    created: str = ""
    expires: str | None = None
    last_used: str | None = None


@dataclass(frozen=True)
class ExternalIdentity:
    """A user as an identity source reports it after a successful login.

    ``source`` names the source ("ldap", "oidc"); ``groups`` are bare group names
    (``physics-lab``), each following :func:`group_problem`'s rule.
    """

    username: str
    source: str
    display_name: str = ""
    email: str = ""
    groups: tuple[str, ...] = field(default_factory=tuple)

# -- history and trash (optional hooks: hookspecs.HISTORY_HOOKS, TRASH_HOOKS) ----------


@dataclass
class HistoryEntry:
    """One change to a record (``label``) or to a project itself (``label == ""``).

    ``at`` is UTC "YYYY-MM-DD HH:MM:SS.ffffff" and ``id`` a random hex string chosen
    by the app; entries sort by :attr:`key` (newest first when listed). ``changes``
    maps each changed top-level field to ``{"old": value, "new": value}``, a side
    missing when the field was absent; it is JSON-serialisable.
    """

    project_id: str
    label: str
    at: str
    id: str
    action: str  # create, update, edit, tag, untag, delete, restore; grant, revoke, ...
    user: str = ""
    token: str = ""  # the API token's name when the change was made with one
    changes: dict = field(default_factory=dict)
    revision_before: str = ""
    revision_after: str = ""

    @property
    def key(self) -> str:
        """The sort key (and the ``before`` bound of ``sumatra_list_history``)."""
        return f"{self.at}|{self.id}"


@dataclass
class TrashItem:
    """Something deleted and kept until purged: a record, or (``label == ""``) a project.

    A record's ``body`` is its document as stored and ``revision`` its revision; a
    project's ``body`` is a JSON document of the whole project (``services.trash``) and
    ``revision`` its admins at deletion, comma-separated (who may restore it).
    ``(project_id, label, deleted_at)`` is the key: a label deleted twice is in the
    trash twice. ``body`` is None in listings.
    """

    project_id: str
    label: str
    deleted_at: str  # UTC "YYYY-MM-DD HH:MM:SS.ffffff"
    deleted_by: str = ""
    revision: str = ""  # a record's revision; a project's admins, comma-separated
    timestamp: str = ""  # the record's own timestamp (a project: its last_updated)
    body: str | None = None
