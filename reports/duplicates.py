"""Exact duplicates among the listed model files, and the bytes each group wastes.

Why a module of its own: hashing is the one thing here that reads whole files, so it has its own rules.
Files are first grouped by size (stat only: 20,000 files take well under a second); only sizes shared by
two or more distinct files (hard links of one file are not duplicates) are hashed, streamed in 1 MiB
chunks in a cancellable background job (jobs.py); only regular files are opened (files.py), a FIFO or a
socket listed as a model is reported and passed over. A hash is cached by (device, inode, size, mtime), so an
unchanged file is never hashed twice, across restarts too (the cache is in our database).
"""

from __future__ import annotations

import hashlib
import os
from typing import Callable

from ..support.files import SkippedFile, open_regular, regular_stat
from ..support.jobs import Progress

CHUNK_BYTES = 1 << 20
SAVE_EVERY = 64
"""Hashes handed to the writer in batches, so a cancelled or crashed scan keeps most of its work."""

Stamp = tuple[int, int, int, int]
"""(device, inode, size, mtime in ns): a file's content is taken as unchanged while all four are."""


def size_groups(
    installed: dict[str, list[str]],
    full_path: Callable[[str, str], str | None],
    skip: Callable[[str, str], None],
    every_file: bool = False,
) -> dict[int, dict]:
    """size -> {stamp: (path, [(type, name), ...])} for sizes that two or more distinct files share (with
    `every_file`, for every size).

    Every name of one file (hard links, symlinks, shared folders) sits under that file's one stamp. A name
    that is not a regular file (a FIFO, a socket, a device) is passed to `skip` with the reason.
    """
    by_size: dict[int, dict[Stamp, tuple[str, list]]] = {}
    for model_type, names in installed.items():
        for name in names:
            path = full_path(model_type, name)
            try:
                st = regular_stat(path) if path else None
            except SkippedFile as skipped:
                skip(path, skipped.reason)
                st = None
            except (OSError, ValueError):
                st = None
            if st is None or st.st_size == 0:
                continue
            stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            files = by_size.setdefault(st.st_size, {})
            files.setdefault(stamp, (os.path.realpath(path), []))[1].append((model_type, name))
    return {size: files for size, files in by_size.items() if every_file or len(files) > 1}


def hash_file(path: str, progress: Progress) -> str:
    """BLAKE2b of the file's content, read in chunks; progress counts bytes and stops here if cancelled.

    SkippedFile if the file was swapped for one that is not a regular file since it was listed.
    """
    digest = hashlib.blake2b(digest_size=32)
    with open_regular(path) as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            progress.step(len(chunk))
    return digest.hexdigest()


def _hash_or_skip(path: str, progress: Progress) -> str | None:
    try:
        return hash_file(path, progress)
    except SkippedFile as skipped:
        progress.skip(path, skipped.reason)
    except OSError:
        pass
    return None


def find_duplicates(
    installed: dict[str, list[str]],
    full_path: Callable[[str, str], str | None],
    cached: dict[Stamp, str],
    save: Callable[[list[tuple[Stamp, str]], list[tuple[str, str, str]]], None],
    progress: Progress,
    every_file: bool = False,
) -> dict:
    """Groups of files with the same content, largest waste first; hashes only what the cache lacks.

    `save(hashes, names)` keeps the new hashes by stamp and every hashed name's (type, name, digest).
    `every_file` hashes files of a size no other file has too: with a shared store, a machine that lists
    a file under another name (another mount point, another layout) can then know it is the same file.
    """
    groups = size_groups(installed, full_path, progress.skip, every_file)
    progress.unit = "bytes"
    progress.total = sum(size * len(files) for size, files in groups.items())
    by_content: dict[tuple[int, str], list] = {}
    fresh: list[tuple[Stamp, str]] = []
    named: list[tuple[str, str, str]] = []
    hashed = 0
    try:
        for size, files in sorted(groups.items()):
            for stamp, (path, names) in files.items():
                digest = cached.get(stamp)
                if digest is None:
                    digest = _hash_or_skip(path, progress)
                    if digest is None:
                        continue  # vanished, unreadable or not a regular file: not known to duplicate anything
                    hashed += 1
                    fresh.append((stamp, digest))
                else:
                    progress.step(size)
                named.extend((t, n, digest) for t, n in names)
                by_content.setdefault((size, digest), []).append(names)
                if len(fresh) >= SAVE_EVERY:
                    save(fresh, named)
                    fresh, named = [], []
    finally:  # a cancelled or failed search keeps every hash it finished
        if fresh or named:
            save(fresh, named)
    duplicates = [
        {
            "size": size,
            "hash": digest,
            "wasted_bytes": size * (len(files) - 1),
            "files": [[{"model_type": t, "model_name": n} for t, n in names] for names in files],
        }
        for (size, digest), files in by_content.items()
        if len(files) > 1
    ]
    duplicates.sort(key=lambda group: -group["wasted_bytes"])
    return {
        "groups": duplicates,
        "wasted_bytes": sum(g["wasted_bytes"] for g in duplicates),
        "files_hashed": hashed,
        "files_compared": sum(len(files) for files in groups.values()),
    }
