"""``sumatra-server CONFIG.ini COMMAND``: administer a server's storage.

Each command runs in one transaction: it all happens, or nothing does.
Passwords are read from a prompt, or from standard input when it is not a
terminal; never from the command line.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import transaction
from pyramid.paster import get_appsettings, setup_logging

from . import build_storage, resolve_settings, transfer
from .demo import load_demo
from .passwords import hash_password
from .permissions import DEFAULT_ROLE
from .records import InvalidRecord, name_problem
from .storage import Storage
from .storage.plugins import PluginError
from .storage.types import ANONYMOUS, ROLES, StorageError, UserInfo


class CommandError(Exception):
    """A clear message for the operator; exit status 1."""


def read_password(prompt_twice: bool = True) -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if prompt_twice and getpass.getpass("Again: ") != password:
            raise CommandError("the passwords do not match")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 6:
        raise CommandError("a password needs at least 6 characters")
    return password


def cmd_initdb(storage: Storage, args) -> str:
    storage.initialize()
    return "storage initialised"


def cmd_adduser(storage: Storage, args) -> str:
    problem = name_problem(args.name, "username")
    if problem or args.name == ANONYMOUS:
        raise CommandError(problem or f"{ANONYMOUS!r} is reserved for public access")
    if storage.get_user(args.name):
        raise CommandError(f"user {args.name!r} exists; use passwd to change the password")
    storage.put_user(UserInfo(username=args.name, password_hash=hash_password(read_password()),
                              is_admin=args.admin))
    return f"user {args.name!r} added" + (" (server administrator)" if args.admin else "")


def cmd_passwd(storage: Storage, args) -> str:
    user = storage.get_user(args.name)
    if user is None:
        raise CommandError(f"no user {args.name!r}")
    user.password_hash = hash_password(read_password())
    storage.put_user(user)
    return f"password of {args.name!r} changed"


def cmd_deluser(storage: Storage, args) -> str:
    if not storage.delete_user(args.name):
        raise CommandError(f"no user {args.name!r}")
    return f"user {args.name!r} deleted with its grants"


def _require_project(storage: Storage, project_id: str) -> None:
    if storage.get_project(project_id) is None:
        raise CommandError(f"no project {project_id!r}")


def cmd_grant(storage: Storage, args) -> str:
    _require_project(storage, args.project)
    role = args.role
    if args.user == ANONYMOUS:
        role = "read"
    elif storage.get_user(args.user) is None:
        raise CommandError(f"no user {args.user!r}")
    storage.set_grant(args.project, args.user, role)
    return f"{args.user!r} has {role} access to {args.project!r}"


def cmd_revoke(storage: Storage, args) -> str:
    _require_project(storage, args.project)
    if not storage.revoke_grant(args.project, args.user):
        raise CommandError(f"{args.user!r} holds no grant on {args.project!r}")
    return f"{args.user!r} no longer has access to {args.project!r}"


def cmd_load_demo(storage: Storage, args) -> str:
    counts = load_demo(storage)
    return "loaded " + ", ".join(f"{n} {kind}" for kind, n in counts.items())


def cmd_users(storage: Storage, args) -> str:
    return "\n".join(f"{u.username}{'  (admin)' if u.is_admin else ''}"
                     for u in storage.list_users())


def cmd_projects(storage: Storage, args) -> str:
    lines = []
    for p in storage.list_projects(None):
        grants = storage.get_grants(p.id)
        access = ", ".join(f"{who}:{role}" for who, role in sorted(grants.items()))
        lines.append(f"{p.id}\t{p.record_count} records\tupdated {p.last_updated}\t{access}")
    return "\n".join(lines)


def cmd_check(storage: Storage, args) -> str:
    status = storage.status()
    if not status.get("ok"):
        raise CommandError(f"storage is not reachable: {status.get('detail', status)}")
    try:
        report = storage.check(repair=args.repair)
    except StorageError as exc:
        raise CommandError(f"cannot check storage: {exc}") from None
    lines = [f"{'repaired' if args.repair and p not in report['unrepaired'] else 'problem'}: {p}"
             for p in report["problems"]]
    if report["unrepaired"]:
        raise CommandError("\n".join([*lines, f"{len(report['unrepaired'])} problems left"
                                       + ("" if args.repair else "; run check --repair")]))
    return "\n".join([*lines, f"{report['backend']} storage is consistent"])


def _progress_bar(args, total: int | None, what: str):
    """A progress bar on stderr, shown on a terminal or with --progress."""
    from tqdm import tqdm

    return tqdm(total=total, desc=what, unit=" records", file=sys.stderr, leave=False,
                disable=not (args.progress or sys.stderr.isatty()))


def _store_identity(settings: dict) -> dict:
    backend = settings.get("sumatra.backend", "sqlalchemy")
    return {key: value for key, value in settings.items()
            if key in ("sumatra.backend", "sqlalchemy.url")
            or key.startswith(f"sumatra.{backend}.")}


def cmd_copy(storage: Storage, args) -> str:
    try:
        settings = resolve_settings(dict(get_appsettings(args.destination)))
        if _store_identity(settings) == _store_identity(args.settings):
            raise CommandError(f"{args.config} and {args.destination} name the same store")
        destination = build_storage(settings)
    except (FileNotFoundError, LookupError, ValueError, PluginError) as exc:
        raise CommandError(f"cannot use {args.destination}: {exc}") from None
    # Both stores join this command's transaction; release the destination after it ends.
    transaction.get().addAfterCommitHook(lambda ok: destination.dispose())
    transaction.get().addAfterAbortHook(destination.dispose)
    try:
        destination.initialize()
    except Exception as exc:  # noqa: BLE001 - any backend's failure, told to the operator
        raise CommandError(f"cannot open the store of {args.destination}: {exc}") from None
    with _progress_bar(args, transfer.record_total(storage), "copy") as bar:
        try:
            done = transfer.copy(storage, destination, bar.update)
        except (transfer.TransferError, InvalidRecord) as exc:
            raise CommandError(str(exc)) from None
    return f"copied {transfer.describe(done)} to {args.destination}; verified"


def cmd_dump(storage: Storage, args) -> str:
    path = Path(args.file)
    partial = path.with_name(f".{path.name}.partial")
    try:  # the dump holds password hashes: readable by its owner only
        with _progress_bar(args, transfer.record_total(storage), "dump") as bar, \
                open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                     "w", encoding="utf-8") as out:
            done = transfer.dump(storage, out, bar.update)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return f"dumped {transfer.describe(done)} to {path}"


def cmd_load(storage: Storage, args) -> str:
    try:
        with open(args.file, encoding="utf-8") as lines, \
                _progress_bar(args, None, "load") as bar:
            done = transfer.load(storage, lines, bar.update)
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc}") from None
    except (transfer.TransferError, InvalidRecord, KeyError) as exc:
        raise CommandError(f"{args.file}: {exc}") from None
    return f"loaded {transfer.describe(done)} from {args.file}; verified"


COMMANDS: dict[str, Callable[[Storage, argparse.Namespace], str]] = {}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sumatra-server", description=__doc__.split("\n")[0])
    parser.add_argument("config", help="the ini file of the server, e.g. production.ini")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func, help: str) -> argparse.ArgumentParser:
        COMMANDS[name] = func
        return sub.add_parser(name, help=help, description=help)

    add("initdb", cmd_initdb, "create or upgrade the storage schema")
    p = add("adduser", cmd_adduser, "add a user (password from a prompt or stdin)")
    p.add_argument("name")
    p.add_argument("--admin", action="store_true", help="a server-wide administrator")
    add("passwd", cmd_passwd, "change a user's password").add_argument("name")
    add("deluser", cmd_deluser, "delete a user and its grants").add_argument("name")
    p = add("grant", cmd_grant, "grant a user (or 'anonymous': public) access to a project")
    p.add_argument("project")
    p.add_argument("user")
    p.add_argument("--role", choices=ROLES, default=DEFAULT_ROLE)
    p = add("revoke", cmd_revoke, "revoke a user's access to a project")
    p.add_argument("project")
    p.add_argument("user")
    add("load-demo", cmd_load_demo, "load the demo users, projects and records")
    add("users", cmd_users, "list users")
    add("projects", cmd_projects, "list projects with record counts and grants")
    p = add("copy", cmd_copy, "copy everything into the empty store of another ini file, "
            "then verify counts and digests")
    p.add_argument("destination", help="the ini file of the destination, e.g. new.ini")
    p.add_argument("--progress", action="store_true", help="a progress bar even without a tty")
    p = add("dump", cmd_dump, "write everything (users with password hashes, projects, "
            "grants, records) to a JSON-lines file")
    p.add_argument("file")
    p.add_argument("--progress", action="store_true", help="a progress bar even without a tty")
    p = add("load", cmd_load, "load a dump into an empty store, then verify it")
    p.add_argument("file")
    p.add_argument("--progress", action="store_true", help="a progress bar even without a tty")
    add("check", cmd_check, "check storage consistency; --repair fixes what it can") \
        .add_argument("--repair", action="store_true",
                      help="rebuild indexes and counts from the records, remove stray files")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        setup_logging(args.config)
        settings = resolve_settings(dict(get_appsettings(args.config)))
    except (FileNotFoundError, LookupError, ValueError) as exc:
        print(f"sumatra-server: cannot read {args.config}: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    args.settings = settings
    try:
        storage = build_storage(settings)
    except PluginError as exc:
        print(f"sumatra-server: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command not in ("initdb", "check"):  # check looks, and changes nothing
            storage.initialize()
        with transaction.manager:
            output = COMMANDS[args.command](storage, args)
    except CommandError as exc:
        print(f"sumatra-server {args.command}: {exc}", file=sys.stderr)
        return 1
    finally:
        storage.dispose()
    if output:
        print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
