"""The username rule, checked before anything stores, counts or echoes a username."""

from __future__ import annotations

from typing import Any

from .records import name_problem


def username_problem(username: Any) -> str | None:
    """Why ``username`` cannot be a user's name, or None if it can.

    The rule of project ids (at most 100 characters of letters, digits and
    ``_ . - + @`` and space): ``adduser`` enforces it, so a name that breaks it cannot
    log in, and the login throttle, the login page and grants never take one.
    """
    if not isinstance(username, str):
        return "username must be a string"
    return name_problem(username, "username")
