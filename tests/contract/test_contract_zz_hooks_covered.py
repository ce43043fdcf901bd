"""The contract suite covers every storage hook, and every hook is documented."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from conftest import CALLED_HOOKS

from pyramid_sumatra.storage import Storage, hookspecs
from pyramid_sumatra.storage.hookspecs import STORAGE_HOOKS

HERE = Path(__file__).parent


def facade_methods() -> dict[str, str]:
    """hook name → the Storage method that calls it."""
    found = {}
    for name, method in inspect.getmembers(Storage, inspect.isfunction):
        for hook in re.findall(r"self\.hook\.(sumatra_\w+)", inspect.getsource(method)):
            found.setdefault(hook, name)
    return found


def test_every_storage_hook_is_documented():
    for name in STORAGE_HOOKS:
        spec = getattr(hookspecs, name)
        doc = inspect.getdoc(spec) or ""
        assert len(doc) > 20, f"{name} has no docstring saying what it returns"
        assert spec.pyramid_sumatra_spec["firstresult"], f"{name} must be firstresult"


def test_every_storage_hook_has_a_facade_method_used_by_the_suite():
    methods = facade_methods()
    source = "\n".join(p.read_text() for p in HERE.glob("test_contract_*.py"))
    for hook in STORAGE_HOOKS:
        assert hook in methods, f"Storage has no method calling {hook}"
        used = re.search(rf"\.{methods[hook]}\(", source) or hook in source.replace(
            "STORAGE_HOOKS", "")
        assert used, f"the contract suite never calls Storage.{methods[hook]} ({hook})"


def test_every_storage_hook_was_called(request, backend_name):
    """After the whole suite ran for this backend (this module sorts last), each hook was called."""
    others = {p.name for p in HERE.glob("test_contract_*.py")} - {Path(__file__).name}
    ran = {Path(str(item.fspath)).name for item in request.session.items
           if getattr(item, "callspec", None)
           and item.callspec.params.get("backend_name") == backend_name}
    if not others <= ran:
        pytest.skip("checks what was called only when the whole contract suite runs")
    called = CALLED_HOOKS.get(backend_name, set())
    if not called:
        pytest.skip(f"no contract test ran for {backend_name}")
    missing = sorted(set(STORAGE_HOOKS) - called)
    assert missing == [], f"hooks never called for {backend_name}: {missing}"
