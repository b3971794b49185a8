"""Model files moved aside, put back, or deleted for good, each move journalled in the quarantine's own manifest.

Why a module of its own: the quarantine must describe itself. Each quarantine folder keeps `manifest.jsonl`, an
append-only record of every move in or out (see journal.py), so its files stay listed and restorable, with
their original place, whatever happens to the database; a file found there that no manifest names (put there
by an older version, or by hand) is adopted with the place its path implies. Where a quarantine may lie is
checked, not assumed: outside every folder ComfyUI lists or loads from (so ComfyUI stops listing what it
holds), on the file's own filesystem (so a move is a rename, never a copy of gigabytes).
"""

from __future__ import annotations

import os
import stat
from typing import Callable

from .journal import DONE, UNDONE, Journal, Move, journalled_move
from ..support.files import model_path
from .moves import ActionRefused, delete_file, fail_point, folder_below, identity, inside, sync_folder

QUARANTINE_FOLDER = ".usage-stats-quarantine"
MANIFEST = "manifest.jsonl"
FOUND_BY = "found in the quarantine folder"


# --------------------------------------------------------------------------- where things may be


def registered_folders() -> list[str]:
    """Every folder ComfyUI lists or loads from, real paths: the quarantine must lie outside all of them."""
    import folder_paths

    folders = set()
    for dirs, _extensions in list(folder_paths.folder_names_and_paths.values()):
        folders.update(os.path.realpath(d) for d in dirs)
    return sorted(folders)


def model_file(model_type: str, model_name: str, listing: dict[str, list[str]]) -> tuple[str, str]:
    """(path, the type folder holding it) of a listed model inside one of its type's folders; else ActionRefused."""
    import folder_paths

    if not isinstance(model_type, str) or not isinstance(model_name, str):
        raise ActionRefused(400, "model_type and model_name must be strings")
    parts = model_name.replace("\\", "/").split("/")
    if model_name.startswith(("/", "\\")) or ".." in parts or "\x00" in model_name or os.path.isabs(model_name):
        raise ActionRefused(400, f"refused: {model_name!r} is not a plain relative name inside a model folder")
    if model_name not in listing.get(model_type, ()):
        raise ActionRefused(404, f"no {model_type} model named {model_name!r} is installed")
    path = model_path(model_type, model_name)
    folder = next((os.path.abspath(d) for d in folder_paths.get_folder_paths(model_type)
                   if path and inside(os.path.abspath(path), os.path.abspath(d))), None)
    if folder is None:
        raise ActionRefused(400, f"refused: {model_name!r} does not resolve to a file inside the {model_type} folders")
    if not os.path.lexists(path) or not stat.S_ISREG(os.lstat(path).st_mode):
        raise ActionRefused(404, f"{model_name!r} is not a regular file on disk")
    return os.path.abspath(path), folder


def quarantine_root(path: str) -> str:
    """`<models root>/.usage-stats-quarantine` for a file under `<models root>/<type folder>/…`: the nearest
    ancestor (of the path as listed, then of the file's real location, for model folders that are links to
    another disk) where such a folder is outside every registered folder and on the file's own filesystem."""
    device = os.lstat(path).st_dev
    registered = registered_folders()
    for start in dict.fromkeys([os.path.dirname(path), os.path.dirname(os.path.realpath(path))]):
        for parent in _ancestors(start):
            candidate = os.path.join(parent, QUARANTINE_FOLDER)
            real = os.path.realpath(candidate)
            if any(inside(real, folder) or inside(folder, real) for folder in registered):
                continue
            if os.stat(parent).st_dev == device:
                return candidate
            break  # every higher ancestor is further from the file's filesystem
    raise ActionRefused(
        409, f"refused: found no folder for a quarantine on the same filesystem as {path}, outside ComfyUI's model "
             "folders; moving it elsewhere would copy the whole file"
    )


def roots_on_disk() -> list[str]:
    """Every quarantine folder that exists beside ComfyUI's folders (where `quarantine_root` would have put one)."""
    import folder_paths

    roots = set()
    for dirs, _extensions in list(folder_paths.folder_names_and_paths.values()):
        for folder in dirs:
            for start in {os.path.abspath(folder), os.path.realpath(folder)}:
                roots.update(c for p in _ancestors(start) if os.path.isdir(c := os.path.join(p, QUARANTINE_FOLDER)))
    return sorted(roots)


def _ancestors(directory: str):
    """The parents of `directory`, nearest first (not `directory` itself: it is a model folder or inside one)."""
    while (parent := os.path.dirname(directory)) != directory:
        yield parent
        directory = parent


def manifest(root: str) -> Journal:
    return Journal(os.path.join(root, MANIFEST))


# --------------------------------------------------------------------------- moving


def quarantine(model_type: str, model_name: str, listing: dict[str, list[str]], move_id: int, at: int, by: str) -> Move:
    """Move one listed model into quarantine, journalled; returns the move."""
    path, folder = model_file(model_type, model_name, listing)
    root = quarantine_root(path)
    os.makedirs(root, exist_ok=True)
    parts = [model_type, *model_name.split("/")]
    with folder_below(root, parts[:-1], create=True) as target:
        name = _free_name(target, parts[-1])
        move = Move(move_id, "quarantine", path, os.path.join(root, *parts[:-1], name), *identity(path), at, by,
                    {"model_type": model_type, "model_name": model_name, "folder": folder})
        journalled_move(manifest(root), move, target)
    return move


