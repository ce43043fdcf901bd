"""Durable file operations: temp file, fsync, os.replace, directory fsync.

Temp files are named ``.<name>.<pid>.<random>.tmp`` next to their target, so
that a crash leaves only files that are recognisably stray, with the process
that wrote them.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import orjson

from pyramid_sumatra.storage.types import StorageFull, StorageUnavailable

TEMP_SUFFIX = ".tmp"


def temp_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def is_temp(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)


def temp_owner(path: Path) -> int | None:
    """The pid that wrote a temp file, or None if its name does not say."""
    parts = path.name[: -len(TEMP_SUFFIX)].rsplit(".", 2)
    try:
        return int(parts[-2])
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp(target: Path, text: str, durable: bool = True) -> Path:
    """Write ``text`` to a temp file beside ``target`` (fsync'd if ``durable``); its path."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not leave half a file behind
        raise
    return tmp


def atomic_write(target: Path, text: str, durable: bool = True) -> None:
    """Replace ``target`` with ``text``: readers see the old or the new file, never a part.
    Not ``durable``: the data is not fsync'd (a journal that holds it must be kept)."""
    tmp = write_temp(target, text, durable)
    try:
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sync_filesystem(path: Path) -> None:
    """Write back everything cached for the filesystem holding ``path`` (Linux's
    syncfs(2), one call for many files; os.sync() where it is missing)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _syncfs is None or _syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _load_syncfs():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


_syncfs = _load_syncfs()


def storage_error(exc: OSError) -> StorageUnavailable:
    """The interface's exception for an OS error: no space is a 507, the rest a 503."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(f"no space left on the device of the store: {exc}")
    return StorageUnavailable(f"filesystem error: {exc}")


def remove(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def remove_tree(path: Path) -> None:
    """Remove a directory: first renamed aside (one atomic step), then deleted."""
    if not path.exists():
        return
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.trash")
    os.replace(path, aside)
    fsync_dir(path.parent)
    shutil.rmtree(aside, ignore_errors=True)


def read_json(path: Path) -> Any:
    """The parsed file, or None if it does not exist."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def dumps_readable(value: Any, finite: bool = False) -> str:
    """Indented JSON (the files are read and diffed by people). ``finite``: the caller
    knows ``value`` holds no NaN or infinity, which orjson would write as null; it is
    then written by orjson (~20x faster than json's indenting encoder, which is Python),
    unless orjson cannot (an integer beyond 64 bits, a lone surrogate)."""
    if finite:
        try:
            return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
                                ).decode("utf-8")
        except TypeError:  # orjson.JSONEncodeError
            pass
    return json.dumps(value, ensure_ascii=False, indent=2) + "\n"
