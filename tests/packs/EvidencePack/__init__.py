"""Miniatures of popular packs' model loaders, for the acceptance tests of what counts as use.

Each node declares its inputs the way the real node named in its docstring does, and really opens the files it
would load with ComfyUI's own functions (`folder_paths.get_full_path_or_raise`, `comfy.utils.load_torch_file`),
skipping exactly what the real node skips. The files are tiny real safetensors the tests write. Every node is
an output node, so a prompt of one node runs.
"""
import os
import re

import comfy.utils
import folder_paths

folder_paths.folder_names_and_paths["ipadapter"] = (  # as ComfyUI_IPAdapter_plus registers its folder
    [os.path.join(folder_paths.models_dir, "ipadapter")], folder_paths.supported_pt_extensions)


def _load(folder: str, name: str) -> None:
    comfy.utils.load_torch_file(folder_paths.get_full_path_or_raise(folder, name), safe_load=True)


class _AnyKeys(dict):
    """rgthree's FlexibleOptionalInputType: an optional section that accepts any input name."""

    def __contains__(self, key):
        return True

    def __getitem__(self, key):
        return ("*",)


class _Output:
    CATEGORY = "tests/evidence"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "run"


class MiniPowerLoraLoader(_Output):
    """rgthree-comfy "Power Lora Loader (rgthree)": one dict per row, {"on", "lora", "strength", "strengthTwo"}."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}, "optional": _AnyKeys()}

    def run(self, **rows):
        for row in rows.values():
            if isinstance(row, dict) and row.get("on") and row.get("lora") not in (None, "None"):
                strengths = [s for s in (row.get("strength"), row.get("strengthTwo")) if s is not None]
                if any(s != 0 for s in strengths):
                    _load("loras", row["lora"])
        return {}


class MiniLoraStack(_Output):
    """Comfyroll "CR LoRA Stack" (switch_i On/Off, lora_name_i, model_weight_i, clip_weight_i) with the
    `lora_count` of efficiency-nodes' "LoRA Stacker": rows beyond the count are not read."""

    ROWS = 3

    @classmethod
    def INPUT_TYPES(cls):
        loras = ["None", *folder_paths.get_filename_list("loras")]
        rows = {}
        for i in range(1, cls.ROWS + 1):
            rows |= {f"switch_{i}": (["Off", "On"],), f"lora_name_{i}": (loras,),
                     f"model_weight_{i}": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0}),
                     f"clip_weight_{i}": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0})}
        return {"required": {"lora_count": ("INT", {"default": 3, "min": 0, "max": cls.ROWS}), **rows}}

    def run(self, lora_count, **rows):
        for i in range(1, lora_count + 1):
            name = rows[f"lora_name_{i}"]
            weights = (rows[f"model_weight_{i}"], rows[f"clip_weight_{i}"])
            if rows[f"switch_{i}"] == "On" and name != "None" and any(w != 0 for w in weights):
                _load("loras", name)
        return {}


class MiniLoraList(_Output):
    """ComfyUI-Lora-Manager "Lora Loader (LoraManager)": a list widget sent as {"__value__": [{"name", "strength",
    "active"}]}, names without their extension; the node finds each file by name."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}, "optional": _AnyKeys()}

    def run(self, loras=None, **_):
        entries = loras.get("__value__", []) if isinstance(loras, dict) else []
        by_stem = {os.path.splitext(os.path.basename(n))[0]: n for n in folder_paths.get_filename_list("loras")}
        for entry in entries:
            if entry.get("active") and entry.get("strength", 1) != 0 and entry.get("name") in by_stem:
                _load("loras", by_stem[entry["name"]])
        return {}


class MiniStringLiteral:
    """comfy-image-saver "String Literal": a text widget whose only job is to feed text to other nodes."""

    CATEGORY = "tests/evidence"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"string": ("STRING", {"multiline": True})}}

    def run(self, string):
        return (string,)


class MiniLoraTagLoader(_Output):
    """comfyui_lora_tag_loader "LoraTagLoader": loads every <lora:NAME:W[:W]> in its text (weight 0: skipped)."""

    TAG = re.compile(r"<lora:([^:<>]+)((?::[^:<>]*)*)>", re.IGNORECASE)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"multiline": True})}}

    def run(self, text):
        names = folder_paths.get_filename_list("loras")
        for name, weights in self.TAG.findall(text):
            numbers = [float(w) for w in weights.split(":")[1:] if w]
            match = next((n for n in names if n == name or os.path.splitext(n)[0] == name), None)
            if match and not (numbers and all(w == 0 for w in numbers)):
                _load("loras", match)
        return {}


class MiniUnifiedLoader(_Output):
    """ComfyUI_IPAdapter_plus "IPAdapterUnifiedLoader": a preset name, resolved at run time to an ipadapter and a
    clip-vision file by pattern in their folders' listings; nothing in the prompt names a file."""

    PRESETS = {"LIGHT - SD1.5 only (low strength)": (r"light", r"vit-h"),
               "PLUS (high strength)": (r"plus", r"vit-h")}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"preset": (list(cls.PRESETS),)}}

    def run(self, preset):
        for folder, pattern in zip(("ipadapter", "clip_vision"), self.PRESETS[preset], strict=True):
            name = next(n for n in folder_paths.get_filename_list(folder) if re.search(pattern, n, re.IGNORECASE))
            _load(folder, name)
        return {}


NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in (
    MiniPowerLoraLoader, MiniLoraStack, MiniLoraList, MiniStringLiteral, MiniLoraTagLoader, MiniUnifiedLoader)}
