"""Acting on a decision, with undo: move model files to quarantine and back, empty it, disable and enable packs.

Why a module of its own: these are the only lines of the extension that change the user's files, so every
rule that keeps them safe sits together where a reviewer can check it: a model is only ever touched by a
name ComfyUI lists, at the path ComfyUI resolves it to, inside that type's folders; the quarantine lies
outside every folder registered in `folder_paths.folder_names_and_paths` (checked, not assumed), so ComfyUI
stops listing what it holds; a file moves by `rename` on one filesystem or not at all (never a copy of
gigabytes); nothing is overwritten; and the move is recorded (manifest + actions log) in the same task,
moved back if the record cannot be written. Every function here runs on the writer thread (via
Writer.submit), so no two actions ever race.
"""

from __future__ import annotations

import errno
import ipaddress
import os

from .tracker import UsageStore

QUARANTINE_FOLDER = ".usage-stats-quarantine"
PROTECTED_PACKS = frozenset({"comfyui-manager"})
DISABLED_FOLDER = ".disabled"
"""ComfyUI skips every custom_nodes entry ending in `.disabled`; ComfyUI-Manager keeps disabled packs in this folder."""


class ActionRefused(Exception):
    """An action we will not take, with the HTTP status and a message that says why (nothing was changed)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------- where things may go


def registered_folders() -> list[str]:
    """Every folder ComfyUI lists or loads from, real paths: the quarantine must lie outside all of them."""
    import folder_paths

    folders = set()
    for dirs, _extensions in list(folder_paths.folder_names_and_paths.values()):
        folders.update(os.path.realpath(d) for d in dirs)
    return sorted(folders)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def model_file(model_type: str, model_name: str, listing: dict[str, list[str]]) -> str:
    """The path of a listed model, checked to lie inside one of its type's folders; else ActionRefused."""
    import folder_paths

    if not isinstance(model_type, str) or not isinstance(model_name, str):
        raise ActionRefused(400, "model_type and model_name must be strings")
    parts = model_name.replace("\\", "/").split("/")
    if model_name.startswith(("/", "\\")) or ".." in parts or "\x00" in model_name or os.path.isabs(model_name):
        raise ActionRefused(400, f"refused: {model_name!r} is not a plain relative name inside a model folder")
    if model_name not in listing.get(model_type, ()):
        raise ActionRefused(404, f"no {model_type} model named {model_name!r} is installed")
    path = folder_paths.get_full_path(model_type, model_name)
    roots = [os.path.abspath(d) for d in folder_paths.get_folder_paths(model_type)]
    if not path or not any(_inside(os.path.abspath(path), root) for root in roots):
        raise ActionRefused(400, f"refused: {model_name!r} does not resolve to a file inside the {model_type} folders")
    if not os.path.lexists(path) or os.path.isdir(path):
        raise ActionRefused(404, f"{model_name!r} is not a file on disk")
    return os.path.abspath(path)


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
            if any(_inside(real, folder) or _inside(folder, real) for folder in registered):
                continue
            if os.stat(parent).st_dev == device:
                return candidate
            break  # every higher ancestor is further from the file's filesystem
    raise ActionRefused(
        409, f"refused: found no folder for a quarantine on the same filesystem as {path}, outside ComfyUI's model "
             "folders; moving it elsewhere would copy the whole file"
    )


def _ancestors(directory: str):
    """The parents of `directory`, nearest first (not `directory` itself: it is a model folder or inside one)."""
    while (parent := os.path.dirname(directory)) != directory:
        yield parent
        directory = parent


def _free_destination(path: str) -> str:
    """`path`, or `path (2)`, `path (3)`… : a move never overwrites anything."""
    candidate, number = path, 1
    while os.path.lexists(candidate):
        number += 1
        stem, extension = os.path.splitext(path)
        candidate = f"{stem} ({number}){extension}"
    return candidate


def _rename(source: str, destination: str) -> None:
    """Rename or refuse: across filesystems, refuse with a clear message instead of copying."""
    try:
        os.rename(source, destination)
    except OSError as error:
        if error.errno == errno.EXDEV:
            raise ActionRefused(409, f"refused: {destination} is on another filesystem than {source}") from None
        raise ActionRefused(409, f"could not move {source} ({error.strerror})") from None


# --------------------------------------------------------------------------- models: quarantine, restore, empty


def quarantine(store: UsageStore, model_type: str, model_name: str, listing: dict[str, list[str]], by: str) -> dict:
    """Move one listed model into quarantine and record it; returns its manifest entry."""
    path = model_file(model_type, model_name, listing)
    size = os.lstat(path).st_size
    destination = _free_destination(os.path.join(quarantine_root(path), model_type, *model_name.split("/")))
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    _rename(path, destination)
    try:
        with store.transaction() as db:
            db.execute(
                "INSERT INTO quarantine (model_type, model_name, original, quarantined, size, at) VALUES (?, ?, ?, ?, ?, ?)",
                (model_type, model_name, path, destination, size, store.now()),
            )
            store.log_action(db, "quarantine", f"{model_type}/{model_name}", path, destination, by)
    except BaseException:
        os.rename(destination, path)  # no record, no move
        raise
    return {"model_type": model_type, "model_name": model_name, "from": path, "to": destination, "size": size}


def _entry(store: UsageStore, entry_id) -> dict:
    entry = next((e for e in store.quarantined() if e["id"] == entry_id), None)
    if entry is None:
        raise ActionRefused(404, f"nothing in quarantine has id {entry_id!r}")
    return entry


