"""The plugin examples in examples/: installed into this venv, proven by the contract suite.

``sumatra-memory-backend`` and ``sumatra-sqlite3-backend`` (the one docs/plugins.md
builds step by step) are third-party backends: the contract suite runs against them
through their entry points, exactly as their authors would run it. ``sumatra-audit-log``
wraps the backend's hooks; the app is served with it and its log is read back.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import transaction
import webtest
from conftest import V4, basic, unavailable

import pyramid_sumatra
from pyramid_sumatra.storage.types import UserInfo

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def ensure_installed(directory: str, group: str, name: str, module: str) -> None:
    """pip install -e the example (offline, no dependencies) unless it is installed."""
    if not any(ep.name == name for ep in entry_points(group=group)):
        for isolation in (["--no-build-isolation"], []):  # the second may need an index
            done = subprocess.run(
                [sys.executable, "-m", "pip", "install", "-q", "--no-deps", *isolation,
                 "-e", str(EXAMPLES / directory)],
                capture_output=True, text=True, timeout=300)
            if done.returncode == 0:
                break
        else:
            unavailable(f"cannot pip install examples/{directory}: {done.stderr[-500:]}")
        importlib.invalidate_caches()
    try:  # an editable install made by this process is not on its sys.path yet
        importlib.import_module(module)
    except ImportError:
        sys.path.insert(0, str(EXAMPLES / directory))
        importlib.invalidate_caches()


@pytest.fixture(scope="module")
def memory_backend() -> str:
    ensure_installed("sumatra-memory-backend", "pyramid_sumatra.backends", "memory",
                     "sumatra_memory_backend")
    return "memory"


@pytest.fixture(scope="module")
def sqlite3_backend() -> str:
    ensure_installed("sumatra-sqlite3-backend", "pyramid_sumatra.backends", "sqlite3",
                     "sumatra_sqlite3_backend")
    return "sqlite3"


@pytest.fixture(scope="module")
def audit_log_plugin() -> str:
    ensure_installed("sumatra-audit-log", "pyramid_sumatra.plugins", "audit-log",
                     "sumatra_audit_log")
    return "audit-log"


def run_contract(*options: str, cwd: Path) -> subprocess.CompletedProcess:
    """The shipped contract suite in a new process, as a plugin's author runs it."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "pyramid_sumatra.storage.testing", "-q",
         "-p", "no:cacheprovider", "-rA", *options],
        cwd=cwd, capture_output=True, text=True, timeout=600)


def assert_green(done: subprocess.CompletedProcess, backend: str,
                 absent: tuple[str, ...] = ()) -> None:
    """Every test of the suite passed; none skipped, but for the optional capabilities
    the backend lacks (``absent``, e.g. "'history' and 'trash'", or "UserInfo.groups"
    for a backend that does not keep an OpenID login's groups)."""
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 90 and "failed" not in summary, summary
    skips = re.findall(r"^SKIPPED .*$", done.stdout, re.MULTILINE)
    assert all(any(f"does not implement the {what} hooks" in s
                   or f"does not keep {what}" in s for what in absent)
               for s in skips), skips
    assert bool(skips) == bool(absent), summary
    # The suite's own modules ran (no test path given), and every hook was called.
    ran = re.findall(r"^PASSED .+$", done.stdout, re.MULTILINE)
    assert len(ran) == passed
    assert all("test_contract_" in line for line in ran)
    assert f"every storage hook was called for {backend}" in done.stdout


def test_the_memory_backend_passes_the_contract_suite(memory_backend, tmp_path):
    assert_green(run_contract(f"--sumatra-backend={memory_backend}", cwd=tmp_path),
                 memory_backend)


def test_the_guides_sqlite3_backend_passes_the_contract_suite(sqlite3_backend, tmp_path):
    # The command docs/plugins.md gives, run from an empty folder.
    done = run_contract(f"--sumatra-backend={sqlite3_backend}", "--sumatra-backend-setting",
                        "sumatra.sqlite3.path={tmp_path}/db.sqlite", cwd=tmp_path)
    # The guide's backend leaves out history and trash (optional), and does not keep
    # the groups of OpenID logins (UserInfo.groups, optional): those tests skip.
    assert_green(done, sqlite3_backend, absent=("'history' and 'trash'", "UserInfo.groups"))


