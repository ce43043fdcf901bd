"""The plugin manager: the backend is chosen by name; bad plugins stop start-up clearly."""

from __future__ import annotations

import inspect

import pytest
from conftest import plugin_module

from pyramid_sumatra import main
from pyramid_sumatra.storage import hookspecs
from pyramid_sumatra.storage.hookspecs import STORAGE_HOOKS, hookimpl
from pyramid_sumatra.storage.plugins import PluginError, create_plugin_manager


def settings(tmp_path, **extra) -> dict:
    return {"sumatra.backend": "sqlalchemy",
            "sqlalchemy.url": f"sqlite:///{tmp_path}/p.sqlite", **extra}


def test_every_hookspec_has_a_docstring_and_storage_hooks_are_specs():
    specs = {name: obj for name, obj in inspect.getmembers(hookspecs, inspect.isfunction)
             if name.startswith("sumatra_")}
    assert set(STORAGE_HOOKS) <= set(specs)
    for name, spec in specs.items():
        assert spec.__doc__ and len(spec.__doc__.strip()) > 20, name


def test_unknown_backend(tmp_path):
    with pytest.raises(PluginError, match="unknown backend 'nope'.*sqlalchemy"):
        main({}, **settings(tmp_path, **{"sumatra.backend": "nope"}))


class Mismatched:
    @hookimpl
    def sumatra_get_record(self, project_id, label, extra_argument):
        return None


def test_hookimpl_not_matching_its_spec(tmp_path, monkeypatch):
    name = plugin_module(monkeypatch, "bad_plugin_for_test", Mismatched())
    with pytest.raises(PluginError, match="does not match the hook specifications"):
        create_plugin_manager(settings(tmp_path, **{"sumatra.plugins": name}))


class Incomplete:
    @hookimpl
    def sumatra_get_record(self, project_id, label):
        return None


def test_backend_missing_hooks(tmp_path, monkeypatch):
    name = plugin_module(monkeypatch, "incomplete_backend_for_test", Incomplete())
    with pytest.raises(PluginError, match="does not implement .*sumatra_put_record"):
        create_plugin_manager({"sumatra.backend": name})


class Counting:
    """A wrapper plugin: sees every record write, changes nothing."""

    def __init__(self):
        self.saved: list[str] = []

    @hookimpl(wrapper=True)
    def sumatra_put_record(self, record, create):
        result = yield
        self.saved.append(record.label)
        return result


def test_wrapper_plugin_sees_writes(tmp_path, monkeypatch):
    import transaction

    from pyramid_sumatra.records import build_stored_record
    from pyramid_sumatra.storage import Storage
    from pyramid_sumatra.storage.types import ProjectInfo

    counting = Counting()
    name = plugin_module(monkeypatch, "counting_plugin_for_test", counting)
    storage = Storage(create_plugin_manager(settings(tmp_path, **{"sumatra.plugins": name})))
    storage.initialize()
    with transaction.manager:
        storage.put_project(ProjectInfo(id="p"))
        storage.put_record(build_stored_record("p", {"label": "r1",
                                                     "timestamp": "2020-01-01 00:00:00"}),
                           create=True)
    assert counting.saved == ["r1"]
    with transaction.manager:
        assert storage.get_record("p", "r1").document["label"] == "r1"
    storage.dispose()
