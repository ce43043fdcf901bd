"""The filesystem backend beyond the contract suite: files, transactions, processes, repair."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from pathlib import Path

import pytest
import transaction

from pyramid_sumatra import build_storage, resolve_settings
from pyramid_sumatra.cli import main as cli
from pyramid_sumatra.records import build_stored_record
from pyramid_sumatra.retry import backoff
from pyramid_sumatra.storage import Storage
from pyramid_sumatra.storage.plugins import PluginError
from pyramid_sumatra.storage.types import ProjectInfo, RecordQuery, StorageConflict, UserInfo
from pyramid_sumatra_backends.filesystem import codec, indexlog, journal
from pyramid_sumatra_backends.filesystem.paths import Layout, UnsafeName


def open_store(root: Path) -> Storage:
    store = build_storage(resolve_settings({"sumatra.backend": "filesystem",
                                            "sumatra.filesystem.root": str(root)}))
    store.initialize()
    return store


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def fs(root: Path):
    store = open_store(root)
    with transaction.manager:
        store.put_project(ProjectInfo(id="P", name="P"))
    yield store
    store.dispose()


def rec(label: str, project: str = "P", **fields):
    doc = {"label": label, "timestamp": "2024-01-01 10:00:00", **fields}
    return build_stored_record(project, doc)


def put(store: Storage, *records, create: bool = True) -> None:
    with transaction.manager:
        for r in records:
            store.put_record(r, create=create)


def files_under(root: Path) -> set[str]:
    """The store's files but lock files and applied journals (kept until a checkpoint)."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
            and ".locks" not in p.parts and not p.name.endswith(journal.APPLIED)}


def index_of(root: Path, project: str = "P") -> dict:
    """The index as a reader finds it (index.json and its log), entries as dicts."""
    found = indexlog.read(Layout(root), project)
    return {} if found is None else {label: codec.entry_dict(e) for label, e in found[1].items()}


def check(store: Storage, repair: bool = False) -> dict:
    with transaction.manager:
        return store.check(repair=repair)


# -- layout ------------------------------------------------------------------


def test_a_missing_root_setting_is_a_clear_start_up_error(monkeypatch):
    monkeypatch.delenv("SUMATRA_FILESYSTEM_ROOT", raising=False)
    with pytest.raises(PluginError, match="sumatra.filesystem.root"):
        build_storage(resolve_settings({"sumatra.backend": "filesystem"}))



def test_record_files_keep_flat_parameters_and_older_files_still_read(fs, root):
    from pyramid_sumatra.query import parse

    put(fs, rec("r1", parameters={"type": "SimpleParameterSet", "content": "tau = 5\nd = 'u'"}),
        rec("r2", parameters={"type": "JSONParameterSet", "content": '{"tau": 1}'}))
    path = root / "projects/P/records/r1.json"
    envelope = json.loads(path.read_text())
    assert envelope["parameters"] == {"tau": 5, "d": "u"}
    del envelope["parameters"]  # as written before the parameters were kept
    path.write_text(json.dumps(envelope, indent=2))
    with transaction.manager:
        old = fs.get_record("P", "r1")
        assert old.parameters is None  # not kept: the app parses the body
        assert fs.get_record("P", "r2").parameters == {"tau": 1}
        found = fs.search_records("P", RecordQuery(), parse("params.tau >= 2"))
    assert [r.label for r in found.records] == ["r1"]


def test_layout_is_readable_json_files(fs, root):
    with transaction.manager:
        fs.put_user(UserInfo(username="alice", password_hash="h"))
        fs.set_grant("P", "alice", "admin")
    put(fs, rec("r1", tags=["a", "b"], reason="why", executable={"name": "python"}))
    assert files_under(root) == {"users.json", "projects/P/project.json", "projects/P/index.json",
                                 "projects/P/index.log", "projects/P/records/r1.json"}
    text = (root / "projects/P/records/r1.json").read_text()
    assert '\n  "document": {\n    "label": "r1",' in text  # indented: diff-able
    envelope = json.loads(text)
    assert envelope["document"]["executable"] == {"name": "python"}
    assert envelope["index"]["tags"] == ["a", "b"]
    project = json.loads((root / "projects/P/project.json").read_text())
    assert project["grants"] == {"alice": "admin"} and project["record_count"] == 1
    assert index_of(root)["r1"]["reason"] == "why"
    assert "alice" in json.loads((root / "users.json").read_text())


