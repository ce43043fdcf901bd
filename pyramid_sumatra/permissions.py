"""Permission names and principals, in one place."""

from __future__ import annotations

VIEW = "view"  # read a project and its records
EDIT = "edit"  # create, update and delete records; update project info
MANAGE = "manage"  # grant, revoke, delete the project, make it public
CREATE = "create"  # create a project

#: Principal of every server-wide administrator.
SERVER_ADMIN = "role:admin"

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "read": (VIEW,),
    "write": (VIEW, EDIT),
    "admin": (VIEW, EDIT, MANAGE),
}

#: The role a grant gets when none is named (what the old server gave).
DEFAULT_ROLE = "write"
#: The role of whoever creates a project.
CREATOR_ROLE = "admin"


def user_principal(username: str) -> str:
    return f"user:{username}"


def grant_principal(grantee: str) -> str:
    """The ACL principal of a stored grant: ``group:NAME`` as it is, a username as
    ``user:NAME`` (a username cannot contain ':', so the two never meet)."""
    return grantee if grantee.startswith("group:") else user_principal(grantee)