def test_an_unknown_entry_point_fails_clearly(tmp_path):
    done = run_contract("--sumatra-backend=no-such-backend", "--pyargs",
                        "pyramid_sumatra.storage.testing.test_contract_records",
                        "-k", "test_storage_status_is_ok", cwd=tmp_path)
    assert done.returncode != 0
    assert "unknown backend 'no-such-backend'" in done.stdout


def test_the_memory_backend_serves_the_app(memory_backend):
    app = pyramid_sumatra.main({}, **{"sumatra.backend": memory_backend,
                                      "sumatra.load_demo": "true"})
    testapp = webtest.TestApp(app)
    doc = {"label": "m1", "timestamp": "2024-01-01 10:00:00", "tags": ["x"]}
    testapp.put("/TestProject/m1/", json.dumps(doc),
                headers={**basic(), "Content-Type": V4.format("record")}, status=201)
    assert testapp.get("/TestProject/m1/", headers=basic()).json == {
        **doc, "project_id": "TestProject"}
    assert len(testapp.get("/TestProject/", headers=basic()).json["records"]) == 5


def test_the_sqlite3_backend_serves_the_app(sqlite3_backend, tmp_path):
    path = tmp_path / "var" / "sumatra.sqlite"  # the folder is made by initdb
    app = pyramid_sumatra.main({}, **{"sumatra.backend": sqlite3_backend,
                                      "sumatra.sqlite3.path": str(path),
                                      "sumatra.initdb": "true", "sumatra.load_demo": "true"})
    testapp = webtest.TestApp(app)
    doc = {"label": "s1", "timestamp": "2024-01-01 10:00:00", "tags": ["x"]}
    testapp.put("/TestProject/s1/", json.dumps(doc),
                headers={**basic(), "Content-Type": V4.format("record")}, status=201)
    assert testapp.get("/TestProject/s1/", headers=basic()).json == {
        **doc, "project_id": "TestProject"}
    assert len(testapp.get("/TestProject/", headers=basic()).json["records"]) == 5
    assert testapp.get("/_ready").json["ok"] is True
    assert path.stat().st_size > 0


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_audit_log_notes_every_committed_write(audit_log_plugin, app_settings, demo,
                                                   tmp_path):
    log = tmp_path / "audit" / "log.jsonl"
    app = pyramid_sumatra.main({}, **{**app_settings, "sumatra.plugins": audit_log_plugin,
                                      "sumatra.audit_log.path": str(log)})
    storage = app.registry["sumatra.storage"]
    testapp = webtest.TestApp(app)
    headers = {**basic(), "Content-Type": V4.format("record")}
    try:
        doc = {"label": "a1", "timestamp": "2024-01-01 10:00:00", "tags": ["x"]}
        testapp.put("/Audited/a1/", json.dumps(doc), headers=headers, status=201)
        testapp.put("/Audited/a1/", json.dumps({**doc, "outcome": "ok"}), headers=headers,
                    status=200)
        testapp.put("/Audited/a2/", "{not json", headers=headers, status=400)
        with transaction.manager:  # the command line's way: no request, no "by"
            storage.put_user(UserInfo(username="carol", password_hash="$argon2id$secret"))
        testapp.post_json("/Audited/permissions/", {"user": "carol"}, headers=basic())
        testapp.delete("/Audited/a1/", headers=basic(), status=204)
        with pytest.raises(RuntimeError):  # an aborted transaction leaves no line
            with transaction.manager:
                storage.delete_user("carol")
                raise RuntimeError("abort")
    finally:
        storage.dispose()

    entries = read_log(log)
    assert [e["action"] for e in entries] == [
        "put_project", "set_grant", "put_record",  # the first PUT creates the project
        "put_record", "put_user", "set_grant", "delete_record"]
    project, creator, first, second, user, grant, deleted = entries
    assert (project["project"], project["created"], project["by"]) == ("Audited", True,
                                                                       "testuser")
    assert (creator["principal"], creator["role"]) == ("testuser", "admin")
    assert (first["project"], first["label"], first["created"], first["by"]) == (
        "Audited", "a1", True, "testuser")
    assert second["created"] is False and second["revision"] != first["revision"]
    assert user == {**user, "user": "carol", "created": True} and "by" not in user
    assert (grant["principal"], grant["by"]) == ("carol", "testuser")
    assert deleted["label"] == "a1"
    assert "argon2" not in log.read_text()
