"""The machine's limits: bare WSGI apps served exactly like the real one.

``get_app`` answers every request with a fixed ~3 KB JSON document (the GET
ceiling); ``put_app`` inserts each request body into SQLite with the PRAGMAs of
backends/sqlalchemy (WAL, synchronous=FULL), one transaction per request (the
PUT ceiling). Both are PasteDeploy factories (``use = call:bench.ceilings:get_app``)
so pserve runs them under the same ``[server:main]``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any

from .workload import body, label

_JSON_HEADERS = [("Content-Type", "application/json; charset=utf-8")]


def get_app(global_config: dict | None = None, **settings: Any):
    document = body("ceiling", label(1), 1)
    headers = [*_JSON_HEADERS, ("Content-Length", str(len(document)))]

    def app(environ, start_response):
        start_response("200 OK", headers)
        return [document]

    return app


def put_app(global_config: dict | None = None, **settings: Any):
    path = settings["database"]
    local = threading.local()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS records "
                   "(label TEXT PRIMARY KEY, body TEXT NOT NULL)")

    def connection() -> sqlite3.Connection:
        if not hasattr(local, "db"):
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            local.db = db
        return local.db

    def app(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = environ["wsgi.input"].read(length)
        db = connection()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO records VALUES (?, ?)",
                   (environ["PATH_INFO"], data.decode("utf-8")))
        db.execute("COMMIT")
        answer = json.dumps({"stored": len(data)}).encode()
        start_response("201 Created", [*_JSON_HEADERS, ("Content-Length", str(len(answer)))])
        return [answer]

    return app