def test_kept_groups_are_optional_keys_of_a_users_json_entry(fs, root):
    """Entries written before 0.2.0's kept groups read as none kept; only a user an OpenID
    login kept groups for gains the keys."""
    with transaction.manager:
        fs.put_user(UserInfo(username="ada", password_hash="!external", source="ldap"))
        fs.put_user(UserInfo(username="carol", password_hash="!external", source="oidc",
                             groups=("physics-lab",), groups_seen="2026-11-30 12:00:00"))
    doc = json.loads((root / "users.json").read_text())
    assert "groups" not in doc["ada"] and "groups_seen" not in doc["ada"]
    assert (doc["carol"]["groups"], doc["carol"]["groups_seen"]) == (
        ["physics-lab"], "2026-11-30 12:00:00")
    old = {"password_hash": "!external", "is_admin": False, "created": "2026-01-01",
           "session_generation": 0, "source": "oidc", "display_name": "", "email": ""}
    assert codec.to_users({"erin": old})["erin"].groups is None
    assert codec.to_users({"erin": {**old, "groups": "physics-lab"}})["erin"].groups is None


def test_a_body_not_in_canonical_form_comes_back_byte_for_byte(fs):
    record = rec("r1")
    record.body = '{"label": "r1",   "timestamp": "2024-01-01 10:00:00", "x": 1.50}'
    put(fs, record)
    with transaction.manager:
        assert fs.get_record("P", "r1").body == record.body


def test_canonical_bodies_with_unicode_and_numbers_round_trip(fs):
    record = rec("r1", reason="naïve ✓", duration=1e-7, parameters={"big": 2**70, "f": 0.1})
    put(fs, record)
    fs.dispose()
    with transaction.manager:
        stored = fs.get_record("P", "r1")
    assert stored.body == record.body and stored.revision == record.revision


# -- transactions --------------------------------------------------------------


def test_abort_leaves_nothing(fs, root):
    before = files_under(root)
    txn = transaction.begin()
    fs.put_project(ProjectInfo(id="Q"))
    fs.put_record(rec("r1", project="Q"), create=True)
    fs.put_record(rec("r2"), create=True)
    fs.put_user(UserInfo(username="bob", password_hash="h"))
    txn.abort()
    assert files_under(root) == before
    with transaction.manager:
        assert fs.get_project("Q") is None and fs.get_record("P", "r2") is None
        assert fs.get_user("bob") is None


def test_an_error_at_commit_of_another_manager_leaves_nothing(fs, root):
    before = files_under(root)

    class Failing:
        transaction_manager = transaction.manager

        def sortKey(self):
            return "zzz"  # votes after the filesystem

        def tpc_vote(self, txn):
            raise RuntimeError("the other resource said no")

        abort = tpc_begin = commit = tpc_finish = tpc_abort = lambda self, txn: None

    with pytest.raises(RuntimeError), transaction.manager as txn:
        fs.put_record(rec("r1"), create=True)
        txn.join(Failing())
    assert files_under(root) == before


