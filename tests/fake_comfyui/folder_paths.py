"""A small, faithful stand-in for ComfyUI's `folder_paths` (0.3.75), for unit tests.

Same names and rules as the real module where the extension depends on them: the default folder types
and their directories, alias folding, recursive listing with `.git` skipped and extensions matched
case-insensitively, and the cache that stays valid while no directory mtime changes. It also registers the
two folder types of the newest folder_paths.py (Comfy-Org/ComfyUI) that hold no models: `datasets` (an empty
extension set, so every file is listed) and `fonts` (.ttf, .otf), both under the base directory.
"""

from __future__ import annotations

import os

supported_pt_extensions = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
folder_names_and_paths: dict[str, tuple[list[str], set[str]]] = {}
filename_list_cache: dict[str, tuple[list[str], dict[str, float]]] = {}
_base = ""
models_dir = ""

_DEFAULT_TYPES = {
    "checkpoints": ["checkpoints"],
    "configs": ["configs"],
    "loras": ["loras"],
    "vae": ["vae"],
    "text_encoders": ["text_encoders", "clip"],
    "diffusion_models": ["unet", "diffusion_models"],
    "clip_vision": ["clip_vision"],
    "style_models": ["style_models"],
    "embeddings": ["embeddings"],
    "vae_approx": ["vae_approx"],
    "controlnet": ["controlnet", "t2i_adapter"],
    "gligen": ["gligen"],
    "upscale_models": ["upscale_models"],
    "hypernetworks": ["hypernetworks"],
    "photomaker": ["photomaker"],
    "model_patches": ["model_patches"],
    "audio_encoders": ["audio_encoders"],
    "latent_upscale_models": ["latent_upscale_models"],
}


def configure(base) -> None:
    """Point every folder type at `<base>/models/...` and `<base>/custom_nodes`, as ComfyUI does at start."""
    global _base, models_dir
    _base = str(base)
    folder_names_and_paths.clear()
    filename_list_cache.clear()
    models = models_dir = os.path.join(_base, "models")
    for name, folders in _DEFAULT_TYPES.items():
        extensions = {".yaml"} if name == "configs" else set(supported_pt_extensions)
        folder_names_and_paths[name] = ([os.path.join(models, f) for f in folders], extensions)
    folder_names_and_paths["custom_nodes"] = ([os.path.join(_base, "custom_nodes")], set())
    folder_names_and_paths["datasets"] = ([os.path.join(_base, "datasets")], set())
    folder_names_and_paths["fonts"] = ([os.path.join(_base, "fonts")], {".ttf", ".otf"})


def map_legacy(folder_name: str) -> str:
    return {"unet": "diffusion_models", "clip": "text_encoders"}.get(folder_name, folder_name)


def get_folder_paths(folder_name: str) -> list[str]:
    return folder_names_and_paths[map_legacy(folder_name)][0][:]


def add_model_folder_path(folder_name: str, full_folder_path: str, is_default: bool = False) -> None:
    folder_name = map_legacy(folder_name)
    if folder_name not in folder_names_and_paths:
        folder_names_and_paths[folder_name] = ([], set())
    paths = folder_names_and_paths[folder_name][0]
    if full_folder_path not in paths:
        paths.insert(0, full_folder_path) if is_default else paths.append(full_folder_path)


def get_user_directory() -> str:
    return os.path.join(_base, "user")


def get_system_user_directory(name: str = "system") -> str:
    if not name or not name.replace("_", "").isalnum() or name.startswith("_"):
        raise ValueError(f"Invalid system user name: '{name}'")
    return os.path.join(get_user_directory(), f"__{name}")


def _recursive_search(directory: str) -> tuple[list[str], dict[str, float]]:
    if not os.path.isdir(directory):
        return [], {}
    files, dirs = [], {directory: os.path.getmtime(directory)}
    for root, subdirs, names in os.walk(directory, followlinks=True, topdown=True):
        subdirs[:] = [d for d in subdirs if d != ".git"]
        for name in names:
            files.append(os.path.relpath(os.path.join(root, name), directory))
        for d in subdirs:
            path = os.path.join(root, d)
            dirs[path] = os.path.getmtime(path)
    return files, dirs


def _filter_extensions(files: list[str], extensions: set[str]) -> list[str]:
    return [f for f in files if not extensions or os.path.splitext(f)[-1].lower() in extensions]


def get_filename_list(folder_name: str) -> list[str]:
    """Sorted unique relative paths; re-scanned only when a scanned directory's mtime changed."""
    folder_name = map_legacy(folder_name)
    cached = filename_list_cache.get(folder_name)
    folders, extensions = folder_names_and_paths[folder_name]
    if cached is not None:
        valid = all(os.path.getmtime(d) == mtime for d, mtime in cached[1].items())
        valid = valid and all(d in cached[1] for d in folders if os.path.isdir(d))
        if valid:
            return list(cached[0])
    names, dirs = set(), {}
    for folder in folders:
        files, found = _recursive_search(folder)
        names.update(_filter_extensions(files, extensions))
        dirs.update(found)
    filename_list_cache[folder_name] = (sorted(names), dirs)
    return sorted(names)


def get_full_path(folder_name: str, filename: str) -> str | None:
    folder_name = map_legacy(folder_name)
    if folder_name not in folder_names_and_paths:
        return None
    filename = os.path.relpath(os.path.join("/", filename), "/")
    for folder in folder_names_and_paths[folder_name][0]:
        path = os.path.join(folder, filename)
        if os.path.isfile(path):
            return path
    return None
