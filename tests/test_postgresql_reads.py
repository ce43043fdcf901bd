"""PostgreSQL reads without BEGIN/COMMIT (backends/sqlalchemy/reads.py, intent.py).

A read-intent request (GET, HEAD, OPTIONS) reads in autocommit: a GET record is one
round trip. A write it turns out to need is refused before it is sent, and the request
is replayed with write intent, in a transaction, without the backoff pause. What the
server saw is read from libpq's protocol trace.
"""

from __future__ import annotations

import json
import logging

import pytest
import transaction
import webtest
from conftest import basic, unique
from ldapserver import SERVICE_PW, slapd  # noqa: F401 - the fixture
from pyramid_retry import IRetryableError
from sqlalchemy import event

import pyramid_sumatra
from pyramid_sumatra.intent import WriteUnderReadIntent, unit_of_work
from pyramid_sumatra.records import build_stored_record
from pyramid_sumatra.services import tokens
from pyramid_sumatra.storage.types import UserInfo
from pyramid_sumatra_backends.sqlalchemy.reads import is_read, read_in_autocommit

RECORD = "/TestProject/20111013-172503/"
ACCEPT = {"Accept": "application/vnd.sumatra.record-v4+json"}
postgresql_only = pytest.mark.only_backends("postgresql")


def engine_of(storage):
    for plugin in storage.pm.get_plugins():
        if hasattr(plugin, "engine"):
            return plugin.engine
    raise AssertionError("an SQL backend has an engine")


class Trace:
    """libpq's protocol trace of every connection the engine opens from now on."""

    def __init__(self, engine, path):
        from psycopg import pq

        self.file = open(path, "w+")  # noqa: SIM115 - closed by the fixture
        self.start = 0

        @event.listens_for(engine, "connect")
        def trace(dbapi_connection, _record) -> None:
            dbapi_connection.pgconn.trace(self.file.fileno())
            dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

        engine.dispose()  # the pooled connections were opened untraced

    def mark(self) -> None:
        """Forget what was traced so far."""
        self.start = len(self.messages(all_=True))

    def messages(self, all_: bool = False) -> list[str]:
        """Messages since the mark, one string each (a statement's lines joined)."""
        self.file.flush()
        self.file.seek(0)
        found: list[str] = []
        for line in self.file.read().splitlines():
            if line[:2] in ("F\t", "B\t") or not found:
                found.append(line)
            else:
                found[-1] += " " + line
        return found if all_ else found[self.start:]

    def round_trips(self) -> int:
        return sum(1 for m in self.messages() if m.startswith("B\t") and "ReadyForQuery" in m)

    def sent(self) -> list[str]:
        """The statements sent (simple queries and parsed ones), in order."""
        return [m for m in self.messages()
                if m.startswith("F\t") and m.split("\t")[2] in ("Query", "Parse")]


def _index(sent: list[str], text: str) -> list[int]:
    """Where ``text`` occurs in the statements sent ('"BEGIN': a BEGIN statement)."""
    return [i for i, m in enumerate(sent) if text in m]


@pytest.fixture
def trace(wsgi_app, tmp_path):
    traced = Trace(engine_of(wsgi_app.registry["sumatra.storage"]), tmp_path / "trace")
    yield traced
    traced.file.close()


@postgresql_only
def test_a_get_record_is_one_round_trip(testapp, trace, backend_name):
    testapp.get(RECORD, headers={**ACCEPT, **basic()}, status=200)  # a connection opened
    trace.mark()
    res = testapp.get(RECORD, headers={**ACCEPT, **basic()}, status=200)
    assert res.json["label"] == "20111013-172503"
    assert trace.round_trips() == 1, trace.messages()
    sent = " ".join(trace.sent())
    assert "BEGIN" not in sent and "COMMIT" not in sent and "ROLLBACK" not in sent


@postgresql_only
def test_a_get_that_touches_a_token_is_replayed_in_a_transaction_at_once(
        testapp, storage, trace, monkeypatch, caplog, backend_name):
    with transaction.manager:
        secret = tokens.create(storage, "testuser", "laptop")[1]
    pauses: list[int] = []
    monkeypatch.setattr("pyramid_sumatra.retry.backoff", pauses.append)
    testapp.get("/", headers=basic(), status=200)  # a connection opened
    trace.mark()
    caplog.set_level(logging.INFO, logger="pyramid_sumatra.access")
    res = testapp.get(RECORD, headers={**ACCEPT, **basic("testuser", secret)}, status=200)
    assert res.json["label"] == "20111013-172503"
    # One access-log line, the replay's: the refused attempt's 503 was nobody's answer.
    logged = [json.loads(r.getMessage()) for r in caplog.records
              if r.name == "pyramid_sumatra.access"]
    assert [entry["status"] for entry in logged] == [200]
    with transaction.manager:
        assert storage.list_tokens("testuser")[0].last_used is not None
    sent = trace.sent()
    updates, begins = _index(sent, "UPDATE tokens"), _index(sent, '"BEGIN')
    # The read-intent attempt read the token and sent no UPDATE; the replay (one
    # attempt: one BEGIN) read it again and wrote, then committed.
    assert len(updates) == 1 and len(begins) == 1, sent
    token_reads = _index(sent, "FROM tokens")
    assert token_reads[0] < begins[0] < token_reads[-1] < updates[0], sent
    assert _index(sent, '"COMMIT"')[0] > updates[0]
    assert pauses == []  # no backoff before a replay to write
    # Within the minute the token is not written again: the GET reads in autocommit.
    trace.mark()
    testapp.get(RECORD, headers={**ACCEPT, **basic("testuser", secret)}, status=200)
    assert not _index(trace.sent(), '"BEGIN') and not _index(trace.sent(), "UPDATE")