def test_reads_in_the_transaction_see_its_writes_and_others_do_not(fs):
    seen_elsewhere = []

    def other_thread():
        with transaction.manager:
            seen_elsewhere.append((fs.get_record("P", "r1"), fs.get_project("P").record_count))

    with transaction.manager:
        fs.put_record(rec("r1", tags=["t", "a"]), create=True)
        assert fs.get_record("P", "r1").tags == ["a", "t"]  # sorted, as when committed
        assert fs.query_records("P", RecordQuery(with_body=True)).records[0].tags == ["a", "t"]
        assert fs.get_project("P").record_count == 1
        assert [r.label for r in fs.query_records("P", RecordQuery(tags=["t"])).records] == ["r1"]
        assert fs.most_recent_record("P").label == "r1"
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert seen_elsewhere == [(None, 0)]
        fs.delete_record("P", "r1")
        assert fs.get_record("P", "r1") is None and fs.get_project("P").record_count == 0
        fs.put_record(rec("r1", reason="again"), create=True)
    with transaction.manager:
        assert fs.get_record("P", "r1").reason == "again"
        assert fs.get_project("P").record_count == 1


def test_labels_only_pages_give_labels_in_order(fs):
    put(fs, rec("a", timestamp="2024-01-01 10:00:00"), rec("b", timestamp="2024-01-02 10:00:00"),
        rec("c", timestamp="2024-01-03 10:00:00"))
    with transaction.manager:
        page = fs.query_records("P", RecordQuery(labels_only=True, limit=2))
        rest = fs.query_records("P", RecordQuery(labels_only=True, cursor=page.next_cursor))
    assert (page.labels, page.total, rest.labels) == (["c", "b"], 3, ["a"])


@pytest.mark.parametrize("order", ["-timestamp", "timestamp"])
@pytest.mark.parametrize("limit", [None, 1, 3, 7])
def test_presorted_pages_equal_sorted_pages(order, limit):
    import random

    from pyramid_sumatra.storage.query import select_entries
    from pyramid_sumatra_backends.filesystem.disk import IndexState

    rng = random.Random(limit)
    state = IndexState({f"r{i:02d}": {"timestamp": f"2024-01-0{rng.randint(1, 3)} 10:00:00"}
                        for i in range(20)})
    state.by_time  # noqa: B018 - sorted once, then kept up to date by updated()
    state = state.updated({"r05": {"timestamp": "2024-01-02 10:00:00"},
                           "new": {"timestamp": "2024-01-01 10:00:00"}}, ["r07"])
    assert state.by_time == [k for _, k in sorted((e["timestamp"], k)
                                                  for k, e in state.entries.items())]
    pages = {True: [], False: []}
    for presorted in pages:
        cursor = None
        while True:
            query = RecordQuery(order=order, limit=limit, cursor=cursor)
            page, cursor, total = select_entries(state.entries, query,
                                                 (lambda: state.by_time) if presorted else None)
            pages[presorted].append(([label for label, _ in page], total))
            if cursor is None:
                break
    assert pages[True] == pages[False]
    assert sum(len(labels) for labels, _ in pages[True]) == 20


def test_a_savepoint_rolls_staged_writes_back(fs):
    with transaction.manager as txn:
        fs.put_record(rec("kept"), create=True)
        savepoint = txn.savepoint()
        fs.put_record(rec("dropped"), create=True)
        fs.delete_record("P", "kept")
        savepoint.rollback()
        assert fs.get_record("P", "dropped") is None and fs.get_record("P", "kept")
    with transaction.manager:
        assert [r.label for r in fs.query_records("P").records] == ["kept"]


def test_delete_project_then_recreate_in_one_transaction(fs, root):
    put(fs, rec("old"))
    with transaction.manager:
        assert fs.delete_project("P")
        assert fs.get_project("P") is None
        assert fs.put_project(ProjectInfo(id="P", name="new"))
        fs.put_record(rec("new"), create=True)
        assert [r.label for r in fs.query_records("P").records] == ["new"]
    with transaction.manager:
        assert fs.get_project("P").name == "new"
        assert [r.label for r in fs.query_records("P").records] == ["new"]
    assert not (root / "projects/P/records/old.json").exists()
    assert check(fs)["problems"] == []


