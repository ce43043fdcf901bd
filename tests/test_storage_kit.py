"""The storage kit's helpers that no built-in backend exercises: the DB-API data manager."""

from __future__ import annotations

import sqlite3

import pytest
import transaction

from pyramid_sumatra.storage.datamanager import ConnectionDataManager, transaction_connection
from pyramid_sumatra.storage.types import StorageConflict


class Backend:
    """The smallest DB-API backend: one table, one connection per transaction."""

    def __init__(self, path):
        self.path = path
        self.closed: list[object] = []
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS t (x TEXT)")

    def conn(self):
        return transaction_connection(self, lambda: sqlite3.connect(self.path),
                                      close=self.closed.append)

    def rows(self) -> list[str]:
        with sqlite3.connect(self.path) as conn:
            return [x for (x,) in conn.execute("SELECT x FROM t ORDER BY x")]


class FailingVote:
    """Another data manager whose vote fails (a conflict found by another store)."""

    transaction_manager = transaction.manager

    def abort(self, txn): pass
    def tpc_begin(self, txn): pass
    def commit(self, txn): pass
    def tpc_finish(self, txn): pass
    def tpc_abort(self, txn): pass
    def sortKey(self): return "filesystem:/any"

    def tpc_vote(self, txn):
        raise StorageConflict("the other store lost a race")


def test_writes_land_at_commit_on_one_connection(tmp_path):
    backend = Backend(tmp_path / "db")
    with transaction.manager:
        first = backend.conn()
        first.execute("INSERT INTO t VALUES ('a')")
        assert backend.conn() is first  # one connection per transaction
        assert backend.rows() == []  # nothing visible before the commit
    assert backend.rows() == ["a"]
    assert backend.closed == [first]


def test_an_aborted_transaction_rolls_back(tmp_path):
    backend = Backend(tmp_path / "db")
    with pytest.raises(RuntimeError), transaction.manager:
        backend.conn().execute("INSERT INTO t VALUES ('a')")
        raise RuntimeError("abort")
    assert backend.rows() == []
    assert len(backend.closed) == 1


def test_it_votes_last_so_another_store_failing_rolls_it_back(tmp_path):
    backend = Backend(tmp_path / "db")
    with pytest.raises(StorageConflict), transaction.manager:
        backend.conn().execute("INSERT INTO t VALUES ('a')")
        transaction.get().join(FailingVote())
    assert backend.rows() == []
    assert len(backend.closed) == 1  # closed once, though abort and tpc_abort both ran


def test_a_commit_error_is_translated(tmp_path):
    class Refusing:
        def commit(self):
            raise sqlite3.OperationalError("database is locked")

        def rollback(self):
            pass

    dm = ConnectionDataManager(Refusing(), translate=lambda exc: StorageConflict(str(exc)))
    with pytest.raises(StorageConflict, match="locked"), transaction.manager:
        transaction.get().join(dm)


def test_storage_hooks_are_the_marked_hookspecs():
    from pyramid_sumatra.storage import hookspecs
    from pyramid_sumatra.storage.hookspecs import STORAGE_HOOKS

    assert "sumatra_put_record" in STORAGE_HOOKS and "sumatra_list_users" in STORAGE_HOOKS
    assert "sumatra_authenticate" not in STORAGE_HOOKS  # firstresult, but the app answers it
    assert "sumatra_record_saved" not in STORAGE_HOOKS
    assert all(getattr(hookspecs, name).pyramid_sumatra_spec["firstresult"]
               for name in STORAGE_HOOKS)


def test_the_hooks_called_check_names_what_was_never_called():
    from pyramid_sumatra.storage.hookspecs import STORAGE_HOOKS
    from pyramid_sumatra.storage.testing import uncalled_hooks

    all_but_two = set(STORAGE_HOOKS) - {"sumatra_list_users", "sumatra_check_storage"}
    assert uncalled_hooks({"good": set(STORAGE_HOOKS), "bad": all_but_two}) == {
        "bad": ["sumatra_check_storage", "sumatra_list_users"]}  # in hookspec order


def test_a_disposed_sqlite_engine_closes_its_writer_lock_file(tmp_path):
    """One descriptor leaked per engine: 2,000 test apps passed 1,024, where waitress's
    select() loop dies (a live-server test then hung)."""
    import os

    import transaction

    from pyramid_sumatra import build_storage, resolve_settings
    from pyramid_sumatra.intent import write_intent
    from pyramid_sumatra.storage.types import ProjectInfo

    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    counts = []
    for i in range(12):
        storage = build_storage(resolve_settings({
            "sumatra.backend": "sqlalchemy", "sqlalchemy.url": f"sqlite:///{tmp_path}/{i}.db",
            "sumatra.secret": "x" * 32}))
        storage.initialize()
        token = write_intent.set(True)  # a write: the lock file is opened
        try:
            with transaction.manager:
                storage.put_project(ProjectInfo(id="P"))
        finally:
            write_intent.reset(token)
        storage.dispose()
        counts.append(open_files())
    assert counts[-1] <= counts[2], counts
