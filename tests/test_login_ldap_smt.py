"""The real ``smt`` (Sumatra 0.8.1, unchanged) as a directory user: HTTP Basic → LDAP bind.

``smt init --store=http://ada:ada-pw@host/`` creates the project as ada (a user nobody
added: the first request adds it from the directory), records and lists; bob, whose
directory group holds a grant, then reads it with smt's credentials too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import transaction
from clienthelp import Smt, server_json, smt_workspace
from conftest import unique
from ldapserver import ldap_app_settings, slapd  # noqa: F401 - fixtures


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path, env, _ = smt_workspace(tmp_path)
    return path, env


def test_smt_as_a_directory_user(live_server, storage, repo):
    path, env = repo
    url, project = live_server.url, unique("ldap")
    run = Smt(path, env)
    store = url.replace("http://", "http://ada:ada-pw@", 1)
    run("init", f"--store={store}", "--main=main.py", f"--executable={sys.executable}", project)
    out = run("run", "--label=first", "--reason=as ada", "default.param", "n=3")
    assert "hello from main.py, n=3" in out.stdout
    assert run("list").stdout.split() == ["first"]
    assert server_json(url, f"{project}/first/", user=("ada", "ada-pw"))["reason"] == "as ada"
    with transaction.manager:
        assert storage.get_user("ada").source == "ldap"
        assert storage.get_grants(project) == {"ada": "admin"}
        storage.set_grant(project, "group:staff", "read")
    assert server_json(url, f"{project}/first/", user=("bob", "bob-pw"))["label"] == "first"