def test_a_concurrent_create_of_the_same_label_is_a_conflict(fs):
    staged = threading.Event()
    committed = threading.Event()
    errors = []

    def slow_writer():
        try:
            with transaction.manager:
                fs.put_record(rec("same", reason="slow"), create=True)
                staged.set()
                committed.wait(5)
        except StorageConflict as exc:
            errors.append(exc)

    thread = threading.Thread(target=slow_writer)
    thread.start()
    staged.wait(5)
    put(fs, rec("same", reason="fast"))
    committed.set()
    thread.join()
    assert len(errors) == 1
    with transaction.manager:
        assert fs.get_record("P", "same").reason == "fast"


def test_an_update_based_on_a_stale_read_is_a_conflict(fs):
    put(fs, rec("r", reason="v1"))
    read = threading.Event()
    written = threading.Event()
    errors = []

    def stale_writer():
        try:
            with transaction.manager:
                stored = fs.get_record("P", "r")
                read.set()
                written.wait(5)
                fs.put_record(rec("r", reason=stored.reason + "+stale"), create=False)
        except StorageConflict as exc:
            errors.append(exc)

    thread = threading.Thread(target=stale_writer)
    thread.start()
    read.wait(5)
    put(fs, rec("r", reason="v2"), create=False)
    written.set()
    thread.join()
    assert len(errors) == 1
    with transaction.manager:
        assert fs.get_record("P", "r").reason == "v2"


def _process_writer(root: str, worker: int, count: int) -> None:
    store = open_store(Path(root))
    for i in range(count):
        for n, attempt in enumerate(transaction.manager.attempts(20)):
            if n:  # the app's pause before a replay: replaying at once, the two writers
                backoff(n - 1)  # can stay in step and one lose every round (seen once)
            with attempt:
                store.put_record(rec(f"w{worker}-{i:03d}", tags=[f"w{worker}"]), create=True)
                shared = store.get_record("P", "counter")
                n = json.loads(shared.body)["n"] if shared else 0
                store.put_record(rec("counter", outcome=str(n + 1), n=n + 1),
                                 create=shared is None)
    store.dispose()


def test_two_processes_write_one_project_without_losing_anything(fs, root):
    count = 25
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_process_writer, args=(str(root), w, count)) for w in (1, 2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    with transaction.manager:
        page = fs.query_records("P", RecordQuery(with_body=True))
        assert page.total == 2 * count + 1
        assert fs.get_project("P").record_count == 2 * count + 1
        counter = fs.get_record("P", "counter")
    assert json.loads(counter.body)["n"] == 2 * count  # no update lost
    assert check(fs)["problems"] == []


# -- paths never leave the root -----------------------------------------------


@pytest.mark.parametrize("name", ["..", ".", "../evil", "a/b", "a\\b", ".hidden", "x\x00y",
                                  "tab\there", "", "/abs", "é" * 101])
def test_names_cannot_escape_the_root(fs, root, tmp_path, name):
    before = {p for p in tmp_path.rglob("*")}
    with transaction.manager:
        with pytest.raises(ValueError):
            fs.put_project(ProjectInfo(id=name))
        with pytest.raises(ValueError):
            fs.put_record(rec("ok", project=name), create=True)
        record = rec("ok")
        record.label = name
        with pytest.raises(ValueError):
            fs.put_record(record, create=True)
        with pytest.raises(ValueError):
            fs.set_grant(name, "alice", "read")
        assert fs.get_project(name) is None and fs.get_record("P", name) is None
        assert fs.get_record(name, "ok") is None and fs.get_grants(name) == {}
        assert fs.delete_record("P", name) is False and fs.delete_project(name) is False
        assert fs.query_records(name).records == []
    assert {p for p in tmp_path.rglob("*")} - before <= {p for p in root.rglob("*")}


def test_layout_refuses_paths_outside_the_root(root):
    layout = Layout(root)
    for bad in ("../x", "..", "a/../../b"):
        with pytest.raises(UnsafeName):
            layout.project_dir(bad)
    with pytest.raises(UnsafeName):
        layout.absolute("../outside.json")
    with pytest.raises(UnsafeName):
        layout.record_file("P", "../project")


def test_layout_refuses_a_symlink_that_leads_out_of_the_store(root, tmp_path):
    layout = Layout(root)
    (root / "projects/P/records").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "projects/Q").symlink_to(outside)
    (root / "projects/P/records/x.json").symlink_to(outside / "x.json")
    (root / "projects/P/records/y.json").symlink_to("z.json")  # stays inside: allowed
    with pytest.raises(UnsafeName):
        layout.project_dir("Q")
    with pytest.raises(UnsafeName):
        layout.record_file("P", "x")
    assert layout.record_file("P", "y") == root / "projects/P/records/y.json"
    assert layout.project_dir("P") == root / "projects/P"


