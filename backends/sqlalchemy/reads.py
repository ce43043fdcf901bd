"""PostgreSQL reads in autocommit: a read-intent request sends its statements alone.

Under READ COMMITTED every statement takes its own snapshot, inside a transaction or
not, so a read-only request loses nothing without one, and saves two round trips
(BEGIN, COMMIT) of its three on a GET record. A write statement must never run that
way: on the autocommit connection anything but a plain read raises
``WriteUnderReadIntent`` before it is sent, and the request is replayed with write
intent (pyramid_sumatra.intent), in a transaction.
"""

from __future__ import annotations

import functools
import re

from sqlalchemy import event
from sqlalchemy.engine import Engine

from pyramid_sumatra.intent import WriteUnderReadIntent, autocommit_reads

#: The isolation level whose transactions add nothing to single statements.
READ_COMMITTED = "READ COMMITTED"

#: What a read may start with (a compound SELECT may start with its parenthesis).
_READ_START = re.compile(r"\s*\(*\s*(SELECT|WITH|SHOW|VALUES)\b", re.IGNORECASE)
#: Words that make a statement of that kind write or lock: a data-modifying CTE, a
#: locking read (FOR UPDATE / SHARE), SELECT INTO, a sequence's nextval or setval.
#: A false alarm costs a replay, never a wrong answer.
_WRITING_WORDS = ("INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "SHARE", "INTO",
                  "NEXTVAL", "SETVAL")


@functools.lru_cache(maxsize=512)
def is_read(statement: str) -> bool:
    """Whether ``statement`` only reads: it may run outside a transaction.

    Cached: SQLAlchemy sends the same compiled strings again and again. A scan of the
    record's query costs ~12 us with str.find (~70 us as one regular expression with
    the words' alternation); a cached answer ~0.2 us."""
    if _READ_START.match(statement) is None:
        return False
    text = statement.upper()
    return not any(_has_word(text, word) for word in _WRITING_WORDS)


def _has_word(text: str, word: str) -> bool:
    """Whether ``word`` occurs in ``text`` as a whole word (not in LAST_UPDATED)."""
    start = text.find(word)
    while start >= 0:
        end = start + len(word)
        if not (start and _word_char(text[start - 1])) and \
                not (end < len(text) and _word_char(text[end])):
            return True
        start = text.find(word, end)
    return False


def _word_char(char: str) -> bool:
    return char.isalnum() or char in "_$"


def read_in_autocommit(engine: Engine, isolation_level: str | None) -> bool:
    """Make ``engine``'s connections checked out while ``autocommit_reads()`` run in
    autocommit and refuse writes. Only on PostgreSQL under READ COMMITTED (the
    configured ``isolation_level`` and the server's default), where a transaction would
    not change what is read; returns whether it did."""
    if engine.dialect.name != "postgresql":
        return False
    if isolation_level is not None and isolation_level.upper() != READ_COMMITTED:
        return False

    # On the pool and the dialect, not through SQLAlchemy's isolation_level option: that
    # needs connection events, whose dispatch at every step of every statement cost
    # ~150 Python calls a request (the engine had none), more than the round trips saved.
    @event.listens_for(engine.pool, "checkout")
    def on_checkout(dbapi_connection, _record, _proxy) -> None:
        # Set on every checkout, both ways: a writer always gets a transaction, whoever
        # used the connection before. default_isolation_level: the server's default.
        reading = autocommit_reads() and engine.dialect.default_isolation_level == \
            READ_COMMITTED
        if dbapi_connection.autocommit != reading:
            dbapi_connection.autocommit = reading

    for name in ("do_execute", "do_executemany", "do_execute_no_params"):
        event.listen(engine, name, _refuse_writes)
    return True


def _refuse_writes(cursor, statement: str, *_args) -> None:
    if cursor.connection.autocommit and not is_read(statement):
        raise WriteUnderReadIntent(" ".join(statement.split())[:80])
