"""Sumatra Server: a Pyramid application storing Sumatra records through plugin backends."""

from __future__ import annotations

import gc
import logging
import os
import threading
from typing import Any

import transaction
from pyramid.config import Configurator
from pyramid.session import SignedCookieSessionFactory
from pyramid.settings import asbool

from .limits import limit_body
from .security import SecurityPolicy
from .storage import Storage
from .storage.plugins import create_plugin_manager

log = logging.getLogger(__name__)

DEFAULT_SETTINGS: dict[str, Any] = {
    "sumatra.backend": "sqlalchemy",
    "sumatra.plugins": "",
    "sumatra.initdb": "false",
    "sumatra.load_demo": "false",
    "sumatra.secret": "",
    "sumatra.secure_cookies": "false",
    "sumatra.require_secret": "false",
    "sumatra.session_max_age": "86400",
    # Limits (limits.py): request body bytes, tags per record, characters per tag.
    "sumatra.max_body_size": str(16 * 1024 * 1024),
    # Web forms (login, the UI's posts) are small; a bigger form body is 413 unread.
    "sumatra.max_form_size": str(1024 * 1024),
    "sumatra.max_tags": "100",
    "sumatra.max_tag_length": "100",
    # Failed logins per username before 429 + Retry-After; the longest wait (seconds).
    "sumatra.login_max_failures": "5",
    "sumatra.login_lockout_max": "300",
    # Directory / OpenID groups are asked again after this many seconds (auth/groups.py).
    "sumatra.groups_refresh_seconds": "300",
    # History entries kept per record (0: all); days purge keeps trash by default.
    "sumatra.history.keep": "100",
    "sumatra.trash.keep_days": "30",
    "retry.attempts": "10",
    # pyramid_tm would ask for the user outside the error views (a 401 became a 500).
    "tm.annotate_user": "false",
    # Move what the process has built at startup out of the collector's reach (see
    # freeze_startup_objects); "false" leaves the garbage collector as Python sets it.
    "sumatra.gc_freeze": "true",
}

#: Settings that production reads from the environment (variable → setting).
ENVIRONMENT_SETTINGS = {
    "SUMATRA_BACKEND": "sumatra.backend",
    "SUMATRA_DATABASE_URL": "sqlalchemy.url",
    "SUMATRA_FILESYSTEM_ROOT": "sumatra.filesystem.root",
    "SUMATRA_SECRET": "sumatra.secret",
    "SUMATRA_PLUGINS": "sumatra.plugins",
}

INSECURE_SECRETS = {"", "change-me", "changeme", "secret", "development-only-secret"}


def resolve_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Defaults, then the ini file, then the environment (for production)."""
    resolved = {**DEFAULT_SETTINGS, **settings}
    for variable, key in ENVIRONMENT_SETTINGS.items():
        if os.environ.get(variable):
            resolved[key] = os.environ[variable]
    return resolved


def _session_secret(settings: dict[str, Any]) -> str:
    secret = settings["sumatra.secret"]
    if secret in INSECURE_SECRETS or len(secret) < 16:
        if asbool(settings["sumatra.require_secret"]):
            raise RuntimeError(
                "sumatra.secret is missing or a default: set SUMATRA_SECRET to a long random "
                "string (e.g. python -c 'import secrets; print(secrets.token_hex(32))')")
        # Development: a per-process random secret (sessions end on restart).
        secret = os.urandom(32).hex()
    return secret


def build_storage(settings: dict[str, Any]) -> Storage:
    """The storage facade for resolved settings (used by the app and the CLI)."""
    storage = Storage(create_plugin_manager(settings))
    storage.history_keep = int(settings.get("sumatra.history.keep", 100))
    storage.trash_keep_days = int(settings.get("sumatra.trash.keep_days", 30))
    return storage


_frozen = threading.Lock()
_freeze_done = False


def freeze_startup_objects() -> bool:
    """``gc.freeze()`` once per process, after a collection: True the first time.

    The modules, the configuration and the registry live as long as the process, yet
    every full collection walks them again: in-process, with no other change, that was
    a tenth to a fifth of a GET record's CPU time (docs/benchmark.md, "Where the time
    goes"). Frozen objects are never collected, so this runs once (a test run building
    thousands of apps must not pin each one) and after ``gc.collect()`` (nothing that
    is garbage already is kept).
    """
    global _freeze_done
    with _frozen:
        if _freeze_done:
            return False
        _freeze_done = True
    gc.collect()
    gc.freeze()
    return True


def main(global_config: dict[str, Any] | None = None, **settings: Any):
    """The WSGI app factory (``[app:main] use = egg:pyramid_sumatra``)."""
    settings = resolve_settings(settings)
    storage = build_storage(settings)
    if asbool(settings["sumatra.initdb"]):
        storage.initialize()
    if asbool(settings["sumatra.load_demo"]):
        from .demo import DEMO_PASSWORD, DEMO_USER, load_demo_if_empty

        with transaction.manager:
            if load_demo_if_empty(storage):
                log.info("loaded the demo data into the empty store")
        log.info("demo login: user %s, password %s", DEMO_USER, DEMO_PASSWORD)

    with Configurator(settings=settings, root_factory="pyramid_sumatra.resources.root_factory") \
            as config:
        config.include("pyramid_tm")
        config.include("pyramid_retry")
        config.include(".retry")
        config.include("pyramid_jinja2")
        config.include(".intent")
        config.add_jinja2_renderer(".html")
        config.add_jinja2_search_path("pyramid_sumatra:templates", name=".html")
        config.registry["sumatra.storage"] = storage
        config.add_request_method(lambda request: storage, "storage", reify=True)
        config.set_session_factory(SignedCookieSessionFactory(
            _session_secret(settings),
            cookie_name="sumatra_session",
            httponly=True,
            samesite="Lax",
            secure=asbool(settings["sumatra.secure_cookies"]),
            max_age=int(settings["sumatra.session_max_age"]),
            timeout=int(settings["sumatra.session_max_age"]),
        ))
        config.set_security_policy(SecurityPolicy())
        config.include(".csrf")
        config.include(".views")
        config.include(".accesslog")
        config.include(".headers")
        config.include(".caching")
        config.include(".limits")
        config.include(".throttle")
        config.include(".views.api")
        config.add_static_view("_static", "pyramid_sumatra:static", cache_max_age=3600)
        app = config.make_wsgi_app()
    if asbool(settings["sumatra.gc_freeze"]):
        freeze_startup_objects()
    return limit_body(app, settings)