# -- crash recovery, check and repair -------------------------------------------


def test_a_committed_journal_left_by_a_dead_process_is_applied_on_start(fs, root):
    txn = transaction.begin()
    fs.put_record(rec("r1"), create=True)
    dm = txn.data(fs.pm.get_plugin("backend:filesystem"))
    dm.tpc_begin(txn)
    dm.commit(txn)
    dm.tpc_vote(txn)
    journal.commit(Layout(root), dm._temp, dm.txid)  # the commit point, then "crash"
    dm._temp = None
    dm._locks.release()
    transaction.abort()
    assert not (root / "projects/P/records/r1.json").exists()
    assert len(journal.pending(Layout(root))) == 1
    store = open_store(root)  # start-up finishes the commit
    with transaction.manager:
        assert store.get_record("P", "r1") is not None
        assert store.get_project("P").record_count == 1
    assert journal.pending(Layout(root)) == []
    assert check(store)["problems"] == []


def _die_half_way_through_a_commit(root: str) -> None:
    from pyramid_sumatra_backends.filesystem import files

    store = open_store(Path(root))
    real_write, writes = files.atomic_write, []

    def write_then_die(target, text, *durable):
        if writes:  # the record file is written; the index never will be
            os._exit(3)
        writes.append(target)
        real_write(target, text, *durable)

    journal.atomic_write = write_then_die
    indexlog.append = lambda *args: os._exit(3)
    with transaction.manager:
        store.put_record(rec("r1", tags=["t"]), create=True)


def test_a_process_killed_half_way_through_applying_its_commit(fs, root):
    child = multiprocessing.get_context("fork").Process(
        target=_die_half_way_through_a_commit, args=(str(root),))
    child.start()
    child.join(30)
    assert child.exitcode == 3
    assert (root / "projects/P/records/r1.json").exists() and "r1" not in index_of(root)
    problems = check(fs)["problems"]
    assert problems[0].startswith("interrupted commit")
    assert any("have files but are not in the index: r1" in p for p in problems)
    store = open_store(root)  # start-up applies the journal again
    assert check(store)["problems"] == []
    with transaction.manager:
        assert store.query_records("P", RecordQuery(tags=["t"])).total == 1
        assert store.get_project("P").record_count == 1


def test_a_vote_without_commit_point_is_rolled_back(fs, root):
    txn = transaction.begin()
    fs.put_record(rec("r1"), create=True)
    dm = txn.data(fs.pm.get_plugin("backend:filesystem"))
    dm.tpc_begin(txn)
    dm.tpc_vote(txn)
    temp = dm._temp
    dm._temp = None
    dm._locks.release()
    transaction.abort()
    os.rename(temp, temp.with_name(temp.name.replace(f".{os.getpid()}.", ".999999999.")))
    problems = check(fs)["problems"]
    assert len(problems) == 1 and "stray file .journal/" in problems[0]
    open_store(root)
    assert check(fs)["problems"] == []
    with transaction.manager:
        assert fs.get_record("P", "r1") is None


def _write_ini(tmp_path: Path, root: Path) -> str:
    ini = tmp_path / "fs.ini"
    ini.write_text("[app:main]\nuse = egg:pyramid_sumatra\nsumatra.backend = filesystem\n"
                   f"sumatra.filesystem.root = {root}\n")
    return str(ini)


