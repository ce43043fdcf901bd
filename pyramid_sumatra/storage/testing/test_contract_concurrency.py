"""Contract: concurrent writers, each in its own thread and transaction, lose nothing."""

from __future__ import annotations

import threading

import transaction

from pyramid_sumatra.storage.testing.support import record
from pyramid_sumatra.storage.types import RecordQuery, StorageConflict


def run_threads(*targets) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(target):
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    return errors


def test_two_creates_of_one_label(store, project):
    """Both writers read "absent" and create; one wins, the other conflicts and, replayed
    (as pyramid_retry replays a request), becomes an update: both tags survive."""
    both_read = threading.Barrier(2)
    outcomes: dict[str, list[str]] = {"a": [], "b": []}

    def writer(tag: str):
        def run():
            for attempt in transaction.manager.attempts(5):
                with attempt:
                    existing = store.get_record(project, "race")
                    try:  # let the other writer read too; a backend that locks
                        both_read.wait(timeout=1)  # early (SQLite) makes it wait instead
                    except threading.BrokenBarrierError:
                        pass
                    tags = sorted({tag, *(existing.tags if existing else [])})
                    rec = record(project, "race", tags=tags, reason=f"by {tag}")
                    try:
                        store.put_record(rec, create=existing is None)
                    except StorageConflict:
                        outcomes[tag].append("conflict")
                        raise
                    # The last entry is what committed (a conflict at commit retries).
                    outcomes[tag].append("created" if existing is None else "updated")
        return run

    assert run_threads(writer("a"), writer("b")) == []
    final = {tag: result[-1] for tag, result in outcomes.items()}
    assert sorted(final.values()) == ["created", "updated"], outcomes
    with transaction.manager:
        got = store.get_record(project, "race")
        assert got.tags == ["a", "b"]  # nothing lost
        assert got.document["tags"] == ["a", "b"]
        assert store.get_project(project).record_count == 1
        assert store.query_records(project, RecordQuery()).total == 1


def test_concurrent_writers_of_different_labels_keep_every_record(store, project):
    def writer(prefix: str):
        def run():
            for i in range(5):
                for attempt in transaction.manager.attempts(5):
                    with attempt:
                        store.put_record(record(project, f"{prefix}{i}", tags=[prefix]),
                                         create=True)
        return run

    assert run_threads(writer("x"), writer("y"), writer("z")) == []
    with transaction.manager:
        page = store.query_records(project, RecordQuery())
        assert page.total == 15
        assert store.get_project(project).record_count == 15  # no lost counter update
        assert store.query_records(project, RecordQuery(tags=["y"])).total == 5


def test_a_reader_never_sees_uncommitted_writes(store, project):
    written = threading.Event()
    checked = threading.Event()
    seen: list[object] = []

    def writer():
        with transaction.manager:
            store.put_record(record(project, "pending"), create=True)
            written.set()
            assert checked.wait(timeout=10)

    def reader():
        assert written.wait(timeout=10)
        transaction.begin()
        try:
            from pyramid_sumatra.intent import write_intent

            token = write_intent.set(False)  # a GET: SQLite must not wait for the writer
            try:
                seen.append(store.get_record(project, "pending"))
            finally:
                write_intent.reset(token)
        finally:
            transaction.abort()
            checked.set()

    assert run_threads(writer, reader) == []
    assert seen == [None]
    with transaction.manager:
        assert store.get_record(project, "pending") is not None
