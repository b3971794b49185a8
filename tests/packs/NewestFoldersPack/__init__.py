"""Folder types that are not models, registered as folder_paths.py of the newest ComfyUI registers them.

`folder_names_and_paths["datasets"] = ([<base>/datasets], set())` (an empty extension set: every file is listed)
and `folder_names_and_paths["fonts"] = ([<base>/fonts], {".ttf", ".otf"})`.
"""
import os

import folder_paths

folder_paths.folder_names_and_paths["datasets"] = ([os.path.join(folder_paths.base_path, "datasets")], set())
folder_paths.folder_names_and_paths["fonts"] = ([os.path.join(folder_paths.base_path, "fonts")], {".ttf", ".otf"})

NODE_CLASS_MAPPINGS = {}
