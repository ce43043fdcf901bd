"""Move everything a store holds to another store, or through a JSON-lines file.

``copy`` (store → store), ``dump`` (store → file) and ``load`` (file → store) carry
users (with their password hashes, session generations, and for users who log in
elsewhere their source, profile and kept groups), personal API tokens (their
hashes: tokens keep working), projects, grants and records (bodies as stored,
revisions kept, so ETags survive), record and project history, and the trash (deleted
records and projects), through the storage hooks only: any backend to any
backend. Each ends by verifying the destination: the same counts, and per project the
same sha256 over its records' labels, revisions and documents. The documents are
compared in canonical form (sorted keys), because a backend may re-serialise a body
(a backend may re-serialise bodies).

What the hooks cannot carry: a project's ``created`` and ``last_updated`` become the
time of the copy; projects are written oldest first, so their order is kept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from typing import IO, Any

from .records import build_stored_record, utcnow
from .storage import Storage
from .storage.types import (
    HistoryEntry,
    ProjectInfo,
    RecordQuery,
    StoredRecord,
    TokenInfo,
    TrashItem,
    UserInfo,
)

FORMAT = "sumatra-server-dump"
FORMAT_VERSION = 1
PAGE_SIZE = 500

#: Called once per item moved (a progress bar's ``update``).
Progress = Callable[[int], Any]


class TransferError(RuntimeError):
    """The transfer cannot start or did not verify; the message says why."""


# -- reading a store -------------------------------------------------------------------


def iter_records(storage: Storage, project_id: str) -> Iterator[StoredRecord]:
    """Every record of a project with its body, by label, a page at a time."""
    cursor = None
    while True:
        page = storage.query_records(project_id, RecordQuery(
            order="label", limit=PAGE_SIZE, cursor=cursor, with_body=True))
        yield from page.records
        cursor = page.next_cursor
        if cursor is None:
            return


def canonical(body: str) -> str:
    """The document in a form independent of key order and spacing."""
    return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def records_digest(records: Iterable[StoredRecord]) -> str:
    """sha256 over (label, revision, canonical document) of records sorted by label."""
    digest = hashlib.sha256()
    for rec in sorted(records, key=lambda r: r.label):
        digest.update(f"{rec.label}\0{rec.revision}\0{canonical(rec.body or '')}\n".encode())
    return digest.hexdigest()


def summarise(storage: Storage) -> dict[str, Any]:
    """Counts and digests that two stores holding the same data share."""
    users = storage.list_users()
    projects = {}
    for project in storage.list_projects(None):
        records = list(iter_records(storage, project.id))
        projects[project.id] = {
            "records": len(records),
            "grants": dict(sorted(storage.get_grants(project.id).items())),
            "digest": records_digest(records),
        }
    return {
        "users": {u.username: _digest(  # the hash's digest: no secrets in a summary
            f"{u.password_hash}\0{u.is_admin}\0{u.created}"
            # generation 0 adds nothing: summaries of dumps made before it still verify
            + (f"\0{u.session_generation}" if u.session_generation else ""))
            for u in users},
        "projects": dict(sorted(projects.items())),
        "tokens": {t.id: _digest(json.dumps(asdict(t), sort_keys=True))
                   for t in storage.list_tokens(None)},
        **history_and_trash_summary(storage),
    }


def history_keys(storage: Storage) -> list[tuple[str, str]]:
    """(project, label) of every history a store may hold: live and trashed records and
    projects, and each project's own ("" label)."""
    keys: set[tuple[str, str]] = set()
    for project in storage.list_projects(None):
        keys.add((project.id, ""))
        keys.update((project.id, r.label) for r in iter_records(storage, project.id))
    for item in storage.list_trash(None):
        keys.add((item.project_id, item.label))
        if not item.label:  # a trashed project: its records' histories too
            full = storage.get_trash(item.project_id, "", item.deleted_at)
            keys.update((item.project_id, r["label"])
                        for r in json.loads(full.body or "{}").get("records", []))
    return sorted(keys)


def iter_history(storage: Storage, project_id: str, label: str) -> Iterator[HistoryEntry]:
    """Every entry of one history, newest first, a page at a time."""
    before = None
    while True:
        entries = storage.list_history(project_id, label, PAGE_SIZE, before)
        yield from entries
        if len(entries) < PAGE_SIZE:
            return
        before = entries[-1].key


