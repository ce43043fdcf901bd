"""Grants: who holds which role on a project; a project never loses its last admin."""

from __future__ import annotations

from ..auth.external import GROUP_PREFIX, group_problem
from ..permissions import DEFAULT_ROLE
from ..storage import Storage
from ..storage.types import ANONYMOUS, ROLES
from ..usernames import username_problem
from . import history
from .errors import InvalidInput, LastAdmin, NotFound
from .history import Actor
from .projects import require_project
from .users import require_user


def admins(grants: dict[str, str]) -> list[str]:
    return sorted(p for p, role in grants.items() if role == "admin")


def _check_username(user: str) -> None:
    """A name no user or group can have is refused before it is looked up or echoed
    (NUL, 5 MB). ``group:NAME`` grants to a directory group or an OpenID group claim."""
    if user.startswith(GROUP_PREFIX):
        problem = group_problem(user[len(GROUP_PREFIX):])
    else:
        problem = username_problem(user)
    if problem and user != ANONYMOUS:
        raise InvalidInput("user", problem[:200])


def grant(storage: Storage, project_id: str, user: object, role: object = DEFAULT_ROLE,
          actor: Actor | None = None) -> str:
    """Give ``user`` (or ``anonymous``: the public; or ``group:NAME``: every member of a
    directory group, resolved at login) ``role`` on the project; return the role.

    ``user`` and ``role`` may come straight from a request body, hence ``object``.
    """
    require_project(storage, project_id)
    if not isinstance(user, str) or not user:
        raise InvalidInput("user", "name the user to grant: user=NAME")
    _check_username(user)
    if role not in ROLES:
        raise InvalidInput("role", f"role must be one of {', '.join(ROLES)}")
    if user == ANONYMOUS:
        role = "read"  # public projects: anonymous callers only ever read
    elif not user.startswith(GROUP_PREFIX):  # groups live in the directory, not here
        require_user(storage, user)
    grants = storage.get_grants(project_id)
    if grants.get(user) == "admin" and role != "admin" and admins(grants) == [user]:
        raise LastAdmin(user)
    storage.set_grant(project_id, user, role)
    if grants.get(user) != role:
        history.record(storage, actor, project_id, "", "grant",
                       changes=history.diff({user: grants[user]} if user in grants else {},
                                            {user: role}))
    return role


def revoke(storage: Storage, project_id: str, user: str, actor: Actor | None = None) -> None:
    """Remove ``user``'s grant on the project."""
    require_project(storage, project_id)
    _check_username(user)
    grants = storage.get_grants(project_id)
    if user not in grants:
        raise NotFound(f"{user!r} holds no grant on this project")
    if admins(grants) == [user]:
        raise LastAdmin(user)
    storage.revoke_grant(project_id, user)
    history.record(storage, actor, project_id, "", "revoke",
                   changes=history.diff({user: grants[user]}, {}))