def test_check_finds_and_repair_fixes_a_corrupted_index(fs, root, tmp_path, capsys):
    with transaction.manager:
        fs.put_user(UserInfo(username="alice", password_hash="h"))
        fs.set_grant("P", "alice", "write")
        fs.set_grant("P", "ghost", "read")  # a user that does not exist
    put(fs, *(rec(f"r{i}", tags=["x"]) for i in range(5)))
    good = index_of(root)
    index = dict(good)
    del index["r1"]
    index["phantom"] = index["r2"]
    index["r3"] = {**index["r3"], "tags": ["wrong"]}
    path = root / "projects/P/index.json"
    path.write_text(json.dumps({"format": "sumatra-filesystem-index/1", "records": index}))
    project = json.loads((root / "projects/P/project.json").read_text())
    (root / "projects/P/project.json").write_text(json.dumps({**project, "record_count": 9}))
    (root / "projects/P/records/.r4.json.999999999.ab.tmp").write_text("{half")
    ini = _write_ini(tmp_path, root)

    assert cli([ini, "check"]) == 1
    err = capsys.readouterr().err
    for expected in ("phantom", "r1", "r3", "record_count is 9", "'ghost'",
                     "stray file projects/P/records/.r4.json.999999999.ab.tmp"):
        assert expected in err
    assert cli([ini, "check", "--repair"]) == 0
    assert "repaired:" in capsys.readouterr().out
    assert cli([ini, "check"]) == 0
    assert index_of(root) == good
    with transaction.manager:
        assert fs.get_project("P").record_count == 5
        assert fs.get_grants("P") == {"alice": "write"}
        assert fs.query_records("P", RecordQuery(tags=["x"])).total == 5


def test_repair_moves_an_unreadable_record_aside(fs, root):
    put(fs, rec("r1"), rec("r2"))
    (root / "projects/P/records/r2.json").write_text('{"torn": ')
    report = check(fs)
    assert any("unreadable record file r2.json" in p for p in report["problems"])
    assert check(fs, repair=True)["unrepaired"] == []
    assert check(fs)["problems"] == []
    assert len(list((root / "lost+found/P").iterdir())) == 1
    with transaction.manager:
        assert [r.label for r in fs.query_records("P").records] == ["r1"]


def test_sqlalchemy_check_repairs_counts_and_orphans(tmp_path):
    store = build_storage(resolve_settings({"sumatra.backend": "sqlalchemy",
                                            "sqlalchemy.url": f"sqlite:///{tmp_path}/s.db"}))
    store.initialize()
    with transaction.manager:
        store.put_project(ProjectInfo(id="P"))
        store.put_record(rec("r1"), create=True)
        store.set_grant("P", "ghost", "read")
    backend = store.pm.get_plugin("backend:sqlalchemy")
    with backend.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE projects SET record_count = 7")
    problems = check(store)["problems"]
    assert len(problems) == 2 and "record_count is 7" in problems[0]
    assert check(store, repair=True)["unrepaired"] == []
    assert check(store)["problems"] == []
    with transaction.manager:
        assert store.get_project("P").record_count == 1 and store.get_grants("P") == {}
    store.dispose()


