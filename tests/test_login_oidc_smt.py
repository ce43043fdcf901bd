"""The real ``smt`` (Sumatra 0.8.1, unchanged) with a personal API token created after an
OpenID Connect login: the 0.8.1 client cannot do OpenID Connect, so this is its way in;
group grants apply to it through the groups of that login."""

from __future__ import annotations

import re
import sys
import urllib.error
from pathlib import Path

import pytest
from clienthelp import Smt, server_json, smt_workspace
from conftest import unique
from oidcprovider import (  # noqa: F401 - provider, oidc_app_settings: fixtures
    CALLBACK,
    log_in_at_provider,
    oidc_app_settings,
    provider,
)

JSON = {"Accept": "application/json"}


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path, env, _ = smt_workspace(tmp_path)
    return path, env


def token_after_oidc_login(testapp, login: str = "carol") -> str:
    authorize = testapp.get("/_login/oidc", status=303).location
    callback = log_in_at_provider(authorize, login, CALLBACK)
    testapp.get(callback[len("http://localhost"):], status=303)
    page = testapp.get("/_tokens", headers={"Accept": "text/html"}).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return testapp.post("/_tokens/create", {"name": "laptop", "scope": "write",
                                            "expires": "", "projects": "",
                                            "csrf_token": csrf}, headers=JSON).json["token"]


def test_smt_with_a_token_made_after_an_oidc_login(testapp, live_server, repo):
    secret = token_after_oidc_login(testapp)
    path, env = repo
    url, project = live_server.url, unique("oidc")
    run = Smt(path, env)
    store = url.replace("http://", f"http://carol:{secret}@", 1)
    run("init", f"--store={store}", "--main=main.py", f"--executable={sys.executable}", project)
    out = run("run", "--label=first", "--reason=by oidc token", "default.param", "n=3")
    assert "hello from main.py, n=3" in out.stdout
    assert run("list").stdout.split() == ["first"]
    assert server_json(url, f"{project}/first/", user=("carol", secret))["reason"] == \
        "by oidc token"
    for wrong in (secret[:-3] + "xyz", "smt_" + "0" * 12 + "_" + "x" * 43):
        with pytest.raises(urllib.error.HTTPError) as refused:
            server_json(url, f"{project}/", user=("carol", wrong))
        assert refused.value.code == 401


def test_smt_writes_where_only_a_group_grant_lets_an_oidc_user(testapp, live_server, repo,
                                                                lab):
    """The lab is granted to group:physics-lab alone: the token carries the groups of
    Carol's browser login (without them smt was refused there)."""
    secret = token_after_oidc_login(testapp)
    path, env = repo
    url = live_server.url
    run = Smt(path, env)
    store = url.replace("http://", f"http://carol:{secret}@", 1)
    run("init", f"--store={store}", "--main=main.py", f"--executable={sys.executable}", lab)
    run("run", "--label=grouped", "--reason=through the group", "default.param", "n=2")
    assert server_json(url, f"{lab}/grouped/", user=("carol", secret))["reason"] == \
        "through the group"
