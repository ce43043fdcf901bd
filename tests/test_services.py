"""The services (pyramid_sumatra/services) on a real Storage, on each backend; their errors as
HTTP; and the last-admin rule through the API and the forms (the CLI: tests/test_cli.py)."""

from __future__ import annotations

import argon2
import pytest
import transaction
from conftest import basic
from pyramid.httpexceptions import HTTPBadRequest, HTTPConflict, HTTPNotFound
from test_ui_forms import csrf, flashes
from test_ui_pages import HTML, login

from pyramid_sumatra.limits import Limits
from pyramid_sumatra.records import InvalidRecord
from pyramid_sumatra.services import grants, projects, records, users
from pyramid_sumatra.services.errors import (
    Conflict,
    InvalidInput,
    LastAdmin,
    NotFound,
    ServiceError,
    UnknownUser,
)
from pyramid_sumatra.storage.types import ANONYMOUS
from pyramid_sumatra.views import http_error

LIMITS = Limits(max_body_size=10_000, max_tags=3, max_tag_length=8)
_CHEAP = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def store(storage, monkeypatch):
    """The Storage facade with cheap password hashing and users alice and bob."""
    monkeypatch.setattr("pyramid_sumatra.services.users.hash_password", _CHEAP.hash)
    with transaction.manager:
        users.add_user(storage, "alice", "alice-pw")
        users.add_user(storage, "bob", "bob-pw1")
    return storage


def doc(label: str = "r1", **fields) -> dict:
    return {"label": label, "timestamp": "2024-01-31 10:15:00", **fields}


def save(store, incoming: dict, media_version: str = "v4", project: str = "P", user="alice"):
    with transaction.manager:
        return records.save_record(store, project, incoming["label"], incoming, media_version,
                                   user=user, limits=LIMITS)


# -- records ---------------------------------------------------------------------------


def test_first_record_creates_the_project_with_its_creator_as_admin(store):
    record, created = save(store, doc(reason="first"))
    assert created and record.label == "r1"
    with transaction.manager:
        assert store.get_project("P").name == "P"
        assert store.get_grants("P") == {"alice": "admin"}
        assert store.get_record("P", "r1").document["reason"] == "first"


def test_a_project_created_meanwhile_is_no_conflict_for_a_record(store):
    """A sweep's first records race to create the project: the loser stores its record
    into the winner's project (a 409 there was found under SIGKILL load on PostgreSQL)
    and is granted nothing."""
    with transaction.manager:
        projects.create_project(store, "P", "bob")
    record, created = save(store, doc(reason="second writer"))
    assert created
    with transaction.manager:
        assert store.get_grants("P") == {"bob": "admin"}
        with pytest.raises(Conflict):
            projects.create_project(store, "P", "carol")


def test_second_save_merges_and_an_unchanged_one_keeps_its_revision(store):
    first, _ = save(store, doc(main_file="a.py", reason="first", duration=1))
    second, created = save(store, doc(main_file="b.py", reason="second", duration=2))
    assert not created and second.revision != first.revision
    assert (second.document["main_file"], second.document["reason"],
            second.document["duration"]) == ("a.py", "second", 2)  # run description kept
    again, created = save(store, doc(main_file="b.py", reason="second", duration=2))
    assert not created and again.revision == second.revision
    with transaction.manager:
        assert store.get_record("P", "r1").revision == second.revision


def test_v3_input_gets_a_null_creation(store):
    record, _ = save(store, doc(output_data=[{"path": "out.dat"}]), media_version="v3")
    assert record.document["output_data"] == [{"path": "out.dat", "creation": None}]


@pytest.mark.parametrize(("incoming", "field"), [
    (doc(label="other"), "label"),
    (doc(tags=["a", "b", "c", "d"]), "tags"),  # over LIMITS.max_tags
    (doc(tags=["much-too-long"]), "tags"),
    (doc(duration="long"), "duration"),
    ({"label": "r1"}, "timestamp"),
])
def test_refused_records_name_the_field_and_store_nothing(store, incoming, field):
    with pytest.raises(InvalidInput) as caught, transaction.manager:
        records.save_record(store, "P", "r1", incoming, "v4", user="alice", limits=LIMITS)
    assert caught.value.field == field and caught.value.error == f"invalid {field}"
    assert isinstance(caught.value, InvalidRecord)  # one class, under its old name too
    with transaction.manager:
        assert store.get_project("P") is None


def test_a_label_that_can_never_be_a_url_is_refused(store):
    with pytest.raises(InvalidInput, match="reserved") as caught, transaction.manager:
        records.save_record(store, "P", "last", doc("last"), "v4", user="alice", limits=LIMITS)
    assert caught.value.field == "label"


