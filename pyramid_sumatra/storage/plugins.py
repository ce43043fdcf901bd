"""The plugin manager: loads the configured backend and any extra plugins."""

from __future__ import annotations

import inspect
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

import pluggy

from ..passwords import BuiltinAuthenticator
from . import hookspecs
from .hookspecs import PROJECT_NAME, STORAGE_HOOKS

BACKEND_GROUP = "pyramid_sumatra.backends"
PLUGIN_GROUP = "pyramid_sumatra.plugins"


class PluginError(RuntimeError):
    """The configured plugins cannot make a working app; the message says why."""


def _entry_point(group: str, name: str):
    found = [ep for ep in entry_points(group=group) if ep.name == name]
    if not found:
        known = sorted({ep.name for ep in entry_points(group=group)})
        raise PluginError(
            f"unknown {'backend' if group == BACKEND_GROUP else 'plugin'} {name!r}: "
            f"entry points in group {group!r} are {known or 'none'}"
        )
    return found[0]


def _load(group: str, name: str, settings: dict[str, Any]) -> object:
    """Load an entry point name, or a ``module:attr`` / dotted module name."""
    if ":" in name:
        module, _, attr = name.partition(":")
        obj = getattr(import_module(module), attr)
    elif "." in name and not any(ep.name == name for ep in entry_points(group=group)):
        obj = import_module(name)
    else:
        obj = _entry_point(group, name).load()
    # A factory (function or class) gets the settings; a module is the plugin itself.
    if callable(obj) and not inspect.ismodule(obj):
        obj = obj(settings)
    return obj


def _names(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return (value or "").split()


def create_plugin_manager(settings: dict[str, Any]) -> pluggy.PluginManager:
    """Build the plugin manager for ``settings``, or raise PluginError.

    Registers the built-in authentication hook, the backend named by
    ``sumatra.backend`` and the plugins named by ``sumatra.plugins``.
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(BuiltinAuthenticator(pm), name="builtin-authenticate")
    backend_name = settings.get("sumatra.backend", "sqlalchemy")
    try:
        backend = _load(BACKEND_GROUP, backend_name, settings)
        pm.register(backend, name=f"backend:{backend_name}")
        for name in _names(settings.get("sumatra.plugins")):
            pm.register(_load(PLUGIN_GROUP, name, settings), name=f"plugin:{name}")
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"plugin {exc.plugin!r} does not match the hook specifications: {exc}") from None
    missing = [
        hook
        for hook in STORAGE_HOOKS
        if not any(not impl.hookwrapper and not impl.wrapper
                   for impl in getattr(pm.hook, hook).get_hookimpls())
    ]
    if missing:
        raise PluginError(f"backend {backend_name!r} does not implement {', '.join(missing)}")
    return pm