def history_and_trash_summary(storage: Storage) -> dict[str, Any]:
    if not (storage.history_available or storage.trash_available):
        return {}
    histories = {}
    for project_id, label in history_keys(storage):
        entries = [asdict(e) for e in iter_history(storage, project_id, label)]
        if entries:
            histories[f"{project_id}/{label}"] = _digest(json.dumps(entries, sort_keys=True))
    trashed = {}
    for item in storage.list_trash(None):
        full = storage.get_trash(item.project_id, item.label, item.deleted_at)
        trashed[f"{item.project_id}/{item.label}@{item.deleted_at}"] = _digest(
            json.dumps(asdict(full), sort_keys=True))
    return {"history": histories, "trash": trashed}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def export_items(storage: Storage, progress: Progress = lambda n: None) -> Iterator[dict]:
    """Everything in the store as plain items: users, then project by project."""
    for user in storage.list_users():
        yield {"kind": "user", **asdict(user)}
    for token in storage.list_tokens(None):
        yield {"kind": "token", **asdict(token)}
    # Oldest first: each write moves last_updated, so the destination keeps the order.
    for project in sorted(storage.list_projects(None), key=lambda p: (p.last_updated, p.id)):
        yield {"kind": "project", "id": project.id, "name": project.name,
               "description": project.description, "created": project.created,
               "last_updated": project.last_updated}
        for principal, role in sorted(storage.get_grants(project.id).items()):
            yield {"kind": "grant", "project": project.id, "principal": principal,
                   "role": role}
        for rec in iter_records(storage, project.id):
            yield {"kind": "record", "project": project.id, "label": rec.label,
                   "revision": rec.revision, "body": rec.body}
            progress(1)
    for item in storage.list_trash(None):
        full = storage.get_trash(item.project_id, item.label, item.deleted_at)
        yield {"kind": "trash", **asdict(full)}
    if storage.history_available:
        for project_id, label in history_keys(storage):
            # oldest first, so that a bounded destination keeps the newest
            for entry in reversed(list(iter_history(storage, project_id, label))):
                yield {"kind": "history", **asdict(entry)}


# -- writing a store -------------------------------------------------------------------


def import_item(storage: Storage, item: dict) -> None:
    kind = item.get("kind")
    if kind == "user":
        groups = item.get("groups")  # a tuple (copy), a list (dump); absent: older dumps
        groups = tuple(groups) if isinstance(groups, list | tuple) else None
        storage.put_user(UserInfo(username=item["username"],
                                  password_hash=item["password_hash"],
                                  is_admin=bool(item.get("is_admin")),
                                  created=item.get("created", ""),
                                  session_generation=int(item.get("session_generation", 0)),
                                  # external users stay external (else their next login
                                  # finds a local namesake and is refused)
                                  source=item.get("source", ""),
                                  display_name=item.get("display_name", ""),
                                  email=item.get("email", ""),
                                  groups=groups,
                                  groups_seen=item.get("groups_seen", "")))
    elif kind == "token":
        if not storage.tokens_available:
            raise TransferError("the destination's backend does not support API tokens")
        fields = {key: item[key] for key in TokenInfo.__dataclass_fields__ if key in item}
        if not storage.put_token(TokenInfo(**fields)):
            raise TransferError(f"token {item.get('name')!r} of {item.get('username')!r} "
                                "appears twice")
    elif kind == "project":
        storage.put_project(ProjectInfo(id=item["id"], name=item.get("name", ""),
                                        description=item.get("description", "")))
    elif kind == "grant":
        storage.set_grant(item["project"], item["principal"], item["role"])
    elif kind == "record":
        # Index fields from the document, exactly as a PUT derives them; the body text
        # and revision as they were (so ETags held by clients stay valid).
        rec = build_stored_record(item["project"], json.loads(item["body"]))
        if rec.label != item["label"]:
            raise TransferError(f"record {item['project']}/{item['label']}: its body is "
                                f"labelled {rec.label!r}")
        rec.body, rec.revision = item["body"], item["revision"]
        storage.put_record(rec, create=True)
    elif kind in ("history", "trash"):
        available = storage.history_available if kind == "history" else storage.trash_available
        if not available:
            raise TransferError(f"the destination's backend does not keep {kind}")
        fields = {k: v for k, v in item.items() if k != "kind"}
        if kind == "history":
            storage.add_history(HistoryEntry(**fields))
        else:
            storage.put_trash(TrashItem(**fields))
    else:
        raise TransferError(f"unknown item kind {kind!r}")


