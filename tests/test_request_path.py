"""The per-request path of a record: the user is read with the record, and still at once.

A GET of a record reads the project, its grants, the record and (on a backend that can)
the user the Basic credentials name in one query; the identity then asks nothing more.
The user is read in each request's own transaction, so a password change or a deleted
user takes effect at the next request.
"""

from __future__ import annotations

import pytest
import transaction
from conftest import basic
from sqlalchemy import event

from pyramid_sumatra.services.users import set_password

RECORD = "/TestProject/20111013-172503/"
ACCEPT = {"Accept": "application/vnd.sumatra.record-v4+json"}


def _engine(storage):
    for plugin in storage.pm.get_plugins():
        if hasattr(plugin, "engine"):
            return plugin.engine
    raise AssertionError("an SQL backend has an engine")


@pytest.mark.only_backends("sqlite", "postgresql")
def test_a_record_get_reads_the_user_with_the_record(testapp, wsgi_app, backend_name):
    engine = _engine(wsgi_app.registry["sumatra.storage"])
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def seen(conn, cursor, statement, *args) -> None:
        statements.append(" ".join(statement.split()))

    try:
        testapp.get(RECORD, headers={**ACCEPT, **basic()}, status=200)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # One query for the user, the project, its grants and the record; none for the user alone.
    reads = [s for s in statements if s.upper().startswith("SELECT")]
    assert len(reads) == 1, statements
    assert "users.username = " in reads[0], reads[0]


@pytest.mark.parametrize(("path", "found"), [
    (RECORD, 200), ("/TestProject/no-such-record/", 404), ("/NoSuchProject/x/", 404)])
def test_a_password_change_and_a_deleted_user_take_effect_at_the_next_request(
        testapp, storage, path, found):
    headers = {**ACCEPT, **basic()}
    testapp.get(path, headers=headers, status=found)
    testapp.get(path, headers={**ACCEPT, **basic(password="wrong-password")}, status=401)
    with transaction.manager:  # as another process would (the CLI, a second worker)
        set_password(storage, "testuser", "another-password")
    testapp.get(path, headers=headers, status=401)
    testapp.get(path, headers={**ACCEPT, **basic(password="another-password")}, status=found)
    with transaction.manager:
        storage.delete_user("testuser")
    testapp.get(path, headers={**ACCEPT, **basic(password="another-password")}, status=401)
