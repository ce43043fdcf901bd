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
from .permissions import DEFAULT_ROLE
from .services import grants, tokens, trash, users
from .services.errors import Conflict, InvalidInput, ServiceError
from .storage import Storage
from .storage.plugins import PluginError
from .storage.types import ROLES, StorageError


class CommandError(Exception):
    """A clear message for the operator; exit status 1."""


def read_password(prompt_twice: bool = True) -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if prompt_twice and getpass.getpass("Again: ") != password:
            raise CommandError("the passwords do not match")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    return password  # services.users checks its length


def cmd_initdb(storage: Storage, args) -> str:
    storage.initialize()
    return "storage initialised"


def cmd_adduser(storage: Storage, args) -> str:
    try:
        users.check_new_user(storage, args.name)  # before the prompt, which would be wasted
    except Conflict as exc:
        raise CommandError(f"{exc}; use passwd to change the password") from None
    users.add_user(storage, args.name, read_password(), admin=args.admin)
    return f"user {args.name!r} added" + (" (server administrator)" if args.admin else "")


def cmd_passwd(storage: Storage, args) -> str:
    users.require_user(storage, args.name)  # before the prompt
    users.set_password(storage, args.name, read_password())
    return f"password of {args.name!r} changed; its sessions ended"


def cmd_deluser(storage: Storage, args) -> str:
    users.delete_user(storage, args.name)
    return f"user {args.name!r} deleted with its grants"


def cmd_grant(storage: Storage, args) -> str:
    role = grants.grant(storage, args.project, args.user, args.role)
    return f"{args.user!r} has {role} access to {args.project!r}"


def cmd_revoke(storage: Storage, args) -> str:
    grants.revoke(storage, args.project, args.user)
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


def cmd_purge(storage: Storage, args) -> str:
    """Empty the trash of what was deleted before --older-than (default sumatra.trash.keep_days)."""
    if not storage.trash_available:
        raise CommandError("this server's storage backend has no trash: deletes destroy")
    cutoff = trash.older_than(args.older_than, storage.trash_keep_days)
    count = trash.purge_older(storage, cutoff, args.project)
    return f"purged {count} item(s) deleted before {cutoff[:19]} UTC"


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
        except (transfer.TransferError, InvalidInput) as exc:
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
    except (transfer.TransferError, InvalidInput, KeyError) as exc:
        raise CommandError(f"{args.file}: {exc}") from None
    return f"loaded {transfer.describe(done)} from {args.file}; verified"


def _token_line(token) -> str:
    limits = ", ".join(token.projects) if token.projects else "all projects"
    return (f"{token.name}\t{token.scope}\t{limits}\tcreated {token.created[:19]}\t"
            f"expires {(token.expires or 'never')[:19]}\tlast used "
            f"{(token.last_used or 'never')[:19]}\t{tokens.status(token)}")


def cmd_token(storage: Storage, args) -> str:
    """``token create|list|revoke``: a user's personal API tokens."""
    if not storage.tokens_available:
        raise CommandError("this server's storage backend does not support API tokens")
    if storage.get_user(args.user) is None:
        raise CommandError(f"no user {args.user!r}")
    if args.token_command == "list":
        return "\n".join(_token_line(t) for t in storage.list_tokens(args.user))
    if args.token_command == "revoke":
        if not tokens.revoke(storage, args.user, args.name):
            raise CommandError(f"{args.user!r} has no token named {args.name!r}")
        return f"token {args.name!r} of {args.user!r} revoked"
    try:
        token, secret = tokens.create(storage, args.user, args.name, expires=args.expires,
                                      scope=args.scope, projects=args.project)
    except tokens.TokenError as exc:
        raise CommandError(f"{exc.field}: {exc.message}") from None
    return (f"token {token.name!r} of {args.user!r} ({_token_line(token)}); shown only now, "
            f"use it as the password (smt init --store=http://{args.user}:TOKEN@HOST/):\n"
            f"{secret}")


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
    p = add("token", cmd_token, "create, list or revoke a user's personal API tokens")
    tsub = p.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    t = tsub.add_parser("create", help="create a token and print it (once)")
    t.add_argument("user")
    t.add_argument("name", help="1-64 letters, digits, spaces, '.', '_' or '-'")
    t.add_argument("--expires", default=None,
                   help="30d, 12h, 90m, 2w, a date YYYY-MM-DD, or never (the default)")
    t.add_argument("--scope", choices=("read", "write"), default="write")
    t.add_argument("--project", action="append", default=[], metavar="PROJECT",
                   help="only this project (repeatable); default: every project")
    tsub.add_parser("list", help="list a user's tokens").add_argument("user")
    t = tsub.add_parser("revoke", help="revoke a token at once")
    t.add_argument("user")
    t.add_argument("name")
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
    p = add("purge", cmd_purge, "empty the trash permanently of what was deleted long ago "
            "(for cron)")
    p.add_argument("--older-than", default=None, metavar="DAYS",
                   help="e.g. 30d; 0d empties it; default: sumatra.trash.keep_days")
    p.add_argument("--project", default=None, help="only this project's trash")
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
            try:
                output = COMMANDS[args.command](storage, args)
            except ServiceError as exc:  # a rule refused: abort, and tell the operator why
                raise CommandError(str(exc)) from None
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
