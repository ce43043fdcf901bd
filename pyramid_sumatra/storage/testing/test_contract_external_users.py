"""Contract: users who log in elsewhere (source, display name, mail) and grants to groups
(``group:NAME``), as the login plugins store them."""

from __future__ import annotations

import transaction

from pyramid_sumatra.storage.types import ProjectInfo, UserInfo


def test_an_external_user_keeps_its_source_and_profile(store):
    with transaction.manager:
        store.put_user(UserInfo(username="ada", password_hash="!external", source="ldap",
                                display_name="Ada Lovelace", email="ada@example.org"))
        store.put_user(UserInfo(username="local", password_hash="h"))
    with transaction.manager:
        ada, local = store.get_user("ada"), store.get_user("local")
        assert (ada.source, ada.display_name, ada.email) == ("ldap", "Ada Lovelace",
                                                              "ada@example.org")
        assert (local.source, local.display_name, local.email) == ("", "", "")
        ada.display_name = "Ada King"
        store.put_user(ada)
    with transaction.manager:
        assert store.get_user("ada").display_name == "Ada King"
        assert {u.username: u.source for u in store.list_users()} == {"ada": "ldap",
                                                                       "local": ""}


def test_a_group_grant_is_stored_listed_and_survives_check(store):
    with transaction.manager:
        store.put_project(ProjectInfo(id="G", name="g"))
        store.set_grant("G", "group:physics-lab", "write")
    with transaction.manager:
        assert store.get_grants("G") == {"group:physics-lab": "write"}
        assert [p.id for p in store.list_projects(["someone", "group:physics-lab"])] == ["G"]
        assert store.list_projects(["group:other"]) == []
    report = store.check(repair=True)
    assert not any("physics-lab" in line for line in report["problems"]), report
    with transaction.manager:
        assert store.get_grants("G") == {"group:physics-lab": "write"}