def test_save_annotations_changes_only_annotations(store):
    save(store, doc(reason="r", outcome="o", tags=["x"], main_file="m.py"))
    with transaction.manager:
        stored = store.get_record("P", "r1")
        assert records.save_annotations(store, stored, {"outcome": "new", "tags": "x, y"},
                                        limits=LIMITS)
    with transaction.manager:
        edited = store.get_record("P", "r1")
        assert not records.save_annotations(store, edited, {"outcome": "new"}, limits=LIMITS)
    assert (edited.document["outcome"], edited.tags, edited.document["main_file"]) == (
        "new", ["x", "y"], "m.py")
    with pytest.raises(InvalidInput, match="at most 3 tags"):
        records.save_annotations(store, edited, {"tags": "a,b,c,d"}, limits=LIMITS)


def test_tag_records_adds_removes_and_reports_refusals(store):
    save(store, doc("r1", tags=["a"]))
    save(store, doc("r2", tags=["a", "b", "c"]))
    with transaction.manager:
        changed, refused = records.tag_records(store, "P", ["r1", "r2", "ghost"], ["new"],
                                               add=True, limits=LIMITS)
    assert changed == 1 and list(refused) == ["r2"] and refused["r2"].field == "tags"
    with transaction.manager:
        changed, refused = records.tag_records(store, "P", ["r1", "r2"], ["a"], add=False,
                                               limits=LIMITS)
        assert (changed, refused) == (2, {})
        assert store.get_record("P", "r1").tags == ["new"]
        assert store.get_record("P", "r2").tags == ["b", "c"]


def test_deletes(store):
    for label, tags in (("r1", ["t"]), ("r2", ["t"]), ("r3", []), ("r4", [])):
        save(store, doc(label, tags=tags))
    with transaction.manager:
        records.delete_record(store, "P", "r4")
        with pytest.raises(NotFound, match="no record 'r4'"):
            records.delete_record(store, "P", "r4")
        assert records.delete_records(store, "P", ["r3", "r4"]) == 1
        assert records.delete_tagged(store, "P", "t") == 2
    with transaction.manager:
        assert store.get_project("P").record_count == 0


# -- projects --------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "error", "field"), [
    (("_hidden",), InvalidInput, "id"),
    (("a/b",), InvalidInput, "id"),
    (("Q", 5), InvalidInput, "name"),
    (("Q", "ok", "nul\x00"), InvalidInput, "description"),
    (("Old",), Conflict, None),
])
def test_create_project_refusals(store, args, error, field):
    with transaction.manager:
        projects.create_project(store, "Old", None)
    with pytest.raises(error) as caught, transaction.manager:
        projects.create_project(store, args[0], "alice", *args[1:])
    assert getattr(caught.value, "field", None) == field
    with transaction.manager:
        assert [p.id for p in store.list_projects(None)] == ["Old"]
        assert store.get_grants("Old") == {}


def test_create_update_delete_project(store):
    with transaction.manager:
        created = projects.create_project(store, "Q", "bob", None, "about Q")
        assert (created.name, created.description) == ("Q", "about Q")
    with transaction.manager:
        assert store.get_grants("Q") == {"bob": "admin"}
        info = store.get_project("Q")
        projects.update_project(store, info, {"name": "Queue", "description": None})
    with transaction.manager:
        assert (store.get_project("Q").name, store.get_project("Q").description) == (
            "Queue", "about Q")
        with pytest.raises(InvalidInput):
            projects.update_project(store, info, {"description": 3})
        projects.delete_project(store, "Q")
    with transaction.manager, pytest.raises(NotFound, match="no project 'Q'"):
        projects.delete_project(store, "Q")


# -- grants ----------------------------------------------------------------------------


@pytest.fixture
def owned(store) -> str:
    """Project P, with alice its only admin."""
    with transaction.manager:
        projects.create_project(store, "P", "alice")
    return "P"


@pytest.mark.parametrize(("project", "user", "role", "error", "detail"), [
    ("Nope", "bob", "read", NotFound, "no project 'Nope'"),
    ("P", "", "read", InvalidInput, "name the user"),
    ("P", None, "read", InvalidInput, "name the user"),
    ("P", "bob", "owner", InvalidInput, "role must be one of"),
    ("P", "ghost", "read", UnknownUser, "there is no user 'ghost'"),
    ("P", "alice", "write", LastAdmin, "only admin"),
])
def test_grant_refusals(store, owned, project, user, role, error, detail):
    with pytest.raises(error, match=detail), transaction.manager:
        grants.grant(store, project, user, role)
    with transaction.manager:
        assert store.get_grants("P") == {"alice": "admin"}


def test_anonymous_only_ever_reads(store, owned):
    with transaction.manager:
        assert grants.grant(store, owned, ANONYMOUS, "admin") == "read"
        assert store.get_grants(owned)[ANONYMOUS] == "read"


