"""Driver errors as the storage interface's exceptions: retry, 503, 507, or a bug."""

from __future__ import annotations

import functools

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from pyramid_sumatra.storage.types import (
    StorageConflict,
    StorageError,
    StorageFull,
    StorageUnavailable,
)


def is_unique_violation(exc: IntegrityError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)  # psycopg
    if sqlstate is not None:
        return sqlstate == "23505"
    return "UNIQUE constraint failed" in str(exc.orig)  # sqlite3


def is_foreign_key_violation(exc: IntegrityError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)  # psycopg
    if sqlstate is not None:
        return sqlstate == "23503"
    return "FOREIGN KEY constraint failed" in str(exc.orig)  # sqlite3


def storage_error(exc: DBAPIError) -> StorageError | None:
    """The interface's exception for a driver error (retry, 503, 507); None: a bug (500)."""
    if isinstance(exc, IntegrityError):
        # A duplicate key is a concurrent writer, a missing project a concurrent delete
        # (the hookspec: a write into a missing project conflicts); NOT NULL is a bug.
        if is_unique_violation(exc) or is_foreign_key_violation(exc):
            return StorageConflict(str(exc.orig))
        return None
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        if "locked" in text or "deadlock" in text or "serializ" in text:
            return StorageConflict(str(exc.orig))
        if "no space left" in text or "disk is full" in text or "disk full" in text:
            return StorageFull(f"database error: {exc.orig}")
        return StorageUnavailable(f"database error: {exc.orig}")
    if exc.connection_invalidated:
        return StorageUnavailable(f"database connection lost: {exc.orig}")
    return None


def translate_errors(method):
    """Map driver errors to the interface's exceptions (retry, or 503)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except DBAPIError as exc:
            error = storage_error(exc)
            if error is None:
                raise
            raise error from exc

    return wrapper


def _translate_outside_hooks(context) -> None:
    """COMMIT runs in the transaction manager, after every hook returned: a database
    that went away then must still be a 503 (or a retry), not a 500. Statements inside
    hooks are left to translate_errors."""
    exc = context.sqlalchemy_exception
    if context.statement is None and isinstance(exc, DBAPIError):
        error = storage_error(exc)
        if error is not None:
            raise error