def test_check_moves_unreadable_history_and_trash_files_aside(fs, root):
    from pyramid_sumatra.storage.types import HistoryEntry, TrashItem

    put(fs, rec("r1"), rec("r2"))
    with transaction.manager:
        for label in ("r1", "r2"):
            fs.add_history(HistoryEntry(project_id="P", label=label,
                                        at="2024-01-01 10:00:00.000000", id=label,
                                        action="create", user="alice"))
        fs.put_trash(TrashItem(project_id="P", label="r3",
                               deleted_at="2024-01-02 10:00:00.000000", body="{}"))
        fs.put_trash(TrashItem(project_id="P", label="r4",
                               deleted_at="2024-01-02 11:00:00.000000", body="{}"))
    assert check(fs)["problems"] == []
    (root / "history/P/r2.json").write_text('[{"at": "2024-01-01", "bogus": 1}]')
    trash_file = next((root / "trash/P").glob("r4@*.json"))
    trash_file.write_text('{"torn": ')

    from pyramid_sumatra.storage.types import StorageUnavailable

    with transaction.manager, pytest.raises(StorageUnavailable, match="r2.json.*check"):
        fs.list_history("P", "r2", limit=10)  # a 503 naming the file, never a 500
    with transaction.manager, pytest.raises(StorageUnavailable, match="check"):
        fs.list_trash("P")
    report = check(fs)
    assert len(report["problems"]) == 2, report
    assert any("unreadable history file r2.json" in p for p in report["problems"])
    assert any(f"unreadable trash file {trash_file.name}" in p for p in report["problems"])
    assert check(fs, repair=True)["unrepaired"] == []
    assert check(fs)["problems"] == []
    assert [p.name.split(".json")[0] for p in (root / "lost+found/P/history").iterdir()] \
        == ["r2"]
    assert len(list((root / "lost+found/P/trash").iterdir())) == 1
    with transaction.manager:  # what was readable is all still there
        assert [e.label for e in fs.list_history("P", "r1", limit=10)] == ["r1"]
        assert [t.label for t in fs.list_trash("P")] == ["r3"]


# -- durability: the journal is the durable copy until a checkpoint ------------------


def test_a_commit_fsyncs_its_journal_alone(fs, root, monkeypatch):
    put(fs, rec("r0"))  # the project's index log exists
    journal.checkpoint(Layout(root), at_least=1)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(
        f"/proc/self/fd/{fd}")), real_fsync(fd))[1])
    put(fs, rec("r1", tags=["t"]))
    journal_dir = str(root / ".journal")
    assert len(synced) == 2, synced  # the journal, then the directory naming it
    assert synced[0].startswith(journal_dir + "/.") and synced[1] == journal_dir
    assert len(journal.applied(Layout(root))) == 1  # kept until a checkpoint


def test_a_checkpoint_writes_back_and_drops_the_applied_journals(fs, root, monkeypatch):
    from pyramid_sumatra_backends.filesystem import files

    monkeypatch.setattr(journal, "CHECKPOINT_EVERY", 4)
    calls = []
    real = files.sync_filesystem
    monkeypatch.setattr(journal, "sync_filesystem", lambda p: (calls.append(p), real(p)))
    journal.checkpoint(Layout(root), at_least=1)  # the project's creation
    calls.clear()
    for i in range(3):
        put(fs, rec(f"r{i}"))
    assert len(journal.applied(Layout(root))) == 3 and calls == []
    put(fs, rec("r3"))
    assert journal.applied(Layout(root)) == [] and calls == [root]
    put(fs, rec("r4"))
    fs.dispose()  # a clean stop leaves no journal
    assert journal.applied(Layout(root)) == [] and len(calls) == 2


def _lose_what_was_not_synced(root: Path, before: dict[str, bytes]) -> None:
    """A power loss: every file the kept journals wrote is back as it was (or empty)."""
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or rel.startswith((".journal", ".locks")):
            continue
        if rel not in before:
            path.write_bytes(b"")  # a new file whose data never reached the disk
        elif path.read_bytes() != before[rel]:
            path.write_bytes(before[rel])


