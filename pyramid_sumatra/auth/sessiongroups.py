"""A browser session's groups: kept in the (signed) session cookie with a deadline."""

from __future__ import annotations

import time

from pyramid.request import Request

from ..storage.types import UserInfo
from .external import usable_groups
from .groups import current_groups

GROUPS_KEY = "sumatra.groups"
GROUPS_UNTIL_KEY = "sumatra.groups_until"
REFRESH_SETTING = "sumatra.groups_refresh_seconds"
DEFAULT_REFRESH = 300.0


def refresh_seconds(request: Request) -> float:
    return float(request.registry.settings.get(REFRESH_SETTING, DEFAULT_REFRESH))


def remember_groups(request: Request, groups: tuple[str, ...],
                    seconds: float | None = None) -> None:
    """Keep ``groups`` in the session for ``seconds`` (default: the refresh time)."""
    request.session[GROUPS_KEY] = list(usable_groups(groups))
    request.session[GROUPS_UNTIL_KEY] = time.time() + (
        refresh_seconds(request) if seconds is None else seconds)


def session_groups(request: Request, user: UserInfo) -> tuple[str, ...] | None:
    """The session's groups, asked of the source again once older than the refresh time;
    None when the source no longer knows the user (the session then ends)."""
    session = request.session
    if not user.source:
        return ()
    if time.time() < float(session.get(GROUPS_UNTIL_KEY, 0)):
        return usable_groups(session.get(GROUPS_KEY, ()))
    groups = current_groups(request.storage, user)
    if groups is not None:
        remember_groups(request, groups)
    return groups
