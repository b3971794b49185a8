"""The one way this extension moves or deletes a user's file: never replacing a path, never leaving a folder.

Why a module of its own: "check that the target is free, then rename" loses the file that appears in between,
because `os.rename` replaces on POSIX. Here the kernel refuses instead (`renameat2(RENAME_NOREPLACE)` on Linux,
`renameatx_np(RENAME_EXCL)` on macOS, a hard link then an unlink for a file elsewhere; Windows' rename never
replaces). Targets are reached through directory descriptors opened one component at a time without
following links, so a parent folder swapped for a symlink can never carry a file out of its folder.
Every step a crash could interrupt has a named fail point, so the crash tests can stop the process exactly there.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import sys
from contextlib import contextmanager
from typing import Iterator

FAIL_AT_VARIABLE = "USAGE_STATS_FAIL_AT"
"""`<action>:<step>` (e.g. `quarantine:after-move`): the process exits at once at that step. For crash tests only."""
_RENAME_NOREPLACE = 1  # linux/fs.h
_RENAME_EXCL = 0x4  # macOS sys/stdio.h
_AT_FDCWD = -100 if sys.platform.startswith("linux") else -2
_WALKS_WITH_DESCRIPTORS = os.open in os.supports_dir_fd and hasattr(os, "O_NOFOLLOW") and hasattr(os, "O_DIRECTORY")


class ActionRefused(Exception):
    """An action we will not take, with the HTTP status and a message that says why (nothing was changed)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def fail_point(action: str, step: str) -> None:
    """Exit the process here when the crash tests ask for it (see FAIL_AT_VARIABLE); otherwise nothing."""
    if os.environ.get(FAIL_AT_VARIABLE) == f"{action}:{step}":
        os._exit(70)


def identity(path: str) -> tuple[int, int, int]:
    """(device, inode, size) of `path` itself (a link is not followed): what a journal checks a move against."""
    info = os.lstat(path)
    return info.st_dev, info.st_ino, info.st_size


def inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@contextmanager
def folder_below(root: str, parts: list[str], create: bool = False) -> Iterator[int | str]:
    """The folder `root/<parts…>` as a descriptor reached without following a link below `root` (or, where the
    system has no such descriptors, its path once checked to resolve inside `root`). Missing folders are made
    when `create`; a link, a file or a missing folder on the way is refused."""
    if not _WALKS_WITH_DESCRIPTORS:
        yield _checked_path_below(root, parts, create)
        return
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            child = _open_child(fd, part, create, root)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _open_child(fd: int, part: str, create: bool, root: str) -> int:
    """Open the folder `part` below the folder `fd`, refusing links and non-folders."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        try:
            return os.open(part, flags, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise ActionRefused(409, f"refused: the folder {part!r} under {root} is gone") from None
            os.mkdir(part, dir_fd=fd)
            return os.open(part, flags, dir_fd=fd)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise ActionRefused(
                409, f"refused: {part!r} under {root} is a link or a file, not a folder; a move through it could "
                     "leave the model folder"
            ) from None
        raise


def _checked_path_below(root: str, parts: list[str], create: bool) -> str:
    path = os.path.join(root, *parts)
    if create:
        os.makedirs(path, exist_ok=True)
    if not inside(os.path.realpath(path), os.path.realpath(root)):
        raise ActionRefused(409, f"refused: {path} resolves outside {root}")
    return path


def move_no_replace(source: str, folder: int | str, name: str) -> None:
    """Move `source` to `name` in `folder` (from `folder_below`), or refuse if that name exists or is on another
    filesystem: nothing is ever replaced, and nothing is ever copied."""
    try:
        if isinstance(folder, str):
            _rename_path_no_replace(source, os.path.join(folder, name))
        else:
            _renameat_no_replace(source, folder, name)
    except OSError as error:
        if error.errno == errno.EEXIST:
            raise ActionRefused(409, f"refused: {name} already exists there; nothing is ever replaced") from None
        if error.errno == errno.EXDEV:
            raise ActionRefused(409, f"refused: the target is on another filesystem than {source}") from None
        raise ActionRefused(409, f"could not move {source} ({error.strerror})") from None


def _renameat_no_replace(source: str, folder_fd: int, name: str) -> None:
    libc = _libc()
    source_bytes, name_bytes = os.fsencode(source), os.fsencode(name)
    call = getattr(libc, "renameat2", None) or getattr(libc, "renameatx_np", None)
    if call is not None:
        flag = _RENAME_NOREPLACE if sys.platform.startswith("linux") else _RENAME_EXCL
        if call(_AT_FDCWD, source_bytes, folder_fd, name_bytes, flag) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # else: this filesystem lacks the flag
            raise OSError(code, os.strerror(code))
    if os.path.isdir(source):
        raise OSError(errno.ENOTSUP, "this filesystem cannot move a folder without the risk of replacing one")
    os.link(source, name, dst_dir_fd=folder_fd)  # fails if the name exists: the kernel checks, not us
    os.unlink(source)


def _rename_path_no_replace(source: str, destination: str) -> None:
    if os.name == "nt":
        os.rename(source, destination)  # Windows refuses an existing destination
    elif os.path.isdir(source):
        raise OSError(errno.ENOTSUP, "this system cannot move a folder without the risk of replacing one")
    else:
        os.link(source, destination)
        os.unlink(source)


def delete_file(path: str) -> None:
    """Delete a quarantined file for good (a file that is already gone is not an error: it is what was asked)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def sync_folder(path: str) -> None:
    """Make a rename in `path` durable before it is recorded as done (a no-op where folders cannot be opened)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@functools.cache
def _libc():
    return ctypes.CDLL(None, use_errno=True)