def test_after_a_power_loss_start_up_replays_the_kept_journals_in_order(fs, root,
                                                                       monkeypatch):
    from pyramid_sumatra.storage.types import HistoryEntry

    put(fs, rec("r0", tags=["old"]))
    journal.checkpoint(Layout(root), at_least=1)  # on disk: the state before
    before = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
              if p.is_file()}
    put(fs, rec("r1", tags=["a"]))
    put(fs, rec("r0", tags=["v2"]), create=False)
    put(fs, rec("r0", tags=["v3"]), rec("r2"), create=False)
    with transaction.manager:
        fs.add_history(HistoryEntry(project_id="P", label="r1", at="2024-01-01 10:00:00.0",
                                    id="h1", action="create"))
    assert len(journal.applied(Layout(root))) == 4
    _lose_what_was_not_synced(root, before)
    monkeypatch.setattr(journal, "BOOT", "0123456789abcdef")  # the machine restarted

    store = open_store(root)
    assert journal.applied(Layout(root)) == [] and journal.pending(Layout(root)) == []
    with transaction.manager:
        assert store.get_record("P", "r0").tags == ["v3"]  # the last of three, not the first
        assert store.query_records("P").total == 3
        assert store.get_project("P").record_count == 3
        assert [e.id for e in store.list_history("P", "r1", limit=5)] == ["h1"]
    assert check(store)["problems"] == []


def test_a_restart_on_the_same_boot_replays_nothing(fs, root, monkeypatch):
    journal.checkpoint(Layout(root), at_least=1)
    put(fs, rec("r1"), rec("r2"))
    replays = []
    monkeypatch.setattr(journal, "apply", lambda *a, **k: replays.append(a))
    store = open_store(root)
    assert replays == [] and len(journal.applied(Layout(root))) == 1
    with transaction.manager:
        assert store.query_records("P").total == 2


def _hold_lock(root: str, ready, stop) -> None:
    locks = journal.LockSet(Layout(root), ["project-P"])
    locks.acquire()
    ready.set()
    stop.wait(30)
    os._exit(0)  # dies holding it: the kernel drops the flock


def test_a_lock_held_by_another_process_times_out_then_frees_when_it_dies(fs, root):
    ctx = multiprocessing.get_context("fork")
    ready, stop = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold_lock, args=(str(root), ready, stop))
    child.start()
    assert ready.wait(30)
    with pytest.raises(StorageConflict, match="timed out waiting for the lock 'project-P'"):
        journal.LockSet(Layout(root), ["project-P"], timeout=0.2).acquire()
    other = journal.LockSet(Layout(root), ["project-Q"], timeout=0.2)
    other.acquire()  # other keys are free
    other.release()
    stop.set()
    child.join(30)
    locks = journal.LockSet(Layout(root), ["project-P"], timeout=5)
    locks.acquire()
    locks.release()
    put(fs, rec("r1"))  # and a commit takes it


def test_threads_of_a_process_take_a_lock_in_turn(root):
    layout, inside, overlaps = Layout(root), [], []

    def worker():
        for _ in range(20):
            locks = journal.LockSet(layout, ["project-P"])
            locks.acquire()
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(len(inside))
            inside.pop()
            locks.release()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert overlaps == []


def test_readable_json_is_written_the_same_by_either_encoder():
    from pyramid_sumatra_backends.filesystem.files import dumps_readable

    doc = {"label": "r1", "naïve": "✓ \"q\" \\ \n\t\u0001", "n": [1, 2.5, -0.1, 10**18, True,
           None], "empty": {}, "none": [], "nested": {"a": {"b": [{"c": 1}]}}}
    slow = dumps_readable(doc)
    assert dumps_readable(doc, finite=True) == slow == \
        json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    tricky = {"tiny": 1e-7, "huge": 1e300, "big": 2**70, "surrogate": "\udce9"}
    assert json.loads(dumps_readable(tricky, finite=True)) == json.loads(
        dumps_readable(tricky))  # orjson refuses 2**70 and the surrogate: json writes them


def test_a_record_with_a_nan_duration_keeps_it(fs):
    import math

    record = rec("r1")
    record.body = '{"label": "r1", "timestamp": "2024-01-01 10:00:00", "duration": NaN}'
    record.duration = math.nan
    put(fs, record)
    fs.dispose()
    with transaction.manager:
        stored = fs.get_record("P", "r1")
        assert stored.body == record.body and math.isnan(stored.duration)