def restore(entry: Move, at: int, by: str) -> Move:
    """Put a quarantined file back exactly where it was, refusing to replace anything or to leave its folder."""
    if not os.path.lexists(entry.destination):
        raise ActionRefused(409, f"{entry.destination} is no longer in quarantine (moved or deleted outside ComfyUI)")
    if os.path.lexists(entry.source):
        raise ActionRefused(409, f"refused: {entry.source} exists again; move it away first, then restore")
    folder = _registered_type_folder(entry)
    parts = os.path.relpath(entry.source, folder).split(os.sep)
    move = Move(entry.id, "restore", entry.destination, entry.source, *identity(entry.destination), at, by,
                dict(entry.details))
    with folder_below(folder, parts[:-1], create=True) as target:
        journalled_move(manifest(root_of(entry)), move, target, parts[-1])
    return move


def delete(entry: Move, at: int, by: str) -> Move:
    """Delete one quarantined file for good, journalled like a move."""
    try:
        found = identity(entry.destination)
    except FileNotFoundError:
        found = (entry.device, entry.inode, 0)
    move = Move(entry.id, "delete", entry.destination, None, *found, at, by, dict(entry.details))
    journal = manifest(root_of(entry))
    journal.begin(move)
    fail_point("empty", "after-intent")
    try:
        delete_file(entry.destination)
    except OSError as error:  # e.g. no permission: it stays in quarantine, listed and restorable
        journal.finish(move, UNDONE, at)
        raise ActionRefused(409, f"could not delete {entry.destination} ({error.strerror})") from None
    fail_point("empty", "after-move")
    sync_folder(os.path.dirname(entry.destination))
    fail_point("empty", "before-commit")
    journal.finish(move, DONE, at)
    return move


def _free_name(folder, name: str) -> str:
    """`name`, or `name (2)`, `name (3)`…: a quarantine never needs to refuse over a name it holds already."""
    candidate, number = name, 1
    while _exists_in(folder, candidate):
        number += 1
        stem, extension = os.path.splitext(name)
        candidate = f"{stem} ({number}){extension}"
    return candidate


def _exists_in(folder, name: str) -> bool:
    try:
        if isinstance(folder, str):
            os.lstat(os.path.join(folder, name))
        else:
            os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _registered_type_folder(entry: Move) -> str:
    """The folder the file came from, if ComfyUI still lists that type from it; a restore lands nowhere else."""
    import folder_paths

    model_type = entry.details.get("model_type")
    known = model_type in folder_paths.folder_names_and_paths
    folders = [os.path.abspath(d) for d in folder_paths.get_folder_paths(model_type)] if known else []
    folder = entry.details.get("folder") or next((d for d in folders if inside(entry.source, d)), None)
    if folder not in folders or not inside(entry.source, folder):
        raise ActionRefused(409, f"refused: {entry.source} is not inside a folder ComfyUI lists {model_type} from now")
    return folder


def root_of(entry: Move) -> str:
    """The quarantine folder holding `entry`: its path is `<root>/<model_type>/<model_name>`."""
    depth = 1 + entry.details["model_name"].count("/") + 1
    root = entry.destination
    for _ in range(depth):
        root = os.path.dirname(root)
    return root


# --------------------------------------------------------------------------- what the quarantine holds


def holdings(root: str, at: int, new_id: Callable[[], int]) -> list[Move]:
    """What one quarantine folder holds: its manifest settled against the disk, plus any file found there that
    no manifest names (adopted, with the original place its path implies)."""
    journal = manifest(root)
    journal.settle(at)
    held = _held(journal.moves())
    known = {move.destination for move in held}
    for path in _files_below(root):
        if path not in known:
            move = _adopt(root, path, new_id(), at)
            journal.begin(move)
            journal.finish(move, DONE, at)
            held.append(move)
    return held


def _held(moves: list[Move]) -> list[Move]:
    """Entries whose last completed move put them in quarantine (a restore or a deletion that did not happen
    leaves them there)."""
    latest: dict[int, Move] = {}
    for move in moves:
        if move.outcome == DONE:
            latest[move.id] = move
    return [move for move in latest.values() if move.action == "quarantine"]


def _files_below(root: str):
    for directory, folders, files in os.walk(root):
        folders.sort()
        for name in sorted(files):
            path = os.path.join(directory, name)
            if path != os.path.join(root, MANIFEST) and stat.S_ISREG(os.lstat(path).st_mode):
                yield path


def _adopt(root: str, path: str, move_id: int, at: int) -> Move:
    """A journal entry for a file found in quarantine: `<root>/<type>/<name>` came from the type's first folder."""
    import folder_paths

    model_type, *name = os.path.relpath(path, root).split(os.sep)
    model_name = "/".join(name)
    folders = folder_paths.get_folder_paths(model_type) if model_type in folder_paths.folder_names_and_paths else []
    folder = os.path.abspath(folders[0]) if folders else os.path.join(os.path.dirname(root), model_type)
    original = os.path.join(folder, *name)
    return Move(move_id, "quarantine", original, path, *identity(path), at, FOUND_BY,
                {"model_type": model_type, "model_name": model_name, "folder": folder, "adopted": True})
