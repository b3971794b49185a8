"""Disabling and enabling custom-node packs: a folder moved into ComfyUI-Manager's `.disabled/` and back.

Why a module of its own: a pack is a folder of someone's code, often with its own settings and downloads; it is
moved, never copied or deleted, only by the name of one entry in `custom_nodes`, never onto an existing path,
and each move is journalled (journal.py) so a crash halfway is settled at the next start.
"""

from __future__ import annotations

import os

from .journal import Journal, Move, journalled_move
from .moves import ActionRefused, folder_below, identity

DISABLED_FOLDER = ".disabled"
"""ComfyUI skips every custom_nodes entry ending in `.disabled`; ComfyUI-Manager keeps disabled packs in this folder."""


def custom_nodes_folder() -> str:
    import folder_paths

    return os.path.abspath(folder_paths.get_folder_paths("custom_nodes")[0])


def check_pack_name(name, is_protected) -> str:
    """`name` if it names one pack entry that may be moved; `is_protected(path)` says which packs never are."""
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise ActionRefused(400, "package must be the folder (or .py file) name of one pack in custom_nodes")
    if name.startswith(".") or is_protected(os.path.join(custom_nodes_folder(), name)):
        raise ActionRefused(403, f"refused: {name} manages or observes your install; it is never disabled from here")
    return name


def disable(journal: Journal, name: str, move_id: int, at: int, by: str) -> Move:
    """Move `custom_nodes/<pack>` into `custom_nodes/.disabled/`, where ComfyUI skips it and ComfyUI-Manager finds it."""
    root = custom_nodes_folder()
    source = next((os.path.join(root, e) for e in (name, f"{name}.py") if os.path.lexists(os.path.join(root, e))), None)
    if source is None:
        raise ActionRefused(404, f"no enabled pack named {name!r} in {root}")
    destination = os.path.join(root, DISABLED_FOLDER, os.path.basename(source))
    if os.path.lexists(destination):
        raise ActionRefused(409, f"refused: {destination} already exists")
    move = Move(move_id, "disable", source, destination, *identity(source), at, by, {"package": name})
    with folder_below(root, [DISABLED_FOLDER], create=True) as target:
        journalled_move(journal, move, target)
    return move


def enable(journal: Journal, name: str, move_id: int, at: int, by: str) -> Move:
    """Move a disabled pack (`.disabled/<pack>[@version]` or `<pack>.disabled`) back into custom_nodes."""
    root = custom_nodes_folder()
    source = _disabled_entry(root, name)
    base = os.path.basename(source)
    base = base[: -len(".disabled")] if base.endswith(".disabled") else base.split("@", 1)[0]
    destination = os.path.join(root, base)
    if os.path.lexists(destination):
        raise ActionRefused(409, f"refused: {destination} already exists (an enabled copy of the pack?)")
    move = Move(move_id, "enable", source, destination, *identity(source), at, by, {"package": name})
    with folder_below(root, []) as target:
        journalled_move(journal, move, target)
    return move


def _disabled_entry(root: str, name: str) -> str:
    disabled = os.path.join(root, DISABLED_FOLDER)
    candidates = [os.path.join(root, f"{name}.disabled")]
    try:
        entries = sorted(os.listdir(disabled))
    except OSError:
        entries = []
    candidates += [os.path.join(disabled, e) for e in entries if e.split("@", 1)[0] in (name, f"{name}.py")]
    source = next((c for c in candidates if os.path.lexists(c)), None)
    if source is None:
        raise ActionRefused(404, f"no disabled pack named {name!r} in {root}")
    return source
