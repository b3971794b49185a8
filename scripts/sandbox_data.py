"""Sample data for the sandbox: model files of realistic sizes, two small packs and a 120-day history.

Run by scripts/sandbox with ComfyUI's python: `python scripts/sandbox_data.py <sandbox dir>`.

The model files are sparse: each holds a few bytes naming its content, then a hole up to its real size, so
"143 GB" of samples take a few kilobytes of disk. Files meant as duplicates carry the same bytes, so the
duplicate search finds them; two files of equal size with different bytes show that equal size is not
enough. None of them is a real model: a workflow that loads one fails (see the README).
"""

from __future__ import annotations

import json
import sys
import time
import types
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
package = types.ModuleType("usage_stats")
package.__path__ = [str(REPO)]
sys.modules.setdefault("usage_stats", package)  # the tests' own, when they import this module

from usage_stats.domain.values import DAY, Outcome, PromptUse  # noqa: E402
from usage_stats.tracker import UsageStore  # noqa: E402

HISTORY_DAYS = 120


class Sample(NamedTuple):
    path: str  # under models/
    size: int  # bytes, as the real file of that name has
    last_used: int | None  # days ago; None: never used
    content: str = ""  # files with the same content are duplicates; default: the path (unique)


MODELS = [
    Sample("checkpoints/sd_xl_base_1.0.safetensors", 6_938_078_334, 1),
    Sample("checkpoints/sdxl/juggernaut_xl.safetensors", 7_105_350_536, 3),
    Sample("checkpoints/dreamshaper_8.safetensors", 2_132_625_894, 45, "dreamshaper_8"),
    Sample("checkpoints/downloads/dreamshaper_8 (1).safetensors", 2_132_625_894, None, "dreamshaper_8"),
    Sample("checkpoints/old_experiments/merge_test.safetensors", 5_136_431_274, None),
    Sample("checkpoints/v1-5-pruned-emaonly.ckpt", 4_265_380_512, 100),
    Sample("checkpoints/old_experiments/anime_merge_v3.safetensors", 5_557_234_891, None),
    Sample("vae/sdxl_vae.safetensors", 334_641_164, 1, "sdxl_vae"),
    Sample("vae/backup/sdxl_vae.safetensors", 334_641_164, None, "sdxl_vae"),
    Sample("vae/sdxl_vae_fp16_fix.safetensors", 334_641_164, 60),  # the same size, other bytes: no duplicate
    Sample("vae/vae-ft-mse-840000.safetensors", 334_643_268, 100),
    Sample("controlnet/control_v11p_sd15_canny.pth", 1_445_157_124, 70),
    Sample("controlnet/xinsir_union_sdxl.safetensors", 2_513_342_408, 5),
    Sample("text_encoders/t5xxl_fp8.safetensors", 4_893_934_904, 2),
    Sample("text_encoders/clip_l.safetensors", 246_144_152, 2),
    Sample("diffusion_models/flux1-dev-fp8.safetensors", 11_901_517_000, 2),
    Sample("upscale_models/4x-UltraSharp.pth", 66_961_958, 10),
    Sample("upscale_models/RealESRGAN_x4plus.pth", 67_040_989, None),
    Sample("embeddings/EasyNegative.safetensors", 24_655, 40),
    Sample("loras/detail_tweaker.safetensors", 37_861_176, 1),
]

CORE_NODES = {"KSampler": 1, "CheckpointLoaderSimple": 1, "CLIPTextEncode": 1, "VAEDecode": 1, "SaveImage": 1,
              "ControlNetApplyAdvanced": 5, "UpscaleModelLoader": 10, "ImageUpscaleWithModel": 10}

# Two small packs: one with a node in daily use and one never used, one that nobody used and that is slow
# to import (a sleep stands in for a heavy dependency), so "slow to start and never used" shows.
PACKS = {
    "ComfyUI-Sample-Image-Tools": {"nodes": {"SampleSharpen": 2, "SampleFilmGrain": None}, "import_seconds": 0},
    "ComfyUI-Sample-Old-Effects": {"nodes": {"SampleVignette": None, "SampleGlow": None}, "import_seconds": 0.4},
}

