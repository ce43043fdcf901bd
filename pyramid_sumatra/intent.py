"""Whether the current unit of work may write: a hint backends may use to lock early.

SQLite, for one, avoids lock-upgrade conflicts by starting write transactions
with ``BEGIN IMMEDIATE``. Requests set it from their method (a tween); the CLI
leaves the default (writes).
"""

from __future__ import annotations

from contextvars import ContextVar

write_intent: ContextVar[bool] = ContextVar("sumatra_write_intent", default=True)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def intent_tween_factory(handler, registry):
    def intent_tween(request):
        token = write_intent.set(request.method not in SAFE_METHODS)
        try:
            return handler(request)
        finally:
            write_intent.reset(token)

    return intent_tween


def includeme(config) -> None:
    # Outside pyramid_tm, so the hint is set before the transaction begins.
    config.add_tween("pyramid_sumatra.intent.intent_tween_factory",
                     over="pyramid_tm.tm_tween_factory")