def test_last_admin_is_kept_until_another_admin_exists(store, owned):
    with transaction.manager:
        with pytest.raises(LastAdmin):
            grants.revoke(store, owned, "alice")
        grants.grant(store, owned, "bob", "admin")
        grants.grant(store, owned, "alice", "read")  # bob is admin now
        with pytest.raises(LastAdmin, match="'bob' is the project's only admin"):
            grants.revoke(store, owned, "bob")
        grants.revoke(store, owned, "alice")
        with pytest.raises(NotFound, match="'alice' holds no grant"):
            grants.revoke(store, owned, "alice")
    with transaction.manager:
        assert store.get_grants(owned) == {"bob": "admin"}


# -- users -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "password", "error", "detail"), [
    ("../evil", "long enough", InvalidInput, "username"),
    ("anonymous", "long enough", InvalidInput, "reserved"),
    ("alice", "long enough", Conflict, "user 'alice' exists"),
    ("carol", "short", InvalidInput, "at least 6"),
])
def test_add_user_refusals(store, name, password, error, detail):
    with pytest.raises(error, match=detail), transaction.manager:
        users.add_user(store, name, password)
    with transaction.manager:
        assert [u.username for u in store.list_users()] == ["alice", "bob"]


def test_add_set_password_delete_user(store):
    with transaction.manager:
        added = users.add_user(store, "carol", "carol-pw", admin=True)
        assert added.is_admin and added.password_hash.startswith("$argon2")
    with transaction.manager:
        users.set_password(store, "carol", "new-pw-1")
        with pytest.raises(InvalidInput, match="at least 6"):
            users.set_password(store, "carol", "x")
    with transaction.manager:
        assert store.authenticate("carol", "new-pw-1")
        users.delete_user(store, "carol")
        with pytest.raises(UnknownUser, match="no user 'carol'"):
            users.delete_user(store, "carol")
        with pytest.raises(UnknownUser):
            users.set_password(store, "carol", "whatever")


# -- errors as HTTP --------------------------------------------------------------------


@pytest.mark.parametrize(("exc", "status", "body"), [
    (InvalidInput("tags", "too many"), HTTPBadRequest,
     {"error": "invalid tags", "detail": "too many", "field": "tags"}),
    (UnknownUser("ghost"), HTTPBadRequest,
     {"error": "unknown user", "detail": "there is no user 'ghost'"}),
    (LastAdmin("alice"), HTTPBadRequest,
     {"error": "last admin", "detail": "'alice' is the project's only admin; grant another "
                                       "admin first"}),
    (NotFound("no project 'P'"), HTTPNotFound, {"error": "not found", "detail": "no project 'P'"}),
    (Conflict("taken"), HTTPConflict, {"error": "conflict", "detail": "taken"}),
    (ServiceError("no"), HTTPBadRequest, {"error": "invalid request", "detail": "no"}),
])
def test_http_error(exc, status, body):
    response = http_error(exc)
    assert type(response) is status and response.json_body == body


# -- the last admin through every entry point -------------------------------------------


@pytest.fixture
def sole_admin(testapp, storage) -> str:
    """Project Mine, created over the API by testuser (its only admin); alice may be granted."""
    testapp.put("/Mine/", "{}", headers={**basic(), "Content-Type": "application/json"},
                status=201)
    with transaction.manager:
        users.add_user(storage, "alice", "alice-pw")
    return "Mine"


@pytest.mark.parametrize("change", ["revoke", "demote"])
def test_last_admin_over_the_api(testapp, storage, sole_admin, change):
    if change == "revoke":
        res = testapp.delete(f"/{sole_admin}/permissions/?user=testuser", headers=basic(),
                             status=400)
    else:
        res = testapp.post_json(f"/{sole_admin}/permissions/",
                                {"user": "testuser", "role": "write"}, headers=basic(),
                                status=400)
    assert res.json["error"] == "last admin" and "only admin" in res.json["detail"]
    with transaction.manager:
        assert storage.get_grants(sole_admin) == {"testuser": "admin"}


@pytest.mark.parametrize(("form", "fields"), [
    ("@@revoke", {"user": "testuser"}),
    ("@@grant", {"user": "testuser", "role": "read"}),
])
def test_last_admin_in_the_forms(testapp, storage, sole_admin, form, fields):
    login(testapp)
    res = testapp.post(f"/{sole_admin}/permissions/{form}",
                       {**fields, "csrf_token": csrf(testapp)}, headers=HTML, status=303)
    assert "'testuser' is the project's only admin" in flashes(res.follow(headers=HTML))[0]
    with transaction.manager:
        assert storage.get_grants(sole_admin) == {"testuser": "admin"}

# The CLI's grant and revoke: tests/test_cli.py, test_cli_keeps_the_last_admin.


def test_the_create_form_flashes_the_refusal_with_the_id_as_typed(testapp):
    login(testapp)
    res = testapp.post("/@@create", {"id": "Bad!Id", "csrf_token": csrf(testapp)},
                       headers=HTML, status=303)
    assert flashes(res.follow(headers=HTML))[0].startswith(
        "Project id 'Bad!Id' may contain only letters")
