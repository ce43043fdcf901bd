"""Where things live under the root, and names that can never leave it.

The app already refuses odd project ids and labels; the backend checks again
because it turns them into paths (defence in depth: a plugin or the CLI may
call the hooks with anything).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MAX_NAME_LENGTH = 200
# Control characters, path separators and NUL; a leading '.' would reach our own files.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f/\\]")


class UnsafeName(ValueError):
    """A project id, label or username that cannot be stored as a file name."""


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot become a file name under the root, or None if it can."""
    if not isinstance(name, str) or not name:
        return "an empty or non-string name"
    if len(name.encode("utf-8")) > MAX_NAME_LENGTH:  # file names have 255 bytes at most
        return f"a name longer than {MAX_NAME_LENGTH} bytes"
    if name.startswith(".") or _FORBIDDEN.search(name):
        return f"{name!r} starts with '.' or contains a separator or control character"
    return None


def check_name(name: object) -> str:
    problem = name_problem(name)
    if problem:
        raise UnsafeName(f"filesystem backend refuses {problem}")
    return name  # type: ignore[return-value]


class Layout:
    """The paths of one store.

    ``root/users.json``, ``root/projects/<id>/{project.json,index.json,index.log,
    records/<label>.json}``,
    ``root/.locks/`` (lock files) and ``root/.journal/`` (commits being applied).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.users = self.root / "users.json"
        self.projects = self.root / "projects"
        self.locks = self.root / ".locks"
        self.journal = self.root / ".journal"

    def _inside(self, path: Path, parent: Path) -> Path:
        # Belt and braces after check_name: the resolved path must stay under its parent.
        # With a checked name that holds unless the path is a symlink: only then resolve
        # (resolving every path cost a PUT ~50 resolves, a quarter of its CPU time).
        if os.path.islink(path) and path.resolve().parent != parent.resolve():
            raise UnsafeName(f"{path} escapes {parent}")
        return path

    def project_dir(self, project_id: str) -> Path:
        return self._inside(self.projects / check_name(project_id), self.projects)

    def project_file(self, project_id: str) -> Path:
        return self.project_dir(project_id) / "project.json"

    def index_file(self, project_id: str) -> Path:
        return self.project_dir(project_id) / "index.json"

    def index_log(self, project_id: str) -> Path:
        return self.project_dir(project_id) / "index.log"

    def records_dir(self, project_id: str) -> Path:
        return self.project_dir(project_id) / "records"

    def record_file(self, project_id: str, label: str) -> Path:
        records = self.records_dir(project_id)
        return self._inside(records / f"{check_name(label)}.json", records)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def absolute(self, relative: str) -> Path:
        """A journal's path under the root. Checked by its text (relative, no ``..``):
        the names in it were checked when the journal was written, and resolving cost an
        lstat per component of the root's own path for every file of every commit."""
        parts = relative.split("/")
        if not relative or relative.startswith("/") or ".." in parts or "" in parts:
            raise UnsafeName(f"{relative!r} escapes the store")
        return self.root / relative

    @staticmethod
    def project_lock(project_id: str) -> str:
        return f"project-{check_name(project_id)}"

    USERS_LOCK = "users"

    def lock_file(self, key: str) -> Path:
        return self.locks / f"{key}.lock"
