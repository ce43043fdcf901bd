"""Why a service refused: a small hierarchy the views map to HTTP and the CLI to messages.

``error`` names the rule in a few words (the JSON ``error`` member); ``detail``
(also ``str(exc)``) says what to do about it.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A rule refused the operation; nothing was changed."""

    error = "invalid request"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class InvalidInput(ServiceError, ValueError):
    """A value cannot be accepted; ``field`` names the culprit (a key path, or "body").

    A ValueError too: callers that parse documents have always caught it as one.
    """

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message

    @property
    def error(self) -> str:  # type: ignore[override]
        return f"invalid {self.field}"


class NotFound(ServiceError):
    """The project, record or grant to act on does not exist."""

    error = "not found"


class UnknownUser(ServiceError):
    """No user has this name."""

    error = "unknown user"

    def __init__(self, username: str):
        super().__init__(f"there is no user {username!r}")
        self.username = username


class Conflict(ServiceError):
    """The change contradicts what is stored (the name is taken, say)."""

    error = "conflict"


class LastAdmin(Conflict):
    """The change would leave a project without an admin."""

    error = "last admin"

    def __init__(self, user: str):
        super().__init__(f"{user!r} is the project's only admin; grant another admin first")
        self.user = user
