"""Reading files we did not write: regular files only, opened so that nothing on disk can make us wait forever.

Why a module of its own: the history import, the duplicate search and the saved-workflow scan read files
found in folders anyone can write to. A FIFO named `*.png` blocks `open()` until a writer appears (never),
a socket cannot be opened at all, and a device may never end. So a file is read only when `stat` says it is
a regular file, and it is opened non-blocking and checked again on the open descriptor, which closes the
race where the file is swapped for a FIFO between the check and the open.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

NOT_REGULAR = "not a regular file"
EMPTY = "empty file"

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)


class SkippedFile(OSError):
    """A file a reader passes over on purpose; `reason` is what the job reports for it."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def regular_stat(path: str) -> os.stat_result:
    """`os.stat(path)` (links followed), refusing anything but a regular file with SkippedFile."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise SkippedFile(path, NOT_REGULAR)
    return info


def open_regular(path: str) -> BinaryIO:
    """Open `path` for binary reading if it is a regular file; SkippedFile if it is not, OSError if it cannot be read.

    Checked before the open (a device is never opened) and after it on the descriptor (a FIFO swapped in
    meanwhile was opened without waiting, thanks to O_NONBLOCK, and is refused here).
    """
    regular_stat(path)
    descriptor = os.open(path, _OPEN_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise SkippedFile(path, NOT_REGULAR)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def model_path(model_type: str, name: str) -> str | None:
    """ComfyUI's path of a listed model file, asked past our own wrapper of `get_full_path`.

    The runtime witness (memory/) counts every `get_full_path` call made while a prompt runs as that
    prompt's use of the file: our own lookups (sizes, moves, detection) must never look like one, and
    should not pay for the wrapper either.
    """
    import folder_paths

    lookup = folder_paths.get_full_path
    while getattr(lookup, "__usage_stats_wrapped__", False):
        lookup = lookup.__wrapped__
    return lookup(model_type, name)
