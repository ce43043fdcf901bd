"""Alembic migrations of the SQLAlchemy backend, on SQLite and PostgreSQL.

Each test gets its own empty database: a SQLite file, or a new PostgreSQL database
(dropped afterwards).
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
import transaction
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import POSTGRES

from pyramid_sumatra import build_storage, resolve_settings
from pyramid_sumatra.storage.types import RecordQuery
from pyramid_sumatra_backends.sqlalchemy import migrate
from pyramid_sumatra_backends.sqlalchemy.schema import metadata

DIALECTS = [pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)]

BODY = {"label": "r1", "timestamp": "2024-03-01 12:00:00", "reason": "before ✓",
        "tags": ["old", "kept"], "parameters": {"content": "a=1", "type": "Simple"},
        "future": [1, 2.5, None, {"deep": True}]}


@pytest.fixture(params=DIALECTS)
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/m.sqlite"
        return
    url = POSTGRES.create("sumatra_migrations_")
    yield url
    POSTGRES.drop(url)


@pytest.fixture
def engine(url):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def storage_for(url: str):
    store = build_storage(resolve_settings({"sumatra.backend": "sqlalchemy",
                                            "sqlalchemy.url": url}))
    return store


def insert_0001_data(engine) -> None:
    """Rows as the first schema held them (body as plain text)."""
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO users (username, password_hash, is_admin, created) "
            "VALUES ('alice', '$argon2id$x', true, '2024-01-01 00:00:00')"))
        conn.execute(sa.text(
            "INSERT INTO projects (id, name, description, created, last_updated, record_count)"
            " VALUES ('P', 'Project', 'd', '2024-01-01 00:00:00', '2024-03-01 12:00:00', 1)"))
        conn.execute(sa.text(
            "INSERT INTO grants (project_id, principal, role) VALUES ('P', 'alice', 'admin')"))
        conn.execute(sa.text(
            'INSERT INTO records (id, project_id, label, body, revision, timestamp, "user", '
            "main_file, version, executable, reason, outcome, duration) VALUES (1, 'P', 'r1', "
            ":body, 'rev1', '2024-03-01 12:00:00', '', '', '', '', 'before ✓', '', NULL)"),
            {"body": json.dumps(BODY, ensure_ascii=False)})
        conn.execute(sa.text("INSERT INTO record_tags (record_id, tag, project_id) "
                             "VALUES (1, 'old', 'P'), (1, 'kept', 'P')"))


def assert_data_preserved(url: str) -> None:
    store = storage_for(url)
    try:
        store.initialize()
        with transaction.manager:
            got = store.get_record("P", "r1")
            assert json.loads(got.body) == BODY
            assert got.revision == "rev1"
            assert [r.label for r in store.query_records(
                "P", RecordQuery(tags=["kept"])).records] == ["r1"]
            assert store.get_project("P").record_count == 1
            assert store.get_grants("P") == {"alice": "admin"}
            alice = store.get_user("alice")
            assert (alice.password_hash, alice.is_admin) == ("$argon2id$x", True)
    finally:
        store.dispose()


def schema_differences(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                metadata)


def test_every_migration_in_turn_gives_the_declared_schema(engine):
    assert migrate.upgrade(engine, "0001") == "0001"
    assert migrate.upgrade(engine) == migrate.head()
    assert schema_differences(engine) == []


def test_a_new_database_is_created_at_head(engine, url):
    store = storage_for(url)
    try:
        assert store.initialize() is True
    finally:
        store.dispose()
    with engine.connect() as conn:
        assert migrate.current(conn) == migrate.head()
    assert schema_differences(engine) == []


def test_upgrade_from_the_first_revision_keeps_data(engine, url):
    migrate.upgrade(engine, "0001")
    insert_0001_data(engine)
    assert_data_preserved(url)  # initialize upgrades to head
    with engine.connect() as conn:
        assert migrate.current(conn) == migrate.head()
        if engine.dialect.name == "postgresql":
            kind = conn.execute(sa.text(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'records' AND column_name = 'body'")).scalar()
            assert kind == "json"


def test_a_database_made_without_alembic_is_stamped_then_upgraded(engine, url):
    migrate.upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE alembic_version"))  # as metadata.create_all left it
    insert_0001_data(engine)
    assert_data_preserved(url)
    with engine.connect() as conn:
        assert migrate.current(conn) == migrate.head()
    assert schema_differences(engine) == []


def test_downgrade_and_upgrade_again_keep_data(engine, url):
    migrate.upgrade(engine, "0001")
    insert_0001_data(engine)
    migrate.upgrade(engine)
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0001")
    with engine.connect() as conn:
        assert migrate.current(conn) == "0001"
    assert_data_preserved(url)


@pytest.mark.postgres
def test_a_nul_in_an_old_body_stops_the_postgresql_upgrade_with_its_name():
    url = POSTGRES.create("sumatra_migrations_")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        migrate.upgrade(engine, "0001")
        insert_0001_data(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE records SET body = :b"),
                         {"b": json.dumps({**BODY, "stdout_stderr": "a\x00b"})})
        with pytest.raises(RuntimeError, match="P/r1"):
            migrate.upgrade(engine)
        with engine.connect() as conn:
            assert migrate.current(conn) == "0001"  # nothing half-done
    finally:
        engine.dispose()
        POSTGRES.drop(url)


def test_0004_adds_session_generations_and_tokens_keeping_data(engine, url):
    from alembic import command

    from pyramid_sumatra.storage.types import TokenInfo

    migrate.upgrade(engine, "0003")
    insert_0001_data(engine)
    assert migrate.upgrade(engine, "0004") == "0004"
    migrate.upgrade(engine)  # the storage code below is head's (0007 added user columns)
    store = storage_for(url)
    try:
        with transaction.manager:
            assert store.get_user("alice").session_generation == 0  # existing users: 0
            store.put_token(TokenInfo(id="a1b2c3d4e5f6", username="alice", name="t",
                                      secret_hash="0" * 64, created="2026-01-01"))
            assert store.bump_session_generation("alice") == 1
    finally:
        store.dispose()
    assert_data_preserved(url)
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0003")
    with engine.connect() as conn:
        assert migrate.current(conn) == "0003"
        assert not sa.inspect(conn).has_table("tokens")
        assert "session_generation" not in {c["name"] for c in sa.inspect(conn).get_columns(
            "users")}
        assert conn.execute(sa.text("SELECT password_hash FROM users")).scalar() == \
            "$argon2id$x"


def test_0007_adds_external_user_columns_keeping_users_local(engine, url):
    from alembic import command

    from pyramid_sumatra.storage.types import UserInfo

    migrate.upgrade(engine, "0004")
    insert_0001_data(engine)
    assert migrate.upgrade(engine, "0007") == "0007"
    with engine.connect() as conn:
        assert {"source", "display_name", "email"} <= {
            c["name"] for c in sa.inspect(conn).get_columns("users")}
    migrate.upgrade(engine)  # the storage code below is head's (0009 added user columns)
    store = storage_for(url)
    try:
        with transaction.manager:
            alice = store.get_user("alice")
            assert (alice.source, alice.display_name, alice.email) == ("", "", "")
            store.put_user(UserInfo(username="ada", password_hash="!external", source="ldap",
                                    display_name="Ada Lovelace", email="ada@example.org"))
        with transaction.manager:
            assert store.get_user("ada").display_name == "Ada Lovelace"
    finally:
        store.dispose()
    assert_data_preserved(url)
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0004")
    with engine.connect() as conn:
        assert "source" not in {c["name"] for c in sa.inspect(conn).get_columns("users")}


def test_0005_adds_history_and_trash_keeping_data(engine, url):
    from alembic import command

    from pyramid_sumatra.storage.types import HistoryEntry, TrashItem

    migrate.upgrade(engine, "0004")
    insert_0001_data(engine)
    assert migrate.upgrade(engine, "0005") == "0005"
    with engine.connect() as conn:  # (schema.py is head's: 0007 adds users' columns)
        assert sa.inspect(conn).has_table("history") and sa.inspect(conn).has_table("trash")
    store = storage_for(url)
    try:
        with transaction.manager:
            assert store.list_history("P", "r1", 10) == []  # old records: no history yet
            store.add_history(HistoryEntry(project_id="P", label="r1", id="0" * 16,
                                           at="2026-01-01 00:00:00.000000", action="edit",
                                           changes={"reason": {"old": "a", "new": "b"}}))
            store.put_trash(TrashItem(project_id="P", label="gone", body="{}",
                                      deleted_at="2026-01-01 00:00:00.000000"))
        with transaction.manager:
            assert store.list_history("P", "r1", 10)[0].changes["reason"]["new"] == "b"
            assert len(store.list_trash("P")) == 1
    finally:
        store.dispose()
    assert_data_preserved(url)
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0004")
    with engine.connect() as conn:
        assert migrate.current(conn) == "0004"
        assert not sa.inspect(conn).has_table("history")
        assert not sa.inspect(conn).has_table("trash")
    assert_data_preserved(url)


def test_0008_keeps_parameters_derived_from_existing_bodies(engine, url):
    from alembic import command

    from pyramid_sumatra.query import parse

    migrate.upgrade(engine, "0007")
    insert_0001_data(engine)
    with engine.begin() as conn:  # more rows than a batch, to cross a batch boundary
        for i in range(2, 1205):
            body = {**BODY, "label": f"r{i}", "parameters": {
                "type": "JSONParameterSet", "content": json.dumps({"n": i, "s": {"x": "a"}})}}
            conn.execute(sa.text(
                'INSERT INTO records (id, project_id, label, body, revision, timestamp, '
                '"user", main_file, version, executable, reason, outcome, duration) VALUES '
                "(:id, 'P', :label, :body, 'rev', '2024-03-01 12:00:00', '', '', '', '', '', "
                "'', NULL)"), {"id": i, "label": f"r{i}", "body": json.dumps(body)})
    assert migrate.upgrade(engine, "0008") == "0008"
    with engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT count(*) FROM records WHERE parameters IS NULL")).scalar() == 0
        # the numbers' index: r1's a, every other record's n (s.x is text)
        assert conn.execute(sa.text("SELECT count(*) FROM record_numbers")).scalar() == 1204
    store = storage_for(url)
    try:
        with transaction.manager:
            assert store.get_record("P", "r1").parameters == {"a": 1}
            assert store.get_record("P", "r1100").parameters == {"n": 1100, "s.x": "a"}
            page = store.search_records("P", RecordQuery(), parse("params.n >= 1200"))
            assert sorted(r.label for r in page.records) == [f"r{i}" for i in range(1200, 1205)]
    finally:
        store.dispose()
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0007")
    with engine.connect() as conn:
        assert "parameters" not in {c["name"] for c in sa.inspect(conn).get_columns("records")}
        assert not sa.inspect(conn).has_table("record_numbers")
    assert_data_preserved(url)


def test_0009_keeps_no_groups_for_existing_users_and_downgrades(engine, url):
    from alembic import command

    from pyramid_sumatra.storage.types import UserInfo

    migrate.upgrade(engine, "0008")
    insert_0001_data(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO users (username, password_hash, is_admin, created, source) "
            "VALUES ('carol', '!external', false, '2026-01-01 00:00:00', 'oidc')"))
    assert migrate.upgrade(engine, "0009") == "0009"
    store = storage_for(url)
    try:
        with transaction.manager:
            carol = store.get_user("carol")
            assert (carol.source, carol.groups, carol.groups_seen) == ("oidc", None, "")
            carol.groups, carol.groups_seen = ("physics-lab",), "2026-11-30 12:00:00"
            store.put_user(carol)
        with transaction.manager:
            assert store.get_user("carol").groups == ("physics-lab",)
            store.put_user(UserInfo(username="erin", password_hash="!external",
                                    source="oidc", groups=(), groups_seen="2026-11-30 12:00:00"))
        with transaction.manager:
            assert store.get_user("erin").groups == ()
    finally:
        store.dispose()
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0008")
    with engine.connect() as conn:
        assert migrate.current(conn) == "0008"
        columns = {c["name"] for c in sa.inspect(conn).get_columns("users")}
        assert "kept_groups" not in columns and "groups_seen" not in columns
        assert conn.execute(sa.text(
            "SELECT source FROM users WHERE username = 'carol'")).scalar() == "oidc"
    assert_data_preserved(url)