def require_empty(storage: Storage, what: str) -> None:
    if storage.list_users() or storage.list_projects(None):
        raise TransferError(f"{what} is not empty: copy and load only fill an empty store "
                            "(so that they can verify the result)")


def verify(expected: dict[str, Any], storage: Storage) -> dict[str, int]:
    """Compare the destination's summary with the source's; return the counts."""
    found = summarise(storage)
    problems = []
    if found["users"] != expected["users"]:
        problems.append(f"users differ: expected {sorted(expected['users'])}, "
                        f"found {sorted(found['users'])}")
    if found["tokens"] != expected.get("tokens", {}):  # dumps made before tokens: none
        problems.append(f"API tokens differ: expected {len(expected.get('tokens', {}))}, "
                        f"found {len(found['tokens'])} (or their fields differ)")
    for kind in ("history", "trash"):  # dumps made before 0.2.0: none
        if found.get(kind, {}) != expected.get(kind, {}):
            problems.append(f"{kind} differs: expected {len(expected.get(kind, {}))} "
                            f"items, found {len(found.get(kind, {}))} (or they differ)")
    for pid in sorted(set(expected["projects"]) | set(found["projects"])):
        want, got = expected["projects"].get(pid), found["projects"].get(pid)
        if want != got:
            problems.append(f"project {pid!r}: expected {want}, found {got}")
    if problems:
        raise TransferError("verification failed: " + "; ".join(problems))
    return counts(found)


def counts(summary: dict[str, Any]) -> dict[str, int]:
    projects = summary["projects"].values()
    return {"users": len(summary["users"]), "projects": len(summary["projects"]),
            "grants": sum(len(p["grants"]) for p in projects),
            "records": sum(p["records"] for p in projects),
            "API tokens": len(summary.get("tokens", {})),
            "histories": len(summary.get("history", {})),
            "trashed items": len(summary.get("trash", {}))}


def record_total(storage: Storage) -> int:
    return sum(p.record_count for p in storage.list_projects(None))


# -- the three operations ------------------------------------------------------------------


def copy(source: Storage, destination: Storage,
         progress: Progress = lambda n: None) -> dict[str, int]:
    """Copy everything from ``source`` into the empty ``destination``; verify; return counts.

    Runs in the caller's transaction (both stores join it): if verification fails,
    aborting it leaves the destination empty.
    """
    require_empty(destination, "the destination")
    for item in export_items(source, progress):
        import_item(destination, item)
    return verify(summarise(source), destination)


def dump(source: Storage, out: IO[str], progress: Progress = lambda n: None) -> dict[str, int]:
    """Write the store as JSON lines: a header, the items, a summary to verify a load by."""
    out.write(json.dumps({"format": FORMAT, "version": FORMAT_VERSION,
                          "created": utcnow()}) + "\n")
    for item in export_items(source, progress):
        out.write(json.dumps(item, ensure_ascii=False) + "\n")
    summary = summarise(source)
    out.write(json.dumps({"kind": "summary", **summary}, ensure_ascii=False) + "\n")
    return counts(summary)


def load(destination: Storage, lines: Iterable[str],
         progress: Progress = lambda n: None) -> dict[str, int]:
    """Load a dump into the empty ``destination``; verify against the dump's summary."""
    require_empty(destination, "the destination")
    lines = iter(lines)
    try:
        header = json.loads(next(lines))
    except (StopIteration, ValueError):
        raise TransferError("not a dump: the first line is not a JSON header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise TransferError(f"not a dump: the header names no {FORMAT!r} format")
    if header.get("version") != FORMAT_VERSION:
        raise TransferError(f"dump format version {header.get('version')} is not supported "
                            f"(this server reads version {FORMAT_VERSION})")
    summary = None
    for number, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise TransferError(f"line {number} is not JSON: {exc}") from None
        if summary is not None:
            raise TransferError(f"line {number}: items after the summary")
        if item.get("kind") == "summary":
            summary = item
            continue
        import_item(destination, item)
        if item.get("kind") == "record":
            progress(1)
    if summary is None:
        raise TransferError("the dump ends without its summary line: it is incomplete")
    return verify(summary, destination)


def describe(done: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in done.items())
