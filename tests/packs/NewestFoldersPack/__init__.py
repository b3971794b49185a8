"""Folder types that are not models, registered the way the newest ComfyUI and packs do it.

folder_paths.py of the newest ComfyUI: `folder_names_and_paths["datasets"] = ([<base>/datasets], set())` (an empty
extension set: every file is listed); text-overlay packs: `folder_names_and_paths["fonts"] = ([<models>/fonts],
{".ttf", ".otf"})`.
"""
import os

import folder_paths

folder_paths.folder_names_and_paths["datasets"] = ([os.path.join(folder_paths.base_path, "datasets")], set())
folder_paths.folder_names_and_paths["fonts"] = ([os.path.join(folder_paths.models_dir, "fonts")], {".ttf", ".otf"})

NODE_CLASS_MAPPINGS = {}
