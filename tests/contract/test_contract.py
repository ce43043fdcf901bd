"""The contract suite shipped in pyramid_sumatra.storage.testing, collected here so that it
runs on every backend of tests/conftest.py (``--backends`` narrows them)."""

import pytest
import transaction

from pyramid_sumatra.storage.hookspecs import CAPABILITIES, OPTIONAL_STORAGE_HOOKS
from pyramid_sumatra.storage.testing import suite_namespace
from pyramid_sumatra.storage.types import UserInfo

globals().update(suite_namespace())


# The suite's backend is tests/conftest.py's parametrised one.
@pytest.fixture
def sumatra_backend_name(backend_name: str) -> str:
    return backend_name


@pytest.fixture
def sumatra_settings(app_settings: dict) -> dict:
    return app_settings


def test_the_built_in_backends_have_every_capability(store, backend_name):
    """The optional hooks are optional for plugins, not for ours; only the filesystem
    backend leaves searching to the app's reference evaluator, and reads a project and a
    record with two hooks (it has no round trips to save)."""
    lacking = [hook for hook in OPTIONAL_STORAGE_HOOKS if not store.implements(hook)]
    assert lacking == ([*CAPABILITIES["project_record"], *CAPABILITIES["search"]]
                       if backend_name == "filesystem" else [])


def test_the_built_in_backends_keep_the_groups_an_oidc_login_reported(store):
    """The suite lets a plugin leave ``UserInfo.groups`` out (None); ours keep them."""
    with transaction.manager:
        store.put_user(UserInfo(username="carol", password_hash="!external", source="oidc",
                                groups=("physics-lab",), groups_seen="2026-11-30 12:00:00"))
    with transaction.manager:
        carol = store.get_user("carol")
        assert (carol.groups, carol.groups_seen) == (("physics-lab",),
                                                      "2026-11-30 12:00:00")
