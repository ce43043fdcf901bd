"""Join the current ``transaction`` with a DB-API connection: commit or roll back with it.

A backend on a plain DB-API driver (sqlite3, psycopg, ...) calls
:func:`transaction_connection` in each hook: the first call in a transaction opens a
connection and joins a :class:`ConnectionDataManager`; later calls in the same
transaction get the same connection. The request (or CLI command) then commits or
aborts it with everything else, as zope.sqlalchemy does for a SQLAlchemy session.

A DB-API connection has one-phase commit only, so it commits in ``tpc_vote`` and its
``sortKey`` sorts it after other data managers: they vote (and may still fail)
before it commits, and once it has committed nothing can fail but the others'
``tpc_finish``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import transaction

from .types import StorageError


class ConnectionDataManager:
    """A ``transaction`` data manager for one DB-API connection.

    ``translate`` maps a driver error raised by COMMIT to the interface's exceptions
    (``StorageConflict`` makes the request retry, ``StorageUnavailable`` a 503), or
    None to re-raise it unchanged. ``close`` is called when the transaction ends either
    way (return the connection to a pool, release a lock).
    """

    def __init__(self, connection: Any, *,
                 translate: Callable[[Exception], StorageError | None] = lambda exc: None,
                 close: Callable[[Any], None] | None = None,
                 manager: transaction.TransactionManager | None = None):
        self.connection = connection
        self.transaction_manager = manager or transaction.manager
        self._translate = translate
        self._close = close
        self._committed = False
        self._ended = False

    def abort(self, txn) -> None:
        """Called instead of the two-phase commit when the transaction aborts before it."""
        self._rollback()

    def tpc_begin(self, txn) -> None:
        pass

    def commit(self, txn) -> None:
        pass  # nothing is made durable before the vote

    def tpc_vote(self, txn) -> None:
        """The commit point: COMMIT now, so that a failure still aborts the transaction."""
        try:
            self.connection.commit()
        except Exception as exc:
            error = self._translate(exc)
            if error is None:
                raise
            raise error from exc
        self._committed = True

    def tpc_finish(self, txn) -> None:
        self._end()

    def tpc_abort(self, txn) -> None:
        """Another data manager failed: roll back, unless this one has committed already."""
        if not self._committed:
            self._rollback()
        else:
            self._end()

    def sortKey(self) -> str:
        # "~" sorts after most keys: one-phase stores vote last (zope.sqlalchemy's rule).
        return f"~sumatra-dbapi:{id(self.connection)}"

    def _rollback(self) -> None:
        # A failed commit calls abort() then tpc_abort(): roll back once, before close.
        if self._ended:
            return
        try:
            self.connection.rollback()
        finally:
            self._end()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            if self._close is not None:
                self._close(self.connection)


def transaction_connection(owner: object, connect: Callable[[], Any],
                           **options: Any) -> Any:
    """The connection ``owner`` (a backend) uses in the current transaction.

    The first call in a transaction opens it with ``connect()`` and joins a
    :class:`ConnectionDataManager` (``options`` are its keyword arguments).
    """
    txn = transaction.get()
    try:
        return txn.data(owner).connection
    except KeyError:
        pass
    manager = ConnectionDataManager(connect(), **options)
    txn.join(manager)
    txn.set_data(owner, manager)
    return manager.connection