PACK_SOURCE = '''"""A sample pack of the comfyui-usage-stats sandbox: its nodes pass the image through unchanged."""
import time

time.sleep({import_seconds})


class _PassThrough:
    CATEGORY = "usage-stats sample"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{"image": ("IMAGE",)}}}}

    def run(self, image):
        return (image,)


NODE_CLASS_MAPPINGS = {{{mappings}}}
'''

# A saved workflow that names a model nobody ran lately: it stays "consider removing", never "safe".
SAVED_WORKFLOW = {
    "last_node_id": 1, "last_link_id": 0, "links": [], "groups": [], "config": {}, "extra": {}, "version": 0.4,
    "nodes": [{"id": 1, "type": "CheckpointLoaderSimple", "pos": [0, 0], "size": [300, 100], "flags": {}, "order": 0,
               "mode": 0, "inputs": [], "outputs": [], "properties": {},
               "widgets_values": ["dreamshaper_8.safetensors"]}],
}


def main(sandbox: Path) -> None:
    for sample in MODELS:
        write_sparse(sandbox / "models" / sample.path, sample.size, sample.content or sample.path)
    for folder in ("custom_nodes", "input", "output", "user/default/workflows"):
        (sandbox / folder).mkdir(parents=True, exist_ok=True)
    for name, pack in PACKS.items():
        write_pack(sandbox / "custom_nodes" / name, pack)
    (sandbox / "user/default/comfy.settings.json").write_text(json.dumps({"Comfy.TutorialCompleted": True}))
    (sandbox / "user/default/workflows/portrait.json").write_text(json.dumps(SAVED_WORKFLOW))
    seed_history(sandbox / "user/__nodes_stats/usage_stats.db")
    total = sum(sample.size for sample in MODELS)
    print(f"[sandbox] {len(MODELS)} sample models ({total / 2**30:.0f} GB, sparse: they take no disk space), "
          f"{len(PACKS)} sample packs and a {HISTORY_DAYS}-day history in {sandbox}")


def write_sparse(path: Path, size: int, content: str) -> None:
    """A file of `size` bytes: `content` at the start, then a hole (reads as zeros, stores nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(f"usage-stats sandbox sample: {content}\n".encode())
        handle.truncate(size)


def write_pack(folder: Path, pack: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    mappings = ", ".join(f'"{node}": type("{node}", (_PassThrough,), {{}})' for node in pack["nodes"])
    source = PACK_SOURCE.format(import_seconds=pack["import_seconds"], mappings=mappings)
    (folder / "__init__.py").write_text(source)


def seed_history(database: Path) -> None:
    now = int(time.time())
    database.parent.mkdir(parents=True, exist_ok=True)
    tracked = [s for s in MODELS if not s.path.startswith("loras/")]  # LoRAs are off until the setting is on
    UsageStore(str(database), clock=lambda: now - HISTORY_DAYS * DAY).note_installed(
        packages=list(PACKS), models=[_key(s.path) for s in tracked])
    nodes_used = {**{n: ("__builtin__", last) for n, last in CORE_NODES.items()},
                  **{n: (pack, last) for pack, spec in PACKS.items() for n, last in spec["nodes"].items()}}
    store = UsageStore(str(database), clock=lambda: now)
    uses = []
    for days in range(HISTORY_DAYS, 0, -1):
        models = frozenset(_key(s.path) for s in tracked if s.last_used is not None and s.last_used <= days)
        nodes = {n: pack for n, (pack, last) in nodes_used.items() if last is not None and last <= days}
        uses += [PromptUse(now - days * DAY + i * 600, nodes, models) for i in range(1 + days % 5)]
    rows = store.record(uses)
    store.record_outcomes(
        Outcome(use, row, "error" if i % 9 == 0 else "success", exec_ms=2000 + (i * 7919) % 9000)
        for i, (use, row) in enumerate(zip(uses, rows, strict=True))
    )
    store.close()


def _key(path: str) -> tuple[str, str]:
    model_type, name = path.split("/", 1)
    return model_type, name


if __name__ == "__main__":
    main(Path(sys.argv[1]))
