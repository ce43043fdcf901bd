"""The contract suite covers every storage hook, and every hook is documented.

That each hook was also *called* for the backend under test is checked when the
session finishes (see :mod:`pyramid_sumatra.storage.testing`), whatever the order.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from pyramid_sumatra.storage import Storage, hookspecs
from pyramid_sumatra.storage.hookspecs import OPTIONAL_STORAGE_HOOKS, STORAGE_HOOKS

HERE = Path(__file__).parent
#: The optional hooks too: every built-in backend implements them.
ALL_HOOKS = STORAGE_HOOKS + OPTIONAL_STORAGE_HOOKS


def facade_methods() -> dict[str, str]:
    """hook name → the Storage method that calls it."""
    found = {}
    for name, method in inspect.getmembers(Storage, inspect.isfunction):
        for hook in re.findall(r"self\.hook\.(sumatra_\w+)", inspect.getsource(method)):
            found.setdefault(hook, name)
    return found


def test_every_storage_hook_is_documented():
    for name in ALL_HOOKS:
        spec = getattr(hookspecs, name)
        doc = inspect.getdoc(spec) or ""
        assert len(doc) > 20, f"{name} has no docstring saying what it returns"
        assert spec.pyramid_sumatra_spec["firstresult"], f"{name} must be firstresult"


def test_every_storage_hook_has_a_facade_method_used_by_the_suite():
    methods = facade_methods()
    source = "\n".join(p.read_text() for p in HERE.glob("test_contract_*.py"))
    for hook in ALL_HOOKS:
        assert hook in methods, f"Storage has no method calling {hook}"
        used = re.search(rf"\.{methods[hook]}\(", source) or hook in source.replace(
            "STORAGE_HOOKS", "")
        assert used, f"the contract suite never calls Storage.{methods[hook]} ({hook})"

