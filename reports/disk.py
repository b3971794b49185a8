"""Sizes on disk of the listed model files, and how much each tier would free.

Why a module of its own: sizes are facts about files, not about usage, and they need rules of their own.
A file is measured with `stat` only (never read). One file may be listed under several names (hard links,
symlinks, folder types that share a directory): it is one file, so its bytes count once, on the name
nearest to "used" (removing a second name of a file that is still needed frees nothing), and a symlink
never counts (moving a link frees only the link). Runs in a route's executor thread, never on the hook path.
"""

from __future__ import annotations

import os
import stat as stat_module
from dataclasses import dataclass
from typing import Callable

from ..domain.values import REMOVAL_ORDER, TIERS


@dataclass(frozen=True)
class FileInfo:
    """What `stat` says of one listed name: its size, the file it is (device, inode) and its link target."""

    size: int
    identity: str
    link: str | None = None


def stat_listing(installed: dict[str, list[str]], full_path: Callable[[str, str], str | None]) -> dict[tuple[str, str], FileInfo]:
    """(type, name) -> FileInfo for every listed regular file (a broken link, a vanished file or a FIFO is left out)."""
    infos = {}
    for model_type, names in installed.items():
        for name in names:
            info = _stat(full_path(model_type, name))
            if info is not None:
                infos[(model_type, name)] = info
    return infos


def _stat(path: str | None) -> FileInfo | None:
    if not path:
        return None
    try:
        own = os.lstat(path)
        target = os.stat(path) if stat_module.S_ISLNK(own.st_mode) else own
    except (OSError, ValueError):
        return None
    if not stat_module.S_ISREG(target.st_mode):  # a FIFO, socket or device named like a model holds no bytes of one
        return None
    link = os.path.realpath(path) if target is not own else None
    return FileInfo(target.st_size, f"{target.st_dev}:{target.st_ino}", link)


def identities(infos: dict[tuple[str, str], FileInfo]) -> dict[tuple[str, str], str]:
    """(type, name) -> the file it is: every name of one file shares its usage (tracker.model_report's same_file)."""
    return {key: info.identity for key, info in infos.items()}


def attach_sizes(report: list[dict], infos: dict[tuple[str, str], FileInfo]) -> None:
    """Give each installed row `size`, `link` (its target, for a symlink) and `counted_bytes`, the bytes
    removing it would free: its size on the one name of its file nearest to "used", else 0 (`same_file_as` says
    which name carries them)."""
    owners: dict[str, tuple[int, str, str]] = {}
    for section in report:
        for row in section["models"]:
            info = infos.get((section["model_type"], row["model_name"]))
            if info is None or info.link is not None or not row["installed"]:
                continue
            candidate = (REMOVAL_ORDER.index(row["status"]), section["model_type"], row["model_name"])
            owners[info.identity] = min(owners.get(info.identity, candidate), candidate)
    for section in report:
        for row in section["models"]:
            info = infos.get((section["model_type"], row["model_name"]))
            if info is None:
                row.update(size=None, link=None, counted_bytes=0)
                continue
            owner = owners.get(info.identity)
            is_owner = owner is not None and owner[1:] == (section["model_type"], row["model_name"])
            row.update(size=info.size, link=info.link, counted_bytes=info.size if is_owner else 0)
            if owner is not None and not is_owner:
                row["same_file_as"] = f"{owner[1]}/{owner[2]}"


def totals(report: list[dict], text: str = "") -> dict:
    """Bytes and files per tier, overall and per model type: what each tier would free. With `text` (lower
    case), of the models whose name contains it: the panel's tier badges and section counts for a search."""
    overall = {tier: {"bytes": 0, "files": 0} for tier in TIERS}
    by_type: dict[str, dict] = {}
    for section in report:
        per_type = by_type.setdefault(section["model_type"], {tier: {"bytes": 0, "files": 0} for tier in TIERS})
        for row in section["models"]:
            if text and text not in row["model_name"].lower():
                continue
            for bucket in (overall[row["status"]], per_type[row["status"]]):
                bucket["bytes"] += row.get("counted_bytes") or 0
                bucket["files"] += 1
    return {"tiers": overall, "types": by_type}
