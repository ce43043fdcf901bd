"""PostgreSQL reads in autocommit: a read-intent request sends its statements alone.

Under READ COMMITTED every statement takes its own snapshot, inside a transaction or
not, so a read-only request loses nothing without one, and saves two round trips
(BEGIN, COMMIT) of its three on a GET record. A write statement must never run that
way: on the autocommit connection anything but a plain read raises
``WriteUnderReadIntent`` before it is sent, and the request is replayed with write
intent (pyramid_sumatra.intent), in a transaction.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from pyramid_sumatra.intent import WriteUnderReadIntent, autocommit_reads

#: The isolation level whose transactions add nothing to single statements.
READ_COMMITTED = "READ COMMITTED"

#: What a read may start with (a compound SELECT may start with its parenthesis).
_READ_START = re.compile(r"\s*\(*\s*(SELECT|WITH|SHOW|VALUES)\b", re.IGNORECASE)
#: Words that make a statement of that kind write or lock: a data-modifying CTE, a
#: locking read (FOR UPDATE / SHARE), SELECT INTO, a sequence's nextval or setval.
#: A false alarm costs a replay, never a wrong answer.
_WRITING_WORD = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|TRUNCATE|SHARE|INTO|NEXTVAL|SETVAL)\b", re.IGNORECASE)


def is_read(statement: str) -> bool:
    """Whether ``statement`` only reads: it may run outside a transaction."""
    return _READ_START.match(statement) is not None and \
        _WRITING_WORD.search(statement) is None


def reader_engine(engine: Engine, isolation_level: str | None) -> Engine | None:
    """A view of ``engine`` (same pool) whose connections run in autocommit and refuse
    writes; None where that would change what a request reads: not PostgreSQL, or
    transactions configured stricter than READ COMMITTED."""
    if engine.dialect.name != "postgresql":
        return None
    if isolation_level is not None and isolation_level.upper() != READ_COMMITTED:
        return None
    # The pool gives the connection its default isolation level back at checkin, so
    # the next user (a writer) begins a real transaction again.
    reader = engine.execution_options(isolation_level="AUTOCOMMIT")
    event.listen(reader, "before_cursor_execute", _refuse_writes)
    return reader


def _refuse_writes(_conn, _cursor, statement: str, _parameters, _context,
                   _executemany) -> None:
    if not is_read(statement):
        raise WriteUnderReadIntent(" ".join(statement.split())[:80])


class IntentSession(Session):
    """A session that reads through ``reader`` when the unit of work may do so
    (``autocommit_reads()``) and the server's default is READ COMMITTED; otherwise
    through its engine, in a transaction."""

    def __init__(self, *args: Any, reader: Engine | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.reader = reader

    def get_bind(self, *args: Any, **kwargs: Any):
        reader = self.reader
        # default_isolation_level is the server's, known after the first connection:
        # until then (and if a server defaults to stricter) reads run in transactions.
        if reader is not None and autocommit_reads() and \
                reader.dialect.default_isolation_level == READ_COMMITTED:
            return reader
        return super().get_bind(*args, **kwargs)
