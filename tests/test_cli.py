"""``sumatra-server CONFIG COMMAND`` as a user runs it: a real subprocess on a temporary ini."""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest.mock import patch

import pytest
import transaction

from pyramid_sumatra import build_storage, resolve_settings
from pyramid_sumatra.cli import main

CLI = [sys.executable, "-m", "pyramid_sumatra.cli"]


@pytest.fixture
def ini(tmp_path: Path) -> Path:
    path = tmp_path / "test.ini"
    path.write_text(f"""[app:main]
use = egg:pyramid_sumatra
sumatra.backend = sqlalchemy
sqlalchemy.url = sqlite:///{tmp_path}/cli.sqlite
""")
    return path


def run_process(ini: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """The command as a user runs it: a separate process."""
    return subprocess.run([*CLI, str(ini), *args], input=stdin, capture_output=True,
                          text=True, timeout=120)


def run(ini: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """The same entry point in this process (fast), with stdin and output captured."""
    out, err = io.StringIO(), io.StringIO()
    with patch.object(sys, "stdin", io.StringIO(stdin)), redirect_stdout(out), \
            redirect_stderr(err):
        try:
            code = main([str(ini), *args])
        except SystemExit as exc:  # argparse
            code = exc.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def settings_of(ini: Path) -> dict:
    from pyramid.paster import get_appsettings

    return resolve_settings(dict(get_appsettings(str(ini))))


def test_initdb_adduser_grant_revoke_round(ini):
    assert run_process(ini, "initdb").returncode == 0
    res = run_process(ini, "adduser", "alice", stdin="correct horse\n")
    assert res.returncode == 0, res.stderr
    assert "alice" in res.stdout
    assert run(ini, "adduser", "root", "--admin", stdin="another pw\n").returncode == 0
    assert run(ini, "users").stdout.split("\n")[:2] == ["alice", "root  (admin)"]
    assert run(ini, "load-demo").returncode == 0
    res = run(ini, "grant", "TestProject", "alice", "--role", "read")
    assert res.returncode == 0, res.stderr
    listing = run(ini, "projects").stdout
    line = next(ln for ln in listing.splitlines() if ln.startswith("TestProject\t"))
    assert "alice:read" in line and "testuser:write" in line and "4 records" in line
    assert run(ini, "revoke", "TestProject", "alice").returncode == 0
    assert "alice" not in next(ln for ln in run(ini, "projects").stdout.splitlines()
                               if ln.startswith("TestProject\t"))
    # the stored password is a hash and authenticates
    storage = build_storage(settings_of(ini))
    with transaction.manager:
        user = storage.get_user("alice")
        assert user.password_hash.startswith("$argon2")
        assert storage.authenticate("alice", "correct horse")
        assert not storage.authenticate("alice", "wrong horse")
    storage.dispose()


def test_passwd_changes_the_password(ini):
    run(ini, "adduser", "bob", stdin="first-pw\n")
    assert run(ini, "passwd", "bob", stdin="second-pw\n").returncode == 0
    storage = build_storage(settings_of(ini))
    with transaction.manager:
        assert storage.authenticate("bob", "second-pw")
        assert not storage.authenticate("bob", "first-pw")
    storage.dispose()


@pytest.mark.parametrize("args,stdin,message", [
    (["adduser", "x"], "short\n", "at least 6"),
    (["adduser", "anonymous"], "long enough\n", "reserved"),
    (["adduser", "../evil"], "long enough\n", "username"),
    (["passwd", "ghost"], "long enough\n", "no user 'ghost'"),
    (["grant", "NoSuchProject", "testuser"], "", "no project"),
    (["grant", "TestProject", "ghost"], "", "no user 'ghost'"),
    (["revoke", "TestProject", "ghost"], "", "holds no grant"),
    (["deluser", "ghost"], "", "no user"),
])
def test_clear_errors_change_nothing(ini, args, stdin, message):
    run(ini, "load-demo")
    before = run(ini, "projects").stdout + run(ini, "users").stdout
    res = run(ini, *args, stdin=stdin)
    assert res.returncode == 1
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert run(ini, "projects").stdout + run(ini, "users").stdout == before


def test_duplicate_user_is_refused(ini):
    run(ini, "adduser", "carol", stdin="first-pw\n")
    res = run(ini, "adduser", "carol", stdin="second-pw\n")
    assert res.returncode == 1 and "exists" in res.stderr


def test_unknown_backend_fails_clearly(tmp_path):
    path = tmp_path / "bad.ini"
    path.write_text("[app:main]\nuse = egg:pyramid_sumatra\nsumatra.backend = nosuch\n")
    res = run_process(path, "users")
    assert res.returncode == 2
    assert "unknown backend 'nosuch'" in res.stderr and "sqlalchemy" in res.stderr


def test_missing_config_file_fails_clearly(tmp_path):
    res = run(tmp_path / "missing.ini", "users")
    assert res.returncode == 2 and "cannot read" in res.stderr


def test_password_is_never_taken_from_argv(ini):
    res = run(ini, "adduser", "dave", "--password", "x")
    assert res.returncode == 2  # argparse: no such option


@pytest.mark.parametrize("args", [["revoke", "TestProject", "lastadmin"],
                                  ["grant", "TestProject", "lastadmin", "--role", "write"]])
def test_cli_keeps_the_last_admin(ini, args):
    run(ini, "load-demo")
    run(ini, "adduser", "lastadmin", stdin="long enough\n")
    assert run(ini, "grant", "TestProject", "lastadmin", "--role", "admin").returncode == 0
    before = run(ini, "projects").stdout
    assert "lastadmin:admin" in before and "testuser:write" in before
    res = run(ini, *args)
    assert res.returncode == 1
    assert res.stderr == (f"sumatra-server {args[0]}: 'lastadmin' is the project's only admin; "
                          "grant another admin first\n")
    assert run(ini, "projects").stdout == before
    # with a second admin, the first may go
    assert run(ini, "grant", "TestProject", "testuser", "--role", "admin").returncode == 0
    assert run(ini, *args).returncode == 0


def test_adduser_checks_the_name_before_asking_for_a_password(ini):
    with patch("pyramid_sumatra.cli.read_password") as read_password:
        res = run(ini, "adduser", "_server")
    assert res.returncode == 1 and "reserved for the server" in res.stderr
    read_password.assert_not_called()


def test_purge_empties_old_trash_for_cron(ini):
    from pyramid_sumatra.services import records as record_service

    assert run(ini, "load-demo").returncode == 0
    storage = build_storage(settings_of(ini))
    try:
        with transaction.manager:
            record_service.delete_record(storage, "TestProject", "haggling")
            record_service.delete_record(storage, "TestProject2", "20141013-172504")
    finally:
        storage.dispose()
    res = run(ini, "purge")  # the default keeps 30 days: nothing that young goes
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("purged 0 item(s)")
    res = run_process(ini, "purge", "--older-than", "0d", "--project", "TestProject")
    assert res.returncode == 0 and res.stdout.startswith("purged 1 item(s)"), res.stderr
    res = run(ini, "purge", "--older-than", "soon")
    assert res.returncode == 1 and "older-than" in res.stderr
    storage = build_storage(settings_of(ini))
    try:
        with transaction.manager:
            assert [i.label for i in storage.list_trash(None)] == ["20141013-172504"]
            assert storage.list_history("TestProject", "haggling", 10) == []
    finally:
        storage.dispose()
