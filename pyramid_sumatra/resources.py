"""The traversal tree: Root → Project → Record / TagSet / Last / Permissions.

Containers load from storage lazily; a name that cannot exist becomes an
``InvalidName`` resource so that GET answers 404 and writes answer 400.
"""

from __future__ import annotations

from pyramid.authorization import ALL_PERMISSIONS, DENY_ALL, Allow, Authenticated, Everyone
from pyramid.decorator import reify
from pyramid.request import Request

from .permissions import (
    CREATE,
    EDIT,
    MANAGE,
    ROLE_PERMISSIONS,
    SERVER_ADMIN,
    VIEW,
    grant_principal,
)
from .records import name_problem
from .storage import Storage
from .storage.types import ANONYMOUS, ProjectInfo, StoredRecord


class Resource:
    __name__: str = ""
    __parent__: Resource | None = None
    #: Which media types the resource offers (negotiation.offers(kind)).
    kind: str = "project"

    @property
    def storage(self) -> Storage:
        return self.request.storage

    request: Request


class Root(Resource):
    kind = "project-list"

    def __init__(self, request: Request):
        self.request = request

    def __acl__(self):
        return [(Allow, SERVER_ADMIN, ALL_PERMISSIONS), (Allow, Everyone, VIEW),
                (Allow, Authenticated, CREATE)]

    def __getitem__(self, name: str) -> Resource:
        problem = name_problem(name, "project id")
        if problem:
            return InvalidName(self, name, problem)
        return Project(self, name)


class InvalidName(Resource):
    """A URL segment that can never name a project or record."""

    def __init__(self, parent: Resource, name: str, problem: str):
        self.__parent__, self.__name__, self.request = parent, name, parent.request
        self.problem = problem

    def __acl__(self):
        return [(Allow, Everyone, ALL_PERMISSIONS)]

    def __getitem__(self, name: str) -> Resource:
        return InvalidName(self, name, self.problem)


class Project(Resource):
    kind = "project"

    def __init__(self, parent: Root, project_id: str):
        self.__parent__, self.__name__, self.request = parent, project_id, parent.request
        self.id = project_id
        #: The label of the record traversal reached, read with the project (see info).
        self._label: str | None = None
        self._record: StoredRecord | None = None
        #: The username the request's credentials name (security.read_context_first):
        #: the backend may read that user with the project.
        self.user_hint: str | None = None

    @reify  # not functools.cached_property: its class-wide lock serialised requests (3.11)
    def info(self) -> ProjectInfo | None:
        if self._label is None:
            return self.storage.get_project(self.id)
        # A record's URL: the permission check needs the project and its grants, the view
        # the record; the backend may read all three in one query.
        found = self.storage.get_project_record(self.id, self._label, self.user_hint)
        if found is None:
            return None
        info, self.__dict__["grants"], self._record = found  # reify's cache of grants
        return info

    @property
    def exists(self) -> bool:
        return self.info is not None

    @reify
    def grants(self) -> dict[str, str]:
        return self.storage.get_grants(self.id) if self.exists else {}

    @property
    def is_public(self) -> bool:
        return ANONYMOUS in self.grants

    def __acl__(self):
        if not self.exists:
            # GET answers 404 to anyone; any user may create it (with a PUT of
            # the project or of its first record).
            return [(Allow, Everyone, VIEW), (Allow, Authenticated, (EDIT, CREATE)), DENY_ALL]
        acl = [(Allow, SERVER_ADMIN, ALL_PERMISSIONS)]
        for principal, role in sorted(self.grants.items()):
            if principal == ANONYMOUS:
                acl.append((Allow, Everyone, VIEW))  # public: anyone reads, nobody else writes
            else:
                acl.append((Allow, grant_principal(principal), ROLE_PERMISSIONS.get(role, ())))
        acl.append(DENY_ALL)
        return acl

    def __getitem__(self, name: str) -> Resource:
        if name == "permissions":
            return Permissions(self)
        if name == "last":
            return Last(self)
        if name in ("tag", "tagged"):
            return TagContainer(self, name)
        problem = name_problem(name, "label")
        if problem:
            return InvalidName(self, name, problem)
        if "info" not in self.__dict__:  # not read yet: read the record with it
            self._label = name
        return Record(self, name)


class Record(Resource):
    kind = "record"

    def __init__(self, parent: Project, label: str):
        self.__parent__, self.__name__, self.request = parent, label, parent.request
        self.project = parent
        self.label = label

    @reify
    def stored(self) -> StoredRecord | None:
        if not self.project.exists:
            return None
        if self.project._label == self.label:  # read with the project
            return self.project._record
        return self.storage.get_record(self.project.id, self.label)


class Last(Resource):
    """The most recent record of a project (by timestamp)."""

    kind = "record"

    def __init__(self, parent: Project):
        self.__parent__, self.__name__, self.request = parent, "last", parent.request
        self.project = parent

    @reify
    def stored(self) -> StoredRecord | None:
        if not self.project.exists:
            return None
        return self.storage.most_recent_record(self.project.id)


class TagContainer(Resource):
    """``/<project>/tag/`` (and ``tagged/``): a tag name follows."""

    def __init__(self, parent: Project, name: str):
        self.__parent__, self.__name__, self.request = parent, name, parent.request
        self.project = parent

    def __getitem__(self, tag: str) -> Resource:
        return TagSet(self, tag)


class TagSet(Resource):
    """The records of a project having one tag."""

    kind = "project"

    def __init__(self, parent: TagContainer, tag: str):
        self.__parent__, self.__name__, self.request = parent, tag, parent.request
        self.project = parent.project
        self.tag = tag


class Permissions(Resource):
    kind = "project"

    def __init__(self, parent: Project):
        self.__parent__, self.__name__, self.request = parent, "permissions", parent.request
        self.project = parent


def root_factory(request: Request) -> Root:
    request.add_finished_callback(_release_tree)
    return Root(request)


def _release_tree(request: Request) -> None:
    """Break request -> root -> request (Pyramid itself drops ``context``).

    Left to the cyclic garbage collector, each request's objects (its response
    body: 3 MB for a 100,000-record project) lived on until a full collection;
    a worker then held 250+ MB instead of ~100 MB (see CHANGES.rst).
    """
    request.__dict__.pop("root", None)
    request.__dict__.pop("response", None)


__all__ = ["Root", "Project", "Record", "Last", "TagSet", "TagContainer", "Permissions",
           "InvalidName", "root_factory", "MANAGE"]