@postgresql_only
def test_the_only_attempt_of_a_get_writes_in_a_transaction(app_settings, demo, storage,
                                                           backend_name):
    with transaction.manager:
        secret = tokens.create(storage, "testuser", "laptop")[1]
    app = pyramid_sumatra.main({}, **app_settings, **{"retry.attempts": "1"})
    try:
        webtest.TestApp(app).get(RECORD, headers={**ACCEPT, **basic("testuser", secret)},
                                 status=200)
    finally:
        app.registry["sumatra.storage"].dispose()
    with transaction.manager:
        assert storage.list_tokens("testuser")[0].last_used is not None


@postgresql_only
def test_a_directory_users_first_login_by_get_is_written_in_a_transaction(
        app_settings, demo, storage, slapd, monkeypatch, tmp_path,  # noqa: F811
        backend_name):
    monkeypatch.setenv("TEST_LDAP_READER_PASSWORD", SERVICE_PW)
    app = pyramid_sumatra.main({}, **app_settings, **slapd.settings())
    try:
        trace = Trace(engine_of(app.registry["sumatra.storage"]), tmp_path / "trace")
        webtest.TestApp(app).get("/", headers=basic("ada", "ada-pw"), status=200)
        sent = trace.sent()
        trace.file.close()
    finally:
        app.registry["sumatra.storage"].dispose()
    with transaction.manager:
        assert storage.get_user("ada").source == "ldap"
    inserts, begins = _index(sent, "INSERT INTO users"), _index(sent, '"BEGIN')
    assert len(inserts) == 1 and len(begins) == 1 and begins[0] < inserts[0], sent


@postgresql_only
def test_a_write_under_read_intent_is_refused_and_nothing_is_written(
        storage, demo, backend_name):
    record = build_stored_record("TestProject", {"label": unique("r"), "tags": ["t"],
                                                 "timestamp": "2024-01-01T00:00:00"})
    with unit_of_work(writes=False, replayable=True):
        with pytest.raises(WriteUnderReadIntent) as caught, transaction.manager:
            assert storage.get_user("testuser") is not None  # reads are fine
            storage.put_user(UserInfo(username="mallory", password_hash="x"))
        assert IRetryableError.providedBy(caught.value)
        with pytest.raises(WriteUnderReadIntent), transaction.manager:
            storage.put_record(record, create=True)  # one data-modifying WITH
    with transaction.manager:
        assert storage.get_user("mallory") is None
        assert storage.get_record("TestProject", record.label) is None


@postgresql_only
def test_the_next_writer_on_the_connection_a_read_used_is_in_a_transaction(
        storage, demo, backend_name):
    engine = engine_of(storage)
    engine.dispose()  # one connection from now on, used by both
    seen: list[tuple[object, bool]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn, *_args) -> None:
        dbapi = conn.connection.dbapi_connection
        seen.append((dbapi, dbapi.autocommit))

    try:
        with unit_of_work(writes=False, replayable=True), transaction.manager:
            storage.get_user("testuser")
        with pytest.raises(RuntimeError), transaction.manager:  # the CLI's intent: writes
            storage.put_user(UserInfo(username="mallory", password_hash="x"))
            raise RuntimeError("abort")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len({id(dbapi) for dbapi, _ in seen}) == 1  # the same pooled connection
    assert seen[0][1] is True and all(not autocommit for _, autocommit in seen[1:])
    with transaction.manager:
        assert storage.get_user("mallory") is None  # rolled back


@pytest.mark.only_backends("sqlite")
def test_sqlite_reads_keep_their_transaction(storage, backend_name):
    assert read_in_autocommit(engine_of(storage), None) is False


@pytest.mark.parametrize(("statement", "read"), [
    ("SELECT users.username FROM users WHERE users.username = %(b)s", True),
    ("  select 1", True),
    ("(SELECT a FROM t) UNION (SELECT a FROM u)", True),
    ("WITH x AS (SELECT 1) SELECT * FROM x", True),
    ("SHOW transaction_isolation", True),
    ("SELECT last_updated, deleted_at FROM trash", True),
    ("UPDATE tokens SET last_used=%(v)s", False),
    ("INSERT INTO users (username) VALUES (%(u)s)", False),
    ("DELETE FROM grants", False),
    ("WITH new AS (INSERT INTO records DEFAULT VALUES RETURNING id) SELECT id FROM new",
     False),
    ("SELECT id FROM records FOR UPDATE", False),
    ("SELECT id FROM records FOR NO KEY UPDATE", False),
    ("SELECT id FROM records FOR KEY SHARE", False),
    ("SELECT * INTO copy FROM records", False),
    ("SELECT nextval('records_id_seq')", False),
    ("SAVEPOINT sa_savepoint_1", False),
    ("TRUNCATE records", False),
    ("LOCK TABLE records", False),
    ("CREATE TABLE t (a int)", False),
    ("", False),
])
def test_what_counts_as_a_read(statement, read):
    assert is_read(statement) is read


def test_a_replay_to_write_does_not_pause(monkeypatch):
    from types import SimpleNamespace

    from pyramid_sumatra import retry

    pauses: list[int] = []
    monkeypatch.setattr(retry, "backoff", pauses.append)
    retry.pause_before_retry(SimpleNamespace(exception=WriteUnderReadIntent("x"),
                                             environ={"retry.attempt": 0}))
    retry.pause_before_retry(SimpleNamespace(exception=RuntimeError("x"),
                                             environ={"retry.attempt": 0}))
    assert pauses == [0]

