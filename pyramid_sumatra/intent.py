"""Whether the current unit of work may write: a hint backends may use to lock early,
or to read without a transaction.

SQLite, for one, avoids lock-upgrade conflicts by starting write transactions
with ``BEGIN IMMEDIATE``; PostgreSQL runs a read-only request's statements in
autocommit (no BEGIN and COMMIT round trips). Requests set it from their method (a
tween); the CLI leaves the default (writes).

A read-intent request may still have to write (an API token's last use, an external
user's first login). A backend that reads without a transaction raises
``WriteUnderReadIntent`` before such a write; pyramid_retry replays the request, and
this tween gives the replay write intent. A GET that may write after a step it cannot
repeat (an OpenID Connect callback exchanges a one-time code) registers its path with
``add_unrepeatable_path``: its reads stay in a transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pyramid.config import Configurator
from pyramid_retry import is_last_attempt, mark_error_retryable

write_intent: ContextVar[bool] = ContextVar("sumatra_write_intent", default=True)
#: Whether a write under read intent can still be replayed with write intent (not the
#: request's last attempt): only then may a backend refuse it.
_replayable: ContextVar[bool] = ContextVar("sumatra_replayable", default=False)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: In the WSGI environ, which pyramid_retry keeps across the attempts of a request.
REPLAY_AS_WRITER = "sumatra.replay_as_writer"
#: Registry key: paths (PATH_INFO) whose requests must not be replayed to write.
UNREPEATABLE_PATHS = "sumatra.unrepeatable_paths"


class WriteUnderReadIntent(Exception):
    """A backend refused a write in a unit of work without write intent; nothing of it
    was sent. pyramid_retry replays the request, with write intent."""


mark_error_retryable(WriteUnderReadIntent)


def autocommit_reads() -> bool:
    """Whether the unit of work may run its reads without a transaction: it has no
    write intent, and a write it turns out to need can be replayed."""
    return not write_intent.get() and _replayable.get()


@contextmanager
def unit_of_work(writes: bool, replayable: bool = False) -> Iterator[None]:
    """Run the block with this intent; ``replayable``: a write under read intent may be
    refused (the caller replays the unit with write intent)."""
    tokens = write_intent.set(writes), _replayable.set(replayable and not writes)
    try:
        yield
    finally:
        write_intent.reset(tokens[0])
        _replayable.reset(tokens[1])


def add_unrepeatable_path(config: Configurator, path: str) -> None:
    """Requests to ``path`` are never replayed to write (see the module's docstring)."""
    config.registry.setdefault(UNREPEATABLE_PATHS, set()).add(path)


def intent_tween_factory(handler, registry):
    unrepeatable = frozenset(registry.get(UNREPEATABLE_PATHS, ()))

    def intent_tween(request):
        environ = request.environ
        writes = request.method not in SAFE_METHODS or REPLAY_AS_WRITER in environ
        # The last attempt (or the only one: retry.attempts = 1) cannot be replayed.
        replayable = not is_last_attempt(request) and request.path_info not in unrepeatable
        try:
            with unit_of_work(writes, replayable):
                response = handler(request)
        except WriteUnderReadIntent:
            environ[REPLAY_AS_WRITER] = True
            raise
        # An exception view may have answered it (pyramid_retry still replays).
        if isinstance(getattr(request, "exception", None), WriteUnderReadIntent):
            environ[REPLAY_AS_WRITER] = True
        return response

    return intent_tween


def includeme(config) -> None:
    # Outside pyramid_tm, so the hint is set before the transaction begins.
    config.add_tween("pyramid_sumatra.intent.intent_tween_factory",
                     over="pyramid_tm.tm_tween_factory")
