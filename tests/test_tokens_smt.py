"""The real ``smt`` (Sumatra 0.8.1, unchanged) with a personal API token as its password.

``smt init --store=http://testuser:smt_…@host/``: httplib2 sends the token as the
Basic password after the server's 401, like a password.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import transaction
from clienthelp import Smt, make_git_project, record_labels, server_json, smt_env
from conftest import unavailable, unique

from pyramid_sumatra.services import tokens


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    if not Path(sys.executable).with_name("smt").exists():
        unavailable("the smt command (PyPI sumatra) is not installed in this environment")
    try:
        import git  # noqa: F401  (smt reads the working copy through GitPython)
    except ImportError:
        unavailable("smt needs GitPython to record a git working copy: pip install sumatra[git]")
    home = tmp_path / "home"
    home.mkdir()
    env = smt_env(home)
    path = tmp_path / "repo"
    make_git_project(path, env)
    return path, env


def new_token(storage, name: str, **kw) -> str:
    with transaction.manager:
        return tokens.create(storage, "testuser", name, **kw)[1]


def init(run: Smt, url: str, secret: str, project: str) -> None:
    store = url.replace("http://", f"http://testuser:{secret}@", 1)
    run("init", f"--store={store}", "--main=main.py", f"--executable={sys.executable}", project)


def test_smt_with_write_and_read_tokens(live_server, storage, repo):
    path, env = repo
    url, project = live_server.url, unique("tok")
    run = Smt(path, env)
    init(run, url, new_token(storage, "laptop"), project)
    out = run("run", "--label=first", "--reason=by token", "default.param", "n=3")
    assert "hello from main.py, n=3" in out.stdout
    assert record_labels(url, project) == ["first"]
    assert server_json(url, f"{project}/first/")["reason"] == "by token"
    assert run("list").stdout.split() == ["first"]
    with transaction.manager:
        [entry] = storage.list_tokens("testuser")
    assert entry.last_used is not None

    # A read token (a colleague's working copy): smt lists, but a run cannot store (403).
    clone = path.parent / "clone"
    subprocess.run(["git", "clone", "-q", str(path), str(clone)], env=env, check=True)
    run = Smt(clone, env)
    init(run, url, new_token(storage, "reader", scope="read"), project)
    assert run("list").stdout.split() == ["first"]
    refused = run("run", "--label=second", "default.param", check=False)
    assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr
    assert record_labels(url, project) == ["first"]

    # Revoked: at once, smt gets 401.
    with transaction.manager:
        tokens.revoke(storage, "testuser", "reader")
    done = run("list", check=False)
    assert done.returncode != 0 and "401" in done.stdout + done.stderr
