"""What history costs a PUT: in-process CPU time per PUT with and without history.

``python -m bench.history [--puts N] [--rounds R]`` builds the WSGI app twice over
SQLite (WebTest, in this process, no network): once as shipped, once with the
backend's history and trash hooks masked (the "before 0.2.0" cost). Each round PUTs
N new records then PUTs each again with a changed reason (an update: a diff and an
entry); the best round of each is reported, as CPU seconds per PUT (process time,
so a loaded machine slows the wall clock more than this). The goal: at most 1.3x.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import time
from pathlib import Path

import transaction
import webtest

from pyramid_sumatra import build_storage, main, resolve_settings
from pyramid_sumatra.services import users
from pyramid_sumatra.storage.hookspecs import HISTORY_HOOKS, TRASH_HOOKS

from .workload import record

GOAL = 1.3
_AUTH = {"Authorization": "Basic " + base64.b64encode(b"bench:benchpw").decode(),
         "Content-Type": "application/vnd.sumatra.record-v4+json"}


def no_history_backend(settings: dict):
    """The SQLAlchemy backend with the history and trash hookimpls masked."""
    from pyramid_sumatra_backends.sqlalchemy import SqlAlchemyBackend

    masked = dict.fromkeys(HISTORY_HOOKS + TRASH_HOOKS)
    return type("NoHistoryBackend", (SqlAlchemyBackend,), masked)(settings)


def make_app(directory: Path, history: bool) -> webtest.TestApp:
    settings = {"sumatra.backend": "sqlalchemy" if history else
                "bench.history:no_history_backend",
                "sqlalchemy.url": f"sqlite:///{directory}/{'h' if history else 'n'}.sqlite",
                "sumatra.initdb": "true", "sumatra.secret": "b" * 32}
    storage = build_storage(resolve_settings(settings))
    storage.initialize()
    assert storage.history_available == history
    with transaction.manager:
        users.add_user(storage, "bench", "benchpw")
    storage.dispose()
    return webtest.TestApp(main({}, **settings))


def one_round(app: webtest.TestApp, project: str, puts: int) -> float:
    """CPU seconds per PUT over ``puts`` creates and ``puts`` updates."""
    docs = [record(project, f"r{i:05d}", i) for i in range(puts)]
    bodies = [json.dumps(d).encode() for d in docs]
    updates = [json.dumps({**d, "reason": d["reason"] + " (annotated)"}).encode()
               for d in docs]
    start = time.process_time()
    for doc, body in zip(docs, bodies, strict=True):
        app.put(f"/{project}/{doc['label']}/", body, headers=_AUTH, status=201)
    for doc, body in zip(docs, updates, strict=True):
        app.put(f"/{project}/{doc['label']}/", body, headers=_AUTH, status=200)
    return (time.process_time() - start) / (2 * puts)


def measure(puts: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        apps = {"without": make_app(Path(directory), False),
                "with": make_app(Path(directory), True)}
        best = {name: float("inf") for name in apps}
        for r in range(rounds):
            for name, app in apps.items():  # interleaved: load on the machine hits both
                best[name] = min(best[name], one_round(app, f"bench{r}", puts))
    return {**best, "ratio": best["with"] / best["without"]}


def main_cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__)
    parser.add_argument("--puts", type=int, default=300, help="records per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the best counts")
    args = parser.parse_args(argv)
    got = measure(args.puts, args.rounds)
    print(f"CPU per PUT without history: {got['without'] * 1e3:.3f} ms")
    print(f"CPU per PUT with history:    {got['with'] * 1e3:.3f} ms")
    print(f"ratio: {got['ratio']:.2f} (goal: at most {GOAL})")
    return 0 if got["ratio"] <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main_cli())