def restore(store: UsageStore, entry_id: int, by: str) -> dict:
    """Put a quarantined file back exactly where it was, unless something now occupies that place."""
    entry = _entry(store, entry_id)
    if os.path.lexists(entry["original"]):
        raise ActionRefused(409, f"refused: {entry['original']} exists again; move it away first, then restore")
    if not os.path.lexists(entry["quarantined"]):
        raise ActionRefused(409, f"{entry['quarantined']} is no longer in quarantine (moved or deleted outside ComfyUI)")
    os.makedirs(os.path.dirname(entry["original"]), exist_ok=True)
    _rename(entry["quarantined"], entry["original"])
    try:
        with store.transaction() as db:
            db.execute("DELETE FROM quarantine WHERE id = ?", (entry_id,))
            target = f"{entry['model_type']}/{entry['model_name']}"
            store.log_action(db, "restore", target, entry["quarantined"], entry["original"], by)
    except BaseException:
        os.rename(entry["original"], entry["quarantined"])
        raise
    return {**entry, "restored": True}


def empty(store: UsageStore, confirmed_bytes, by: str) -> dict:
    """Delete every quarantined file for good, only if the caller confirmed the exact size that will go."""
    entries = store.quarantined()
    total = sum(e["size"] for e in entries)
    if confirmed_bytes != total:
        raise ActionRefused(
            409, f"the quarantine holds {total} bytes in {len(entries)} files; confirm by sending {{\"confirm_bytes\": {total}}}"
        )
    deleted = 0
    for entry in entries:
        try:
            os.remove(entry["quarantined"])
        except FileNotFoundError:
            pass
        with store.transaction() as db:
            db.execute("DELETE FROM quarantine WHERE id = ?", (entry["id"],))
            store.log_action(db, "delete", f"{entry['model_type']}/{entry['model_name']}", entry["quarantined"], None, by)
        deleted += 1
    return {"deleted": deleted, "bytes": total}


# --------------------------------------------------------------------------- packages: disable, enable


def _custom_nodes_folder() -> str:
    import folder_paths

    return os.path.abspath(folder_paths.get_folder_paths("custom_nodes")[0])


def _check_pack_name(name, own_pack: str) -> str:
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise ActionRefused(400, "package must be the folder (or .py file) name of one pack in custom_nodes")
    if name.lower() in PROTECTED_PACKS or name == own_pack or name.startswith("."):
        raise ActionRefused(403, f"refused: {name} manages or observes your install; it is never disabled from here")
    return name


def disable_pack(store: UsageStore, name: str, own_pack: str, by: str) -> dict:
    """Move `custom_nodes/<pack>` into `custom_nodes/.disabled/`, where ComfyUI skips it and ComfyUI-Manager finds it."""
    name = _check_pack_name(name, own_pack)
    root = _custom_nodes_folder()
    source = next((os.path.join(root, e) for e in (name, f"{name}.py") if os.path.lexists(os.path.join(root, e))), None)
    if source is None:
        raise ActionRefused(404, f"no enabled pack named {name!r} in {root}")
    destination = os.path.join(root, DISABLED_FOLDER, os.path.basename(source))
    if os.path.lexists(destination):
        raise ActionRefused(409, f"refused: {destination} already exists")
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    _move_logged(store, "disable", name, source, destination, by)
    return {"package": name, "from": source, "to": destination, "restart_required": True}


def enable_pack(store: UsageStore, name: str, own_pack: str, by: str) -> dict:
    """Move a disabled pack (`.disabled/<pack>[@version]` or `<pack>.disabled`) back into custom_nodes."""
    name = _check_pack_name(name, own_pack)
    root = _custom_nodes_folder()
    disabled = os.path.join(root, DISABLED_FOLDER)
    candidates = [os.path.join(root, f"{name}.disabled")]
    try:
        entries = sorted(os.listdir(disabled))
        candidates += [os.path.join(disabled, e) for e in entries if e.split("@", 1)[0] in (name, f"{name}.py")]
    except OSError:
        pass
    source = next((c for c in candidates if os.path.lexists(c)), None)
    if source is None:
        raise ActionRefused(404, f"no disabled pack named {name!r} in {root}")
    base = os.path.basename(source)
    base = base[: -len(".disabled")] if base.endswith(".disabled") else base.split("@", 1)[0]
    destination = os.path.join(root, base)
    if os.path.lexists(destination):
        raise ActionRefused(409, f"refused: {destination} already exists (an enabled copy of the pack?)")
    _move_logged(store, "enable", name, source, destination, by)
    return {"package": name, "from": source, "to": destination, "restart_required": True}


def _move_logged(store: UsageStore, action: str, target: str, source: str, destination: str, by: str) -> None:
    _rename(source, destination)
    try:
        with store.transaction() as db:
            store.log_action(db, action, target, source, destination, by)
    except BaseException:
        os.rename(destination, source)
        raise


# --------------------------------------------------------------------------- who may act


def listens_beyond_loopback(addresses: str | None) -> bool:
    """True when ComfyUI's --listen value includes any address other than loopback (0.0.0.0, a LAN IP, a name)."""
    for address in (addresses or "127.0.0.1").split(","):
        address = address.strip().strip("[]")
        if address == "localhost":
            continue
        try:
            if not ipaddress.ip_address(address).is_loopback:
                return True
        except ValueError:
            return True
    return False


def comfyui_listen_addresses() -> str | None:
    try:
        from comfy.cli_args import args
    except Exception:
        return None
    return getattr(args, "listen", None)
