"""The filesystem backend's index: a base (index.json) and an append-only log (index.log)."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest
import transaction
from test_filesystem_backend import check, index_of, open_store, put, rec

from pyramid_sumatra.storage.types import ProjectInfo, RecordQuery
from pyramid_sumatra_backends.filesystem import codec, indexlog, journal
from pyramid_sumatra_backends.filesystem.paths import Layout


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


def base_of(root: Path) -> Path:
    return root / "projects/P/index.json"


def log_of(root: Path) -> Path:
    return root / "projects/P/index.log"


def labels(store, project: str = "P") -> list[str]:
    with transaction.manager:
        return sorted(store.query_records(project, RecordQuery(labels_only=True)).labels)


def test_a_commit_appends_one_line_and_leaves_the_base_alone(fs, root):
    put(fs, rec("r1", tags=["a"]))
    base = base_of(root).read_bytes()
    serial = codec.index_serial(base[:96])
    log = log_of(root).read_text().splitlines()
    assert json.loads(log[0]) == {"format": codec.LOG_FORMAT, "base": serial}
    assert len(log) == 2 and json.loads(log[1])["set"]["r1"]["tags"] == ["a"]
    put(fs, rec("r2"), rec("r3"))  # one commit, one line
    with transaction.manager:
        fs.delete_record("P", "r1")
    log = log_of(root).read_text().splitlines()
    assert base_of(root).read_bytes() == base
    assert len(log) == 4 and json.loads(log[3]) == {"set": {}, "remove": ["r1"]}
    assert sorted(index_of(root)) == ["r2", "r3"] == labels(open_store(root))
    assert check(fs)["problems"] == []


def test_the_log_is_compacted_into_a_new_base_once_it_is_large(fs, root, monkeypatch):
    monkeypatch.setattr(indexlog, "MIN_LOG", 0)
    put(fs, *(rec(f"r{i}") for i in range(10)))  # the base is nearly empty: compacted now
    assert not log_of(root).exists()
    assert sorted(json.loads(base_of(root).read_text())["records"]) == [f"r{i}" for i in range(10)]
    monkeypatch.setattr(indexlog, "COMPACT_FRACTION", 0.5)
    put(fs, rec("r10"))  # one line, smaller than half the base: appended
    assert log_of(root).exists() and "r10" not in json.loads(base_of(root).read_text())["records"]
    for i in range(11, 20):
        put(fs, rec(f"r{i}"))
    assert len(json.loads(base_of(root).read_text())["records"]) > 11  # compacted again
    assert labels(fs) == labels(open_store(root)) == sorted(f"r{i}" for i in range(20))
    assert check(fs)["problems"] == []


def test_a_torn_last_line_is_left_out_by_readers_and_cut_off_by_the_next_writer(fs, root):
    put(fs, rec("r1"), rec("r2"))
    whole = log_of(root).read_bytes()
    line = codec.log_line({"r9": codec.index_entry(rec("r9"))}, ["r1"]).encode()
    with open(log_of(root), "ab") as f:
        f.write(line[: len(line) // 2])  # a writer died half-way through its append
    reader = open_store(root)
    assert labels(reader) == ["r1", "r2"]
    problems = check(fs)["problems"]
    assert len(problems) == 1 and "index.log ends in a torn line" in problems[0]
    put(fs, rec("r3"))
    assert log_of(root).read_bytes().startswith(whole)
    assert all(json.loads(x) for x in log_of(root).read_text().splitlines())
    assert labels(reader) == labels(open_store(root)) == ["r1", "r2", "r3"]
    assert check(fs)["problems"] == []


def test_check_repair_cuts_a_torn_tail_and_a_corrupt_line_is_reported(fs, root):
    put(fs, rec("r1"))
    with open(log_of(root), "ab") as f:
        f.write(b'{"set": {"r')
    assert check(fs, repair=True)["unrepaired"] == []
    assert check(fs)["problems"] == [] and labels(fs) == ["r1"]
    put(fs, rec("r2"))
    with open(log_of(root), "ab") as f:
        f.write(b'{"set": 5}\n')  # a complete line that is no commit: not a torn append
    fresh = open_store(root)
    with pytest.raises(Exception, match="run 'sumatra-server CONFIG check'"), transaction.manager:
        fresh.query_records("P")
    assert any("unreadable" in p for p in check(fs)["problems"])
    assert check(fs, repair=True)["unrepaired"] == []
    assert labels(open_store(root)) == ["r1", "r2"] and not log_of(root).exists()


def test_a_log_left_by_an_interrupted_compaction_is_ignored(fs, root):
    put(fs, rec("r1"), rec("r2"))
    put(fs, rec("r3"))
    # The compaction wrote the new base, then died before removing the log.
    indexlog.write_base(Layout(root), "P", indexlog.read(Layout(root), "P")[1])
    stale = log_of(root).with_name("old")
    stale.write_text(codec.log_header("0123456789abcdef")
                     + codec.log_line({}, ["r1", "r2", "r3"]))
    stale.rename(log_of(root))
    assert labels(open_store(root)) == ["r1", "r2", "r3"]
    problems = check(fs)["problems"]
    assert len(problems) == 1 and "belongs to another index.json" in problems[0]
    put(fs, rec("r4"))  # replaces the stale log with one for this base
    assert labels(open_store(root)) == ["r1", "r2", "r3", "r4"]
    assert check(fs)["problems"] == []


def _old_format(entries: dict[str, dict], serial: str | None) -> str:
    """index.json as the backend wrote it before the log (no index.log beside it)."""
    head = '{"format": "sumatra-filesystem-index/1", ' + (
        f'"serial": "{serial}", ' if serial else "")
    lines = [json.dumps(label) + ":" + json.dumps(entries[label], separators=(",", ":"))
             for label in sorted(entries)]
    return head + '"records": {\n' + ",\n".join(lines) + "\n}}\n"


@pytest.mark.parametrize("serial", ["9f86d081884c7d65", None])
def test_a_store_written_before_the_log_is_read_then_converted_by_its_first_write(
        fs, root, serial):
    put(fs, rec("r1", tags=["x"]), rec("r2", reason="why"))
    entries = index_of(root)
    indexlog.write_base(Layout(root), "P", {})  # no log any more
    base_of(root).write_text(_old_format(entries, serial))
    store = open_store(root)
    assert labels(store) == ["r1", "r2"]
    with transaction.manager:
        assert store.query_records("P", RecordQuery(tags=["x"])).total == 1
        assert store.get_project("P").record_count == 2
    assert check(store)["problems"] == []
    put(store, rec("r3"))
    if serial:  # the base stays as it was; the log names it
        assert base_of(root).read_text() == _old_format(entries, serial)
        assert json.loads(log_of(root).read_text().splitlines()[0])["base"] == serial
    else:  # a base without serial cannot have a log: rewritten with one
        assert codec.index_serial(base_of(root).read_bytes()) and not log_of(root).exists()
    assert labels(store) == labels(open_store(root)) == ["r1", "r2", "r3"]
    assert check(store)["problems"] == []


def test_two_stores_read_each_others_appends_before_committing(root):
    one, two = open_store(root), open_store(root)  # two processes' caches
    with transaction.manager:
        one.put_project(ProjectInfo(id="P"))
    for i in range(6):
        writer, reader = (one, two) if i % 2 else (two, one)
        put(writer, rec(f"r{i}"))
        assert labels(reader) == [f"r{j}" for j in range(i + 1)]
    with transaction.manager:
        assert two.get_project("P").record_count == 6
    backend = two.pm.get_plugin("backend:filesystem")
    state = backend.disk.index_state("P")
    state.by_time  # noqa: B018 - built once; an append read from the log updates it
    put(one, rec("late", timestamp="2030-01-01 00:00:00"))
    after = backend.disk.index_state("P")
    assert after.entries and after._by_time is not None  # carried, not sorted again
    assert after.by_time[-1] == "late"
    assert after.by_time == [k for _, k in sorted((e["timestamp"], k)
                                                  for k, e in after.entries.items())]
    with transaction.manager:
        assert two.query_records("P", RecordQuery(limit=1)).records[0].label == "late"


def test_a_journal_applied_twice_leaves_the_same_index(fs, root):
    put(fs, rec("r1"))
    ops = [{"op": "index", "project": "P", "reset": False,
            "set": {"r2": codec.index_entry(rec("r2"))}, "remove": ["r1"]}]
    layout = Layout(root)
    (root / "projects/P/records/r2.json").write_text(codec.record_text(rec("r2")))
    (root / "projects/P/records/r1.json").unlink()
    journal.apply(layout, ops)
    journal.apply(layout, ops)  # recovery after a crash past the append
    assert sorted(index_of(root)) == ["r2"]
    assert [p for p in check(fs)["problems"] if "record_count" not in p] == []


def _append_half_then_die(root: str) -> None:
    store = open_store(Path(root))

    class Torn:
        """The log file: half of the line written, then the process dies."""

        def __init__(self, f):
            self.f = f

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            os._exit(3)

    real_open = open

    def torn_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return Torn(f) if str(path).endswith("index.log") and mode == "r+b" else f

    indexlog.open = torn_open  # the module's open: appends tear
    with transaction.manager:
        store.put_record(rec("r2", tags=["t"]), create=True)


def test_a_process_killed_in_the_middle_of_its_append(fs, root):
    put(fs, rec("r1"))
    child = multiprocessing.get_context("fork").Process(target=_append_half_then_die,
                                                       args=(str(root),))
    child.start()
    child.join(30)
    assert child.exitcode == 3
    assert not log_of(root).read_bytes().endswith(b"\n")  # torn
    assert labels(open_store(root)) == ["r1", "r2"]  # start-up applied the journal again
    assert all(json.loads(x) for x in log_of(root).read_text().splitlines())
    assert check(fs)["problems"] == []
    with transaction.manager:
        assert fs.query_records("P", RecordQuery(tags=["t"])).total == 1


def test_a_base_is_read_a_line_at_a_time_and_one_cut_short_is_unreadable(fs, root):
    put(fs, rec("r1", reason='a "quoted",\nreason'), rec("r2", tags=["a", "b"]))
    entries = indexlog.read(Layout(root), "P")[1]
    indexlog.write_base(Layout(root), "P", entries)
    with open(base_of(root), "rb") as f:
        assert codec.read_index(f) == entries == codec.parse_index(base_of(root).read_bytes())
    text = base_of(root).read_text()
    base_of(root).write_text(text[: text.index('"r2"')])  # the end of the file is lost
    with open(base_of(root), "rb") as f, pytest.raises(codec.CorruptFile, match="cut short"):
        codec.read_index(f)
    assert any("unreadable" in p for p in check(fs)["problems"])
    assert check(fs, repair=True)["unrepaired"] == []
    assert labels(open_store(root)) == ["r1", "r2"]


def test_versions_are_kept_as_changes_until_their_entries_are_asked_for():
    from pyramid_sumatra_backends.filesystem.disk import IndexState

    def entry(ts: str):
        return codec.compact_entry(codec.index_entry(rec("x", timestamp=ts)))

    first = IndexState({f"r{i}": entry(f"2024-01-01 00:00:{i:02d}") for i in range(5)})
    first.by_time  # noqa: B018
    state, expected = first, dict(first.entries)
    for i in range(IndexState.MAX_PENDING - 1):
        changed = {f"n{i}": entry(f"2024-01-02 00:00:{i:02d}"),
                   "r1": entry(f"2023-01-01 00:00:{i:02d}")}
        removed = [f"n{i - 1}", "r3", "absent"]
        state = state.updated(changed, removed)
        for label in removed:
            expected.pop(label, None)
        expected.update(changed)
        assert len(state) == len(expected) and state.get("r1") == changed["r1"]
        assert "r3" not in state and f"n{i}" in state and state._entries is None
    assert state.entries == expected  # made whole in one copy
    assert state._parent is None and state.by_time == [
        k for _, k in sorted((e["timestamp"], k) for k, e in expected.items())]
    assert first.entries != expected and len(first) == 5  # an older version is unchanged
    many = first
    for i in range(IndexState.MAX_PENDING):
        many = many.updated({f"m{i}": entry("2024-01-03 00:00:00")}, [])
    assert many._entries is not None and len(many.entries) == 5 + IndexState.MAX_PENDING


@pytest.mark.parametrize("reason, duration", [("plain", 12.5), ("with \x1f separator", None),
                                              ("naïve ✓", 3), ("", 1e-7)])
def test_an_entry_reads_back_every_field_as_it_was_given(reason, duration):
    doc = codec.index_entry(rec("r1", tags=["b", "a"], reason=reason, duration=duration,
                                outcome="ok", main_file="m.py"))
    entry = codec.compact_entry(doc)
    assert codec.entry_dict(entry) == doc
    assert json.dumps(codec.entry_dict(entry)) == json.dumps(doc)  # same types, same order
    assert entry["reason"] == reason and entry.get("duration") == duration
    assert entry["tags"] == ("b", "a") and entry.get("nope", 7) == 7
    with pytest.raises(KeyError):
        entry["nope"]  # noqa: B018
    with pytest.raises(codec.CorruptFile):
        codec.compact_entry({**doc, "duration": "long"})
    with pytest.raises(codec.CorruptFile):
        codec.compact_entry({k: v for k, v in doc.items() if k != "revision"})


def test_a_large_base_is_read_in_batches_as_json_reads_it_whole(tmp_path):
    entry = codec.index_entry(rec("x", tags=["t"]))
    entries = {f'r{i:05d}{"é" if i % 7 else chr(34)}': {**entry, "reason": f"run {i},\n"}
               for i in range(2500)}
    path = tmp_path / "index.json"
    path.write_text(codec.index_text(entries), encoding="utf-8")
    with open(path, "rb") as f:
        found = codec.read_index(f)
    assert found == codec.parse_index(path.read_bytes())
    assert {k: codec.entry_dict(e) for k, e in found.items()} == entries
