"""Helpers for the tests that drive the real Sumatra 0.8.1 client against a live server.

The server's own JSON is read here with plain urllib (no cache, Basic auth sent up
front), so a test can check what the server stored independently of the client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import basic, load_example, served, unavailable
from sumatra.recordstore import serialization

ACCEPT_JSON = "application/json"


def server_json(base_url: str, path: str, *, auth: bool = True, query: str = "",
                user: tuple[str, str] | None = None) -> Any:
    """GET ``path`` (relative to the server root) as JSON; raise HTTPError on a 4xx/5xx.

    Sends testuser's credentials up front unless ``auth`` is false or ``user`` names others.
    """
    url = base_url + path + (f"?{query}" if query else "")
    credentials = basic(*user) if user else basic() if auth else {}
    headers = {"Accept": ACCEPT_JSON, **credentials}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as res:
        return json.loads(res.read())


def server_status(base_url: str, path: str, *, auth: bool = True) -> int:
    """Status of a GET of ``path`` (200, 401, 404, ...)."""
    try:
        server_json(base_url, path, auth=auth)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


def record_labels(base_url: str, project: str, tags: str | None = None) -> list[str]:
    """Labels of a project's records as the server lists them (newest first)."""
    doc = server_json(base_url, f"{project}/", query=f"tags={tags}" if tags else "")
    prefix = f"{base_url}{project}/"
    assert all(url.startswith(prefix) and url.endswith("/") for url in doc["records"]), doc
    return [url[len(prefix):-1] for url in doc["records"]]


def example_document(label: str, *, minutes: int = 0, tags: list[str] | None = None,
                     version: str = "0.7") -> dict:
    """An old Sumatra record document relabelled, its timestamp ``minutes`` after a base."""
    doc = load_example(f"example_{version}.json")
    doc["label"] = label
    base = datetime(2024, 1, 31, 10, 0, 0, tzinfo=UTC)
    doc["timestamp"] = (base + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S%z")
    if tags is not None:
        doc["tags"] = tags
    return doc


def example_record(label: str, **kw):
    """A real ``sumatra.records.Record`` built by sumatra's own decoder."""
    return serialization.build_record(example_document(label, **kw))


def encoded(record) -> dict:
    """The document the 0.8.1 client sends for ``record``."""
    return json.loads(serialization.encode_record(record))


def served_record(record, project: str) -> dict:
    """What the server sends back for the client's ``record`` (it has no ``project_id``)."""
    return served(encoded(record), project)


# -- the smt command line in a git working copy ----------------------------------------

# Imports only ``sys``: smt scans the script's imports for dependencies with
# modulefinder, which costs seconds per imported standard-library package.
MAIN_PY = '''\
import sys

params = {}
for line in open(sys.argv[1]):
    if "=" in line:
        key, value = line.split("=", 1)
        params[key.strip()] = value.strip()
with open("Data/result.txt", "w") as f:
    f.write("answer %s\\n" % params["n"])
print("hello from main.py, n=%s" % params["n"])
'''


def smt_env(home: Path) -> dict[str, str]:
    """An environment for ``smt`` and ``git``: own HOME, fixed identity, no proxies."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HOME=str(home), NO_PROXY="127.0.0.1,localhost", GIT_AUTHOR_NAME="Test Runner",
               GIT_AUTHOR_EMAIL="runner@example.com", GIT_COMMITTER_NAME="Test Runner",
               GIT_COMMITTER_EMAIL="runner@example.com", GIT_CONFIG_NOSYSTEM="1")
    return env


def make_git_project(repo: Path, env: dict[str, str]) -> str:
    """A git working copy holding main.py and default.param; returns the commit id."""
    (repo / "Data").mkdir(parents=True)  # smt's default datapath, where main.py writes
    (repo / "main.py").write_text(MAIN_PY)
    (repo / "default.param").write_text("n = 42\n")
    (repo / ".gitignore").write_text(".smt/\n.cache/\nData/\n*.param\n!default.param\n")
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "a small analysis"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    return git_head(repo, env)


def smt_workspace(tmp_path: Path) -> tuple[Path, dict[str, str], str]:
    """(repo, env, commit id): a committed git working copy for smt and an isolated HOME;
    a missing smt or GitPython fails under CI, skips elsewhere."""
    if not Path(sys.executable).with_name("smt").exists():
        unavailable("the smt command (PyPI sumatra) is not installed in this environment")
    try:
        import git  # noqa: F401  (smt reads the working copy through GitPython)
    except ImportError:
        unavailable("smt needs GitPython to record a git working copy: pip install sumatra[git]")
    home = tmp_path / "home"
    home.mkdir()
    env = smt_env(home)
    repo = tmp_path / "repo"
    return repo, env, make_git_project(repo, env)


def git_head(repo: Path, env: dict[str, str]) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


class Smt:
    """Runs the installed ``smt`` in one working copy."""

    def __init__(self, repo: Path, env: dict[str, str]):
        self.repo, self.env = repo, env
        self.path = Path(sys.executable).with_name("smt")

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([str(self.path), *args], cwd=self.repo, env=self.env,
                              capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"smt {' '.join(args)} failed ({done.returncode}):\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done
