"""copy / dump / load: everything moves between backends, verified, or nothing does.

The round trip goes SQLite → filesystem (copy) → PostgreSQL (dump, load) → SQLite
(copy), through the ``sumatra-server`` command line, and ends with the documents,
revisions, users and grants it started with.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import transaction
from conftest import DATA, POSTGRES

from pyramid_sumatra import build_storage, resolve_settings, transfer
from pyramid_sumatra.cli import main
from pyramid_sumatra.demo import load_demo
from pyramid_sumatra.records import build_stored_record
from pyramid_sumatra.storage.types import UserInfo


def write_ini(path: Path, **settings: str) -> str:
    lines = ["[app:main]", "use = egg:pyramid_sumatra"]
    lines += [f"{key.replace('__', '.')} = {value}" for key, value in settings.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def sqlite_ini(tmp_path: Path, name: str) -> str:
    return write_ini(tmp_path / f"{name}.ini", sumatra__backend="sqlalchemy",
                     sqlalchemy__url=f"sqlite:///{tmp_path}/{name}.sqlite")


def filesystem_ini(tmp_path: Path, name: str) -> str:
    return write_ini(tmp_path / f"{name}.ini", sumatra__backend="filesystem",
                     sumatra__filesystem__root=str(tmp_path / name))


def open_store(ini: str):
    from pyramid.paster import get_appsettings

    store = build_storage(resolve_settings(dict(get_appsettings(ini))))
    store.initialize()
    return store


def fill(ini: str) -> None:
    """The demo, every example document, an admin, a public grant, many tagged records."""
    store = open_store(ini)
    try:
        with transaction.manager:
            load_demo(store)
            store.put_user(UserInfo(username="root", password_hash="$argon2id$v=19$root",
                                    is_admin=True, created="2020-01-01 00:00:00.000001"))
            store.put_user(UserInfo(username="carol", password_hash="!external",
                                    created="2020-01-02 00:00:00.000001", source="oidc",
                                    display_name="Carol Curie", email="carol@example.org",
                                    groups=("physics-lab",), groups_seen="2026-11-30 12:00:00"))
            for path in sorted(DATA.glob("example_*.json")):
                doc = json.loads(path.read_text())
                doc["label"] = path.stem.replace(".", "_")
                store.put_record(build_stored_record("TestProject2", doc), create=True)
            for i in range(12):  # more than one page (PAGE_SIZE is lowered below)
                doc = {"label": f"run-{i:02d}", "timestamp": f"2024-02-{i + 1:02d} 08:00:00",
                       "tags": ["bulk", f"n{i % 3}"], "reason": "Ünïcode ✓ \\u0000 text",
                       "parameters": {"content": "a = 1", "type": "SimpleParameterSet"},
                       "zeta": 1, "alpha": [1.5, None, True]}
                store.put_record(build_stored_record("TestProject", doc), create=True)
    finally:
        store.dispose()


def snapshot(ini: str) -> dict:
    """Everything comparable across backends: documents (parsed), revisions, tags, grants,
    users with their source, profile and kept groups."""
    store = open_store(ini)
    try:
        with transaction.manager:
            users = {u.username: (u.password_hash, u.is_admin, u.created, u.source,
                                  u.display_name, u.email, u.groups, u.groups_seen)
                     for u in store.list_users()}
            projects = {}
            for p in store.list_projects(None):
                records = {r.label: (json.loads(r.body), r.revision, sorted(r.tags),
                                     r.timestamp)
                           for r in transfer.iter_records(store, p.id)}
                projects[p.id] = (p.name, p.description, p.record_count,
                                  store.get_grants(p.id), records)
            order = [p.id for p in store.list_projects(None)]
        return {"users": users, "projects": projects, "order": order}
    finally:
        store.dispose()


@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    monkeypatch.setattr(transfer, "PAGE_SIZE", 5)


@pytest.fixture
def postgres_ini(tmp_path):
    url = POSTGRES.create("sumatra_transfer_")
    yield write_ini(tmp_path / "pg.ini", sumatra__backend="sqlalchemy", sqlalchemy__url=url)
    POSTGRES.drop(url)


@pytest.mark.postgres
def test_round_trip_sqlite_filesystem_postgresql_sqlite(tmp_path, postgres_ini, capsys):
    source, files, final = (sqlite_ini(tmp_path, "a"), filesystem_ini(tmp_path, "fs"),
                            sqlite_ini(tmp_path, "d"))
    fill(source)
    before = snapshot(source)
    assert len(before["projects"]["TestProject"][4]) == 16

    assert main([source, "copy", files]) == 0
    assert "copied 3 users, 2 projects, 3 grants, 22 records" in capsys.readouterr().out
    dump_file = tmp_path / "backup.jsonl"
    assert main([files, "dump", str(dump_file), "--progress"]) == 0
    out, err = capsys.readouterr()
    assert "dumped" in out and "records" in err  # the progress bar, on stderr
    assert main([postgres_ini, "load", str(dump_file)]) == 0
    assert "verified" in capsys.readouterr().out
    assert main([postgres_ini, "copy", final]) == 0

    for ini in (files, postgres_ini, final):
        assert snapshot(ini) == before, ini
    # The filesystem store kept every body byte for byte; PostgreSQL (JSONB) the documents.
    a, fs = open_store(source), open_store(files)
    try:
        with transaction.manager:
            for pid in before["projects"]:
                assert ([r.body for r in transfer.iter_records(a, pid)]
                        == [r.body for r in transfer.iter_records(fs, pid)])
    finally:
        a.dispose()
        fs.dispose()


def test_dump_file_holds_everything_for_its_owner_only(tmp_path):
    source = sqlite_ini(tmp_path, "a")
    fill(source)
    dump_file = tmp_path / "out.jsonl"
    assert main([source, "dump", str(dump_file)]) == 0
    assert stat.S_IMODE(os.stat(dump_file).st_mode) == 0o600
    lines = [json.loads(line) for line in dump_file.read_text().splitlines()]
    assert lines[0]["format"] == "sumatra-server-dump" and lines[0]["version"] == 1
    kinds = [line.get("kind") for line in lines[1:]]
    assert kinds.count("user") == 3 and kinds.count("record") == 22
    assert kinds[-1] == "summary"
    assert any(line.get("password_hash", "").startswith("$argon2") for line in lines)
    assert not list(tmp_path.glob(".*.partial"))


def test_load_into_sqlite_gives_the_same_store(tmp_path):
    source, target = sqlite_ini(tmp_path, "a"), sqlite_ini(tmp_path, "b")
    fill(source)
    assert main([source, "dump", str(tmp_path / "d.jsonl")]) == 0
    assert main([target, "load", str(tmp_path / "d.jsonl")]) == 0
    assert snapshot(target) == snapshot(source)


def test_copy_refuses_a_store_that_is_not_empty(tmp_path, capsys):
    source, target = sqlite_ini(tmp_path, "a"), sqlite_ini(tmp_path, "b")
    fill(source)
    assert main([target, "load-demo"]) == 0
    before = snapshot(target)
    assert main([source, "copy", target]) == 1
    assert "not empty" in capsys.readouterr().err
    assert snapshot(target) == before


def test_copy_refuses_to_copy_a_store_onto_itself(tmp_path, capsys):
    source = sqlite_ini(tmp_path, "a")
    same = write_ini(tmp_path / "same.ini", sumatra__backend="sqlalchemy",
                     sqlalchemy__url=f"sqlite:///{tmp_path}/a.sqlite")
    assert main([source, "copy", same]) == 1
    assert "the same store" in capsys.readouterr().err


def test_an_incomplete_dump_loads_nothing(tmp_path, capsys):
    source, target = sqlite_ini(tmp_path, "a"), sqlite_ini(tmp_path, "b")
    fill(source)
    dump_file = tmp_path / "d.jsonl"
    assert main([source, "dump", str(dump_file)]) == 0
    lines = dump_file.read_text().splitlines()
    dump_file.write_text("\n".join(lines[:-1]) + "\n")  # the summary line lost
    assert main([target, "load", str(dump_file)]) == 1
    assert "incomplete" in capsys.readouterr().err
    assert snapshot(target) == {"users": {}, "projects": {}, "order": []}


def test_a_tampered_dump_fails_verification_and_loads_nothing(tmp_path, capsys):
    source, target = sqlite_ini(tmp_path, "a"), sqlite_ini(tmp_path, "b")
    fill(source)
    dump_file = tmp_path / "d.jsonl"
    assert main([source, "dump", str(dump_file)]) == 0
    items = [json.loads(line) for line in dump_file.read_text().splitlines()]
    victim = next(i for i in items if i.get("kind") == "record")
    victim["body"] = json.dumps({**json.loads(victim["body"]), "reason": "forged"})
    dump_file.write_text("".join(json.dumps(i) + "\n" for i in items))
    assert main([target, "load", str(dump_file)]) == 1
    err = capsys.readouterr().err
    assert "verification failed" in err and victim["project"] in err
    assert snapshot(target)["projects"] == {}


def test_not_a_dump(tmp_path, capsys):
    target = sqlite_ini(tmp_path, "b")
    (tmp_path / "x.jsonl").write_text('{"hello": 1}\n')
    assert main([target, "load", str(tmp_path / "x.jsonl")]) == 1
    assert "not a dump" in capsys.readouterr().err


def test_dump_to_a_missing_directory_is_a_clear_error(tmp_path, capsys):
    source = sqlite_ini(tmp_path, "a")
    assert main([source, "dump", str(tmp_path / "no" / "such" / "d.jsonl")]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_tokens_and_session_generations_move_and_still_work(tmp_path, capsys):
    from pyramid_sumatra.services import tokens

    source, files, final = (sqlite_ini(tmp_path, "a"), filesystem_ini(tmp_path, "fs"),
                            sqlite_ini(tmp_path, "d"))
    fill(source)
    store = open_store(source)
    try:
        with transaction.manager:
            _, secret = tokens.create(store, "testuser", "laptop", scope="read",
                                      expires="30d", projects=["TestProject"])
            tokens.create(store, "root", "ci")
            store.bump_session_generation("testuser")
            store.bump_session_generation("testuser")
        with transaction.manager:
            assert tokens.verify(store, "testuser", secret) is not None  # sets last_used
            expected = store.list_tokens(None)
    finally:
        store.dispose()
    assert main([source, "copy", files]) == 0
    assert "2 API tokens" in capsys.readouterr().out
    dump_file = tmp_path / "d.jsonl"
    assert main([files, "dump", str(dump_file)]) == 0
    kinds = [json.loads(line).get("kind") for line in dump_file.read_text().splitlines()]
    assert kinds.count("token") == 2 and secret not in dump_file.read_text()
    assert main([final, "load", str(dump_file)]) == 0
    for ini in (files, final):
        store = open_store(ini)
        try:
            with transaction.manager:
                assert store.list_tokens(None) == expected, ini
                assert store.get_user("testuser").session_generation == 2
                assert store.get_user("root").session_generation == 0
                assert tokens.verify(store, "testuser", secret).name == "laptop"
        finally:
            store.dispose()


def test_a_dump_made_before_tokens_still_loads(tmp_path):
    source, target = sqlite_ini(tmp_path, "a"), sqlite_ini(tmp_path, "b")
    fill(source)
    dump_file = tmp_path / "d.jsonl"
    assert main([source, "dump", str(dump_file)]) == 0
    items = [json.loads(line) for line in dump_file.read_text().splitlines()]
    del items[-1]["tokens"]  # the summary as version 0.1 wrote it
    for item in items:
        item.pop("session_generation", None)
    dump_file.write_text("".join(json.dumps(i) + "\n" for i in items))
    assert main([target, "load", str(dump_file)]) == 0
    assert snapshot(target) == snapshot(source)


def history_and_trash(ini: str) -> tuple[dict, list]:
    """Every history (entries as dicts) and every trashed item (with its body)."""
    from dataclasses import asdict

    store = open_store(ini)
    try:
        with transaction.manager:
            histories = {f"{p}/{label}": [asdict(e) for e in transfer.iter_history(
                store, p, label)] for p, label in transfer.history_keys(store)}
            items = [asdict(store.get_trash(i.project_id, i.label, i.deleted_at))
                     for i in store.list_trash(None)]
        return {k: v for k, v in histories.items() if v}, items
    finally:
        store.dispose()


def test_history_and_trash_move_with_copy_dump_and_load(tmp_path, capsys):
    from pyramid_sumatra.limits import Limits
    from pyramid_sumatra.services import projects, records
    from pyramid_sumatra.services.history import Actor

    source, files, final = (sqlite_ini(tmp_path, "a"), filesystem_ini(tmp_path, "fs"),
                            sqlite_ini(tmp_path, "d"))
    fill(source)
    store = open_store(source)
    alice = Actor("testuser", "laptop")
    try:
        with transaction.manager:
            for i in range(7):  # more than a page of history (PAGE_SIZE is 5 here)
                doc = {"label": "h", "timestamp": "2024-01-01 00:00:00", "reason": f"r{i}"}
                records.save_record(store, "TestProject", "h", doc, "v4", user="testuser",
                                    limits=Limits(10**6, 100, 100), actor=alice)
            records.delete_tagged(store, "TestProject", "n1", actor=alice)
            projects.update_project(store, store.get_project("TestProject2"),
                                    {"description": "changed"}, actor=alice)
            projects.delete_project(store, "TestProject2", actor=alice)
    finally:
        store.dispose()
    expected = history_and_trash(source)
    assert len(expected[1]) == 5  # 4 records tagged n1, 1 project
    assert len(expected[0]["TestProject/h"]) == 7
    assert main([source, "copy", files]) == 0
    assert "trashed items" in capsys.readouterr().out
    dump_file = tmp_path / "d.jsonl"
    assert main([files, "dump", str(dump_file)]) == 0
    kinds = [json.loads(line).get("kind") for line in dump_file.read_text().splitlines()]
    assert kinds.count("trash") == 5 and kinds.count("history") >= 7 + 4 + 2
    assert main([final, "load", str(dump_file)]) == 0
    assert history_and_trash(files) == expected
    assert history_and_trash(final) == expected
    # a tampered history entry fails the load's verification
    lines = dump_file.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if '"kind": "history"' in line)
    item = json.loads(lines[index])
    item["user"] = "mallory"
    lines[index] = json.dumps(item)
    dump_file.write_text("\n".join(lines) + "\n")
    assert main([sqlite_ini(tmp_path, "e"), "load", str(dump_file)]) == 1
    assert "history differs" in capsys.readouterr().err
