"""The real ``smt`` command line (Sumatra 0.8.1, unchanged) against a live server.

Each test makes a git working copy with a small script, points ``smt init
--store=http://user:pass@host:port/`` at the live server, and checks the server's
own JSON after every command.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clienthelp import (
    Smt,
    record_labels,
    server_json,
    server_status,
    smt_workspace,
)
from conftest import unique


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, dict[str, str], str]:
    """(repo, env, commit id): a committed git working copy and an isolated HOME."""
    return smt_workspace(tmp_path)


@pytest.fixture
def smt(live_server, workspace) -> Smt:
    """``smt`` in a project initialised against the live server; its name is ``smt.project``."""
    repo, env, _ = workspace
    run = Smt(repo, env)
    run.project = unique("smt")
    store = live_server.url.replace("http://", "http://testuser:abc123@", 1)
    run("init", f"--store={store}", "--main=main.py", f"--executable={sys.executable}",
        run.project)
    return run


def record(live_server, smt: Smt, label: str) -> dict:
    return server_json(live_server.url, f"{smt.project}/{label}/")


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def wait_for_next_second(timestamp: str) -> None:
    """Labels of later runs must sort later: timestamps have one-second resolution."""
    while time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()) <= timestamp[:19]:
        time.sleep(0.05)


def test_run_comment_tag_and_list(live_server, smt, workspace):
    repo, _, head = workspace
    url, name = live_server.url, smt.project
    assert server_status(url, f"{name}/") == 404  # smt init only asks whether it exists
    smt("configure", "--on-changed=store-diff")

    # smt run: one PUT when it starts, more as it goes, the last with the results.
    out = smt("run", "--label=first", "--reason=try n=7", "--tag=trial", "default.param", "n=7")
    assert "hello from main.py, n=7" in out.stdout
    project = server_json(url, f"{name}/")
    assert project["access"] == ["testuser"]
    assert project["records"] == [f"{url}{name}/first/"]
    first = record(live_server, smt, "first")
    assert first["label"] == "first"
    assert first["reason"] == "try n=7"
    assert first["main_file"] == "main.py"
    assert first["version"] == head and first["diff"] == ""
    assert first["repository"]["type"] == "GitRepository"
    assert Path(first["repository"]["url"]).resolve() == repo.resolve()
    assert first["executable"]["path"] == sys.executable
    assert first["executable"]["name"] == "Python"
    assert first["parameters"] == {"content": "n = 7", "type": "SimpleParameterSet"}
    assert first["script_arguments"] == "<parameters>"
    assert sorted(first["tags"]) == ["_finished_", "trial"]
    # The results of the run arrived (the old server dropped them on the second PUT).
    assert isinstance(first["duration"], float) and first["duration"] > 0
    assert "hello from main.py, n=7" in first["stdout_stderr"]
    [output] = first["output_data"]
    assert output["path"] == "result.txt"
    assert output["digest"] == sha1("answer 7\n") == sha1(
        (repo / "Data" / "result.txt").read_text())
    assert output["metadata"]["size"] == len("answer 7\n")
    assert output["creation"]

    # A run with an uncommitted change: store-diff records the diff.
    wait_for_next_second(first["timestamp"])
    (repo / "main.py").write_text((repo / "main.py").read_text() + "# changed\n")
    smt("run", "--label=second", "default.param")
    second = record(live_server, smt, "second")
    assert second["version"] == head and "+# changed" in second["diff"]
    assert second["parameters"]["content"] == "n = 42"
    assert second["output_data"][0]["digest"] == sha1("answer 42\n")
    assert record_labels(url, name) == ["second", "first"]
    assert server_json(url, f"{name}/last/")["label"] == "second"

    # smt comment: the most recent record unless a label is given; appends by default.
    smt("comment", "looks right")
    smt("comment", "checked twice")
    smt("comment", "first", "the baseline")
    assert record(live_server, smt, "second")["outcome"] == "looks right\nchecked twice"
    assert record(live_server, smt, "first")["outcome"] == "the baseline"
    smt("comment", "--replace", "first", "superseded")
    assert record(live_server, smt, "first")["outcome"] == "superseded"

    # smt tag: given labels, or the most recent; -r removes.
    smt("tag", "keep", "first", "second")
    smt("tag", "drop")
    smt("tag", "--remove", "trial", "first")
    assert sorted(record(live_server, smt, "first")["tags"]) == ["_finished_", "keep"]
    assert sorted(record(live_server, smt, "second")["tags"]) == ["_finished_", "drop", "keep"]
    assert record_labels(url, name, tags="keep") == ["second", "first"]
    assert record_labels(url, name, tags="drop") == ["second"]
    assert record_labels(url, name, tags="trial") == []

    # Results and annotations survived every later PUT.
    after = record(live_server, smt, "first")
    for key in ("duration", "stdout_stderr", "output_data", "version", "parameters"):
        assert after[key] == first[key], key

    # smt list: newest first, filtered by a tag, long form.
    assert smt("list").stdout.split() == ["second", "first"]
    assert smt("list", "drop").stdout.split() == ["second"]
    long = smt("list", "-l").stdout
    assert long.index("Label            : second") < long.index("Label            : first")
    assert "Outcome          : superseded" in long
    assert "Reason           : try n=7" in long
    assert "Tags             : " in long and "keep" in long


def test_second_machine_and_delete_by_label_by_tag_and_last(live_server, smt, workspace,
                                                            tmp_path):
    url, name = live_server.url, smt.project
    timestamp = ""
    for label, extra in (("a", []), ("b", ["--tag=drop"]), ("c", [])):
        if timestamp:
            wait_for_next_second(timestamp)
        smt("run", f"--label={label}", *extra, "default.param", f"n={label}")
        timestamp = record(live_server, smt, label)["timestamp"]
    assert record_labels(url, name) == ["c", "b", "a"]

    # Another working copy (a colleague's machine) joins the same server project.
    repo, env, _ = workspace
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], env=env, check=True)
    colleague = Smt(clone, env)
    store = url.replace("http://", "http://testuser:abc123@", 1)
    colleague("init", f"--store={store}", "--main=main.py", name)
    assert (clone / ".smt" / "labels").read_text().split() == ["c", "b", "a"]
    assert colleague("list").stdout.split() == ["c", "b", "a"]

    out = smt("delete", "--tag", "drop")
    assert "1 records deleted." in out.stdout
    assert record_labels(url, name) == ["c", "a"]
    assert server_status(url, f"{name}/b/") == 404
    assert "0 records deleted." in smt("delete", "--tag", "nothing").stdout
    assert colleague("list").stdout.split() == ["c", "a"]  # what one deletes, all see

    smt("delete", "a")
    assert record_labels(url, name) == ["c"]
    assert server_status(url, f"{name}/a/") == 404

    # "last" is the most recent record. Deleting it empties the project, which stays;
    # smt then asks for last/ (404) and wrongly warns that the delete failed (a
    # 0.8.1 client quirk, the same with its own Django store).
    done = smt("delete", "last")
    assert "Could not delete record 'c'" in done.stdout
    assert server_status(url, f"{name}/c/") == 404
    project = server_json(url, f"{name}/")
    assert project["records"] == [] and project["access"] == ["testuser"]
    assert server_status(url, f"{name}/last/") == 404
    assert smt("list").stdout.strip() == ""
