"""The tracking core inside a real ComfyUI: real prompts to /prompt, answers from /nodes-stats.

One server serves the module. Its models are 1-byte placeholders (ComfyUI lists files by name; the
hook sees a prompt before anything loads). The database is seeded before start with a prompt from 90
days ago, so aging is checked against a real history.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from comfyui import ComfyServer, copy_pack, place_file
from usage_stats.domain.values import DAY, PromptUse
from usage_stats.tracker import UsageStore

pytestmark = pytest.mark.comfyui

PACKS = Path(__file__).parent / "packs"
NOW = int(time.time())

CORE_MODELS = {  # file under models/ -> (type it must be recorded as, name)
    "checkpoints/core_ckpt.safetensors": ("checkpoints", "core_ckpt.safetensors"),
    "checkpoints/sdxl/in_subfolder.safetensors": ("checkpoints", "sdxl/in_subfolder.safetensors"),
    "vae/core_vae.safetensors": ("vae", "core_vae.safetensors"),
    "controlnet/core_cn.safetensors": ("controlnet", "core_cn.safetensors"),
    "unet/core_unet.safetensors": ("diffusion_models", "core_unet.safetensors"),
    "clip/core_clip.safetensors": ("text_encoders", "core_clip.safetensors"),
    "text_encoders/te1.safetensors": ("text_encoders", "te1.safetensors"),
    "text_encoders/te2.safetensors": ("text_encoders", "te2.safetensors"),
    "text_encoders/te3.safetensors": ("text_encoders", "te3.safetensors"),
    "text_encoders/te4.safetensors": ("text_encoders", "te4.safetensors"),
    "upscale_models/core_up.pth": ("upscale_models", "core_up.pth"),
    "hypernetworks/core_hn.pt": ("hypernetworks", "core_hn.pt"),
    "photomaker/core_pm.bin": ("photomaker", "core_pm.bin"),
    "clip_vision/core_cv.safetensors": ("clip_vision", "core_cv.safetensors"),
    "style_models/core_style.safetensors": ("style_models", "core_style.safetensors"),
    "gligen/core_gligen.safetensors": ("gligen", "core_gligen.safetensors"),
    "model_patches/core_patch.safetensors": ("model_patches", "core_patch.safetensors"),
    "latent_upscale_models/core_lu.safetensors": ("latent_upscale_models", "core_lu.safetensors"),
}

CORE_PROMPT = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "core_ckpt.safetensors"}},
    "2": {"class_type": "ImageOnlyCheckpointLoader", "inputs": {"ckpt_name": "sdxl/in_subfolder.safetensors"}},
    "3": {"class_type": "VAELoader", "inputs": {"vae_name": "core_vae.safetensors"}},
    "4": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "core_cn.safetensors"}},
    "5": {"class_type": "UNETLoader", "inputs": {"unet_name": "core_unet.safetensors", "weight_dtype": "default"}},
    "6": {"class_type": "CLIPLoader", "inputs": {"clip_name": "core_clip.safetensors", "type": "stable_diffusion"}},
    "7": {"class_type": "DualCLIPLoader",
          "inputs": {"clip_name1": "te1.safetensors", "clip_name2": "te2.safetensors", "type": "sdxl"}},
    "8": {"class_type": "TripleCLIPLoader", "inputs": {f"clip_name{i}": f"te{i}.safetensors" for i in (1, 2, 3)}},
    "9": {"class_type": "QuadrupleCLIPLoader", "inputs": {f"clip_name{i}": f"te{i}.safetensors" for i in (1, 2, 3, 4)}},
    "10": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "core_up.pth"}},
    "11": {"class_type": "HypernetworkLoader", "inputs": {"model": ["1", 0], "hypernetwork_name": "core_hn.pt", "strength": 1.0}},
    "12": {"class_type": "PhotoMakerLoader", "inputs": {"photomaker_model_name": "core_pm.bin"}},
    "13": {"class_type": "CLIPVisionLoader", "inputs": {"clip_name": "core_cv.safetensors"}},
    "14": {"class_type": "StyleModelLoader", "inputs": {"style_model_name": "core_style.safetensors"}},
    "15": {"class_type": "GLIGENLoader", "inputs": {"gligen_name": "core_gligen.safetensors"}},
    "16": {"class_type": "ModelPatchLoader", "inputs": {"name": "core_patch.safetensors"}},
    "17": {"class_type": "LatentUpscaleModelLoader", "inputs": {"model_name": "core_lu.safetensors"}},
    "18": {"class_type": "LoraLoader", "inputs": {"model": ["1", 0], "clip": ["1", 1], "lora_name": "core_lora.safetensors",
                                                  "strength_model": 1.0, "strength_clip": 1.0}},
    "19": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "core_ckpt.safetensors"}},
}


def seed_history(database: Path) -> None:
    """A tracker that ran 90 days ago: it saw old.safetensors and never.safetensors installed, used old once."""
    store = UsageStore(str(database), clock=lambda: NOW - 90 * DAY)
    store.note_installed(models=[("checkpoints", "old.safetensors"), ("checkpoints", "never.safetensors")])
    store.record([PromptUse(NOW - 90 * DAY, {"CheckpointLoaderSimple": "__builtin__", "GoneNode": "GonePack"},
                            frozenset({("checkpoints", "old.safetensors")}))])
    store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    comfy = ComfyServer(tmp_path_factory.mktemp("acceptance"))
    for relative in [*CORE_MODELS, "loras/core_lora.safetensors", "checkpoints/twin.safetensors", "vae/twin.safetensors",
                     "embeddings/sub/neg.pt", "checkpoints/old.safetensors", "checkpoints/never.safetensors",
                     "ipadapter/adapter.bin", "vae/v3_vae.safetensors"]:
        place_file(comfy.models / relative)
    for pack in ("V1Pack", "V3Pack", "single_file_pack.py"):
        copy_pack(PACKS / pack, comfy.custom_nodes)
    (comfy.custom_nodes / "BrokenPack").mkdir()
    (comfy.custom_nodes / "BrokenPack" / "__init__.py").write_text("raise ImportError('broken on purpose')\n")
    (comfy.custom_nodes / "FrontendOnly").mkdir()
    (comfy.custom_nodes / "FrontendOnly" / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\nWEB_DIRECTORY = '.'\n")
    (comfy.custom_nodes / "OldPack.disabled").mkdir()
    (comfy.custom_nodes / ".disabled" / "ManagerDisabled@1_0_0").mkdir(parents=True)
    (comfy.custom_nodes / "ComfyUI-Manager").mkdir()
    (comfy.custom_nodes / "ComfyUI-Manager" / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    zipped_manager = comfy.custom_nodes / "ComfyUI-Manager-main"  # as a GitHub zip extracts it
    (zipped_manager / "glob").mkdir(parents=True)
    (zipped_manager / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    (zipped_manager / "pyproject.toml").write_text('[project]\nname = "comfyui-manager"\nversion = "3.3.5"\n')
    (zipped_manager / "glob" / "manager_server.py").write_text("")
    comfy.database.parent.mkdir(parents=True)
    seed_history(comfy.database)
    with comfy:
        yield comfy


RUNNABLE_OUTPUT = {  # ComfyUI accepts a prompt only with a valid output; these two run in milliseconds on CPU
    "900": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    "901": {"class_type": "SaveLatent", "inputs": {"samples": ["900", 0], "filename_prefix": "acceptance"}},
}


def record(server: ComfyServer, prompt: dict) -> None:
    """Submit a prompt ComfyUI accepts (the loaders in it are not connected to the output, so they never
    load the placeholder files) and wait until the extension has it on disk."""
    before = server.get("/nodes-stats/status")["prompts_recorded"]
    status, answer = server.queue_prompt({**prompt, **RUNNABLE_OUTPUT})
    assert status == 200, answer
    server.wait_recorded(before + 1)


def test_every_core_model_input_is_recorded_under_its_canonical_type(server):
    record(server, CORE_PROMPT)
    for model_type, name in CORE_MODELS.values():
        model = server.model(model_type, name)
        assert model is not None, f"{model_type}/{name} is not listed"
        assert (model["status"], model["count"]) == ("used", 1), f"{model_type}/{name}: {model}"


def test_alias_types_appear_once_under_the_canonical_name(server):
    types = [section["model_type"] for section in server.get("/nodes-stats/models")]
    assert "diffusion_models" in types and "text_encoders" in types
    assert "unet" not in types and "clip" not in types


def test_loras_are_not_tracked(server):
    record(server, {"1": CORE_PROMPT["1"], "2": CORE_PROMPT["18"]})
    assert "loras" not in [section["model_type"] for section in server.get("/nodes-stats/models")]


def test_a_name_in_two_folder_types_is_recorded_as_the_type_the_input_offers(server):
    record(server, {"1": {"class_type": "VAELoader", "inputs": {"vae_name": "twin.safetensors"}}})
    assert server.model("vae", "twin.safetensors")["status"] == "used"
    assert server.model("checkpoints", "twin.safetensors")["status"] == "unused_new"


def test_an_embedding_named_in_prompt_text_is_recorded(server):
    text = "a photo, (embedding:neg:1.1), sharp"
    record(server, {"1": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["2", 0]}},
                    "2": CORE_PROMPT["6"]})
    assert server.model("embeddings", "sub/neg.pt")["status"] == "used"


def test_a_model_added_while_the_server_runs_is_listed_and_recorded_without_restart(server):
    place_file(server.models / "checkpoints" / "added_live.safetensors")
    assert server.model("checkpoints", "added_live.safetensors")["status"] == "unused_new"
    record(server, {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "added_live.safetensors"}}})
    assert server.model("checkpoints", "added_live.safetensors")["count"] == 1


def test_custom_v1_and_v3_packs_are_credited_with_their_nodes_and_models(server):
    record(server, {
        "1": {"class_type": "V1PackLoader", "inputs": {"ckpt": "core_ckpt.safetensors", "adapter": "adapter.bin"}},
        "2": {"class_type": "V3PackLoader", "inputs": {"vae_name": "v3_vae.safetensors"}},
        "3": {"class_type": "SingleFileNode", "inputs": {"value": 3}},
    })
    v1, v3, single = server.package("V1Pack"), server.package("V3Pack"), server.package("single_file_pack")
    assert (v1["status"], v1["used_nodes"], v1["total_nodes"]) == ("used", 1, 2)
    assert [n["class_type"] for n in v1["nodes"]] == ["V1PackLoader"]
    assert (v3["status"], v3["total_nodes"]) == ("used", 1)
    assert (single["status"], single["total_nodes"]) == ("used", 1)
    assert server.model("ipadapter", "adapter.bin")["status"] == "used"  # a folder type a pack added
    assert server.model("vae", "v3_vae.safetensors")["status"] == "used"


def test_core_nodes_are_in_usage_but_not_a_removable_package(server):
    record(server, {"1": CORE_PROMPT["1"]})
    usage = {row["class_type"]: row for row in server.get("/nodes-stats/usage")}
    assert usage["CheckpointLoaderSimple"]["package"] == "__builtin__"
    assert all(p["package"] != "__builtin__" for p in server.get("/nodes-stats/packages"))


def test_broken_disabled_and_frontend_only_packs_are_reported_as_such(server):
    broken, disabled = server.package("BrokenPack"), server.package("OldPack")
    manager_disabled, frontend = server.package("ManagerDisabled"), server.package("FrontendOnly")
    assert broken["import_failed"] and broken["status"] != "uninstalled"
    assert disabled["disabled"] and disabled["status"] != "uninstalled"
    assert manager_disabled["disabled"]
    assert frontend["frontend_only"] and frontend["status"] == "unused_new"


def test_comfyui_manager_and_this_extension_are_protected(server):
    for name in ("ComfyUI-Manager", "ComfyUI-Manager-main", "comfyui-usage-stats"):
        package = server.package(name)
        assert package["protected"] and package["status"] in ("used", "unused_new"), package
    assert not server.package("FrontendOnly")["protected"]


def test_never_used_items_age_from_their_first_sighting_not_from_the_oldest_prompt(server):
    installed_today = [p for p in server.get("/nodes-stats/packages") if p["installed"]]
    assert len(installed_today) >= 5
    for pack in installed_today:  # the log holds a 90-day-old prompt, yet nothing installed today has aged
        assert pack["status"] in ("used", "unused_new"), pack
    fresh = server.package("FrontendOnly")
    assert fresh["status"] == "unused_new"  # the log holds a 90-day-old prompt; this pack was first seen today
    assert server.model("checkpoints", "never.safetensors")["status"] == "safe_to_remove"  # seen 90 days ago
    assert server.model("checkpoints", "old.safetensors")["status"] == "safe_to_remove"  # last used 90 days ago
    assert server.model("vae", "core_vae.safetensors")["status"] in ("used", "unused_new")
    assert server.package("GonePack")["status"] == "uninstalled"


def test_models_can_be_filtered_and_paged(server):
    status, data, headers = server.request("GET", "/nodes-stats/models?type=checkpoints&status=safe_to_remove&limit=1")
    assert status == 200 and int(headers["X-Total-Count"]) == 2
    assert [m["model_name"] for s in data for m in s["models"]] == ["never.safetensors"]


def test_bad_query_parameters_get_a_400_with_a_json_error(server):
    for path in ("/nodes-stats/models?status=nope", "/nodes-stats/models?limit=-1", "/nodes-stats/models?type=nope",
                 "/nodes-stats/packages?bogus=1", "/nodes-stats/usage?package=x&extra=1"):
        status, data, _ = server.request("GET", path)
        assert status == 400 and isinstance(data, dict) and data["error"], path


def test_responses_are_never_cached_and_also_served_under_api(server):
    status, data, headers = server.request("GET", "/api/nodes-stats/packages")
    assert status == 200 and isinstance(data, list)
    assert headers["Cache-Control"] == "no-store"


def test_the_database_lives_in_the_system_user_folder_in_wal_mode(server):
    assert server.database.exists()
    assert not (server.base / "user" / "default" / "usage_stats.db").exists()
    with sqlite3.connect(server.database) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reset_needs_confirmation_then_clears_everything(server):
    record(server, {"1": CORE_PROMPT["1"]})
    status, data, _ = server.request("POST", "/nodes-stats/reset", {})
    assert status == 400 and "confirm" in data["error"]
    assert server.get("/nodes-stats/status")["prompts_recorded"] > 0
    status, data, _ = server.request("POST", "/nodes-stats/reset", b"{not json")
    assert status == 400
    status, data, _ = server.request("POST", "/nodes-stats/reset", {"confirm": True})
    assert (status, data["status"]) == (200, "ok")
    assert server.get("/nodes-stats/status")["prompts_recorded"] == 0
    assert server.get("/nodes-stats/usage") == []
    assert all(m["count"] == 0 for s in server.get("/nodes-stats/models") for m in s["models"])


def test_an_older_node_stats_history_is_imported_once(make_server):
    comfy = make_server()
    legacy = comfy.base / "user" / "nodes_stats" / "usage_stats.db"
    legacy.parent.mkdir(parents=True)
    with sqlite3.connect(legacy) as db:
        db.executescript("""
            CREATE TABLE node_usage (class_type TEXT PRIMARY KEY, package TEXT NOT NULL, count INTEGER NOT NULL,
                                     first_seen TEXT NOT NULL, last_seen TEXT NOT NULL);
            CREATE TABLE prompt_log (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp TEXT NOT NULL, class_types TEXT NOT NULL);
            CREATE TABLE model_usage (model_name TEXT PRIMARY KEY, model_type TEXT NOT NULL, count INTEGER NOT NULL,
                                      first_seen TEXT NOT NULL, last_seen TEXT NOT NULL);
            INSERT INTO node_usage VALUES ('KSampler', '__builtin__', 7,
                                           '2026-01-01T00:00:00+00:00', '2026-03-01T00:00:00+00:00');
            INSERT INTO prompt_log (timestamp, class_types) VALUES ('2026-03-01T00:00:00+00:00', '["KSampler"]');
            INSERT INTO model_usage VALUES ('legacy.safetensors', 'checkpoints', 7, '2026-01-01T00:00:00', '2026-03-01T00:00:00');
        """)
    comfy.start()
    ksampler = next(row for row in comfy.get("/nodes-stats/usage") if row["class_type"] == "KSampler")
    assert (ksampler["count"], ksampler["last_seen"]) == (7, "2026-03-01T00:00:00+00:00")
    assert comfy.model("checkpoints", "legacy.safetensors")["status"] == "uninstalled"
    assert "imported the history" in comfy.log()
    comfy.restart()
    ksampler = next(row for row in comfy.get("/nodes-stats/usage") if row["class_type"] == "KSampler")
    assert ksampler["count"] == 7
