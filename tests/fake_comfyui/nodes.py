"""A small, faithful stand-in for ComfyUI's `nodes` module, for unit tests.

It holds the two registries the extension reads (NODE_CLASS_MAPPINGS, LOADED_MODULE_DIRS) and a few core
node classes that declare their model inputs the way ComfyUI 0.3.75 does: V1 lists, and the
`("COMBO", {"options": [...]})` shape that V3 schemas produce. `load_pack` registers a pack the way
`nodes.load_custom_node` does.
"""

from __future__ import annotations

import os

import folder_paths

NODE_CLASS_MAPPINGS: dict[str, type] = {}
LOADED_MODULE_DIRS: dict[str, str] = {}


class CheckpointLoaderSimple:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (folder_paths.get_filename_list("checkpoints"),)}}


class VAELoader:
    """As the newest nodes.VAELoader: `image_taes` names the decoders offered for encoder/decoder file pairs."""

    image_taes = ["taesd", "taesdxl", "taesd3", "taef1", "taef2", "taeqi2_1"]

    @classmethod
    def INPUT_TYPES(cls):
        approx = folder_paths.get_filename_list("vae_approx")
        pairs = [t for t in cls.image_taes if any(a.startswith(f"{t}_decoder.") for a in approx)]
        return {"required": {"vae_name": (folder_paths.get_filename_list("vae") + pairs + ["pixel_space"],)}}


class UNETLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"unet_name": (folder_paths.get_filename_list("diffusion_models"),),
                             "weight_dtype": (["default", "fp8_e4m3fn"],)}}


class LoraLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "lora_name": (folder_paths.get_filename_list("loras"),),
                             "strength_model": ("FLOAT", {"default": 1.0})}}


class CLIPTextEncode:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"multiline": True}), "clip": ("CLIP",)}}


class UpscaleModelLoader:
    """Declared as V3 schemas come out of INPUT_TYPES(): a "COMBO" type with its options."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model_name": ("COMBO", {"options": folder_paths.get_filename_list("upscale_models")})},
                "hidden": {}}


class TripleCLIPLoader:
    @classmethod
    def INPUT_TYPES(cls):
        names = folder_paths.get_filename_list("text_encoders")
        return {"required": {f"clip_name{i}": ("COMBO", {"options": names}) for i in (1, 2, 3)}}


def dynamic_combo(options: dict[str, dict]) -> tuple:
    """A V3 DynamicCombo as INPUT_TYPES() gives it (comfy_api/latest/_io.py DynamicCombo.Input.as_dict, newest
    ComfyUI): ("COMFY_DYNAMICCOMBO_V3", {"options": [{"key": ..., "inputs": {"required": {...}}}]}). A prompt sends
    the chosen key under the input's name and the option's inputs under `<name>.<child>`."""
    return ("COMFY_DYNAMICCOMBO_V3", {"options": [{"key": k, "inputs": {"required": v}} for k, v in options.items()]})


class DynamicPickerLoader:
    """A V3 loader whose model picker sits in a DynamicCombo (not registered by reset(): tests add it)."""

    @classmethod
    def INPUT_TYPES(cls):
        checkpoints = ("COMBO", {"options": folder_paths.get_filename_list("checkpoints")})
        loras = ("COMBO", {"options": folder_paths.get_filename_list("loras")})
        return {"required": {"model": dynamic_combo({
            "checkpoint": {"ckpt_name": checkpoints},
            "checkpoint+lora": {"ckpt_name": checkpoints, "extra": dynamic_combo({"lora": {"lora_name": loras}})},
        })}}


CORE = [CheckpointLoaderSimple, VAELoader, UNETLoader, LoraLoader, CLIPTextEncode, UpscaleModelLoader, TripleCLIPLoader]


def reset() -> None:
    """Only the core nodes, as right after ComfyUI registered its built-ins."""
    NODE_CLASS_MAPPINGS.clear()
    LOADED_MODULE_DIRS.clear()
    NODE_CLASS_MAPPINGS.update({cls.__name__: cls for cls in CORE})


def load_pack(module_path: str, classes: dict[str, type]) -> None:
    """Register a pack as load_custom_node does: stamp RELATIVE_PYTHON_MODULE, record the module dir."""
    base = os.path.basename(module_path)
    if os.path.isfile(module_path):
        name = os.path.splitext(base)[0]
        LOADED_MODULE_DIRS[os.path.splitext(module_path)[0]] = os.path.dirname(os.path.abspath(module_path))
    else:
        name = base
        LOADED_MODULE_DIRS[name] = os.path.abspath(module_path)
    for class_type, cls in classes.items():
        cls.RELATIVE_PYTHON_MODULE = f"custom_nodes.{name}"
        NODE_CLASS_MAPPINGS[class_type] = cls
