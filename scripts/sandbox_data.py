"""Sample data for the sandbox: placeholder model files and a 120-day usage history covering every tier.

Run by scripts/sandbox with ComfyUI's python: `python scripts/sandbox_data.py <sandbox dir>`.
"""

from __future__ import annotations

import json
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
package = types.ModuleType("usage_stats")
package.__path__ = [str(REPO)]
sys.modules["usage_stats"] = package

from usage_stats.tracker import DAY, Outcome, PromptUse, UsageStore  # noqa: E402

MODELS = {  # file under models/ -> days since last use (None: never used)
    "checkpoints/sd_xl_base_1.0.safetensors": 1,
    "checkpoints/sdxl/juggernaut_xl.safetensors": 3,
    "checkpoints/dreamshaper_8.safetensors": 45,
    "checkpoints/v1-5-pruned-emaonly.ckpt": 100,
    "checkpoints/old_experiments/merge_test.safetensors": None,
    "vae/sdxl_vae.safetensors": 1,
    "vae/vae-ft-mse-840000.safetensors": 100,
    "controlnet/control_v11p_sd15_canny.pth": 70,
    "controlnet/xinsir_union_sdxl.safetensors": 5,
    "text_encoders/t5xxl_fp8.safetensors": 2,
    "text_encoders/clip_l.safetensors": 2,
    "diffusion_models/flux1-dev-fp8.safetensors": 2,
    "upscale_models/4x-UltraSharp.pth": 10,
    "upscale_models/RealESRGAN_x4plus.pth": None,
    "embeddings/EasyNegative.safetensors": 40,
    "loras/detail_tweaker.safetensors": 1,
}
NODES = {"KSampler": 1, "CheckpointLoaderSimple": 1, "CLIPTextEncode": 1, "VAEDecode": 1, "SaveImage": 1,
         "ControlNetApplyAdvanced": 5, "UpscaleModelLoader": 10, "ImageUpscaleWithModel": 10}


def main(sandbox: Path) -> None:
    for relative in MODELS:
        path = sandbox / "models" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    for folder in ("custom_nodes", "input", "output", "user/default"):
        (sandbox / folder).mkdir(parents=True, exist_ok=True)
    (sandbox / "user/default/comfy.settings.json").write_text(json.dumps({"Comfy.TutorialCompleted": True}))
    seed_history(sandbox / "user/__nodes_stats/usage_stats.db")
    print(f"[sandbox] sample models and a 120-day history in {sandbox}")


def seed_history(database: Path) -> None:
    now = int(time.time())
    database.parent.mkdir(parents=True, exist_ok=True)
    installed = [(_type(r), _name(r)) for r in MODELS if not r.startswith("loras/")]
    UsageStore(str(database), clock=lambda: now - 120 * DAY).note_installed(models=installed)
    store = UsageStore(str(database), clock=lambda: now)
    uses = []
    for days in range(120, 0, -1):
        models = {(_type(r), _name(r)) for r, last in MODELS.items()
                  if last is not None and last <= days and not r.startswith("loras/")}
        nodes = {n: "__builtin__" for n, last in NODES.items() if last <= days}
        uses += [PromptUse(now - days * DAY + i * 600, nodes, frozenset(models)) for i in range(1 + days % 5)]
    rows = store.record(uses)
    store.record_outcomes(
        Outcome(use, row, "error" if i % 9 == 0 else "success", exec_ms=2000 + (i * 7919) % 9000)
        for i, (use, row) in enumerate(zip(uses, rows, strict=True))
    )
    store.close()


def _type(relative: str) -> str:
    return relative.split("/", 1)[0]


def _name(relative: str) -> str:
    return relative.split("/", 1)[1]


if __name__ == "__main__":
    main(Path(sys.argv[1]))
