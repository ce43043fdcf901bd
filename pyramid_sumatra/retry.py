"""A growing random pause before pyramid_retry replays a request that lost a write race.

Without it, writers that collided replay at once and collide again until the
attempts run out (seen with 16 clients rewriting one label through two processes).
A read replayed to write (intent.WriteUnderReadIntent) raced nobody: it goes at once.
"""

from __future__ import annotations

import random
import time

from pyramid.config import Configurator
from pyramid_retry import IBeforeRetry

from .intent import WriteUnderReadIntent

BASE_DELAY = 0.01  # seconds; doubled for each attempt already made
MAX_DELAY = 0.5  # a slow disk's commit (fsync) can take this long under load


def backoff(attempt: int) -> None:
    """Sleep a random time that grows with the attempts already made (0, 1, ...)."""
    time.sleep(random.uniform(0, min(MAX_DELAY, BASE_DELAY * 2 ** attempt)))


def pause_before_retry(event) -> None:
    if isinstance(event.exception, WriteUnderReadIntent):
        return
    backoff(event.environ.get("retry.attempt", 0))


def includeme(config: Configurator) -> None:
    config.add_subscriber(pause_before_retry, IBeforeRetry)
