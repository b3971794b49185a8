"""What counts as use on a real ComfyUI, through miniatures of popular packs (tests/packs/EvidencePack).

Each pack node opens the tiny real files it would load with ComfyUI's own functions. For each shape: the files
that load are counted, the ones switched off are referenced only, nothing else is counted, and the files a
preset loader picks by itself are counted from what ran (the runtime witness), since no input names them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from comfyui import ComfyServer, copy_pack, place_file, until
from test_memory_acceptance import run
from tiny_models import tiny_weights

pytestmark = pytest.mark.comfyui

PACKS = Path(__file__).parent / "packs"
FILES = {
    "loras": ["power_on.safetensors", "power_off.safetensors", "power_zero.safetensors",
              "stack_on.safetensors", "stack_off.safetensors", "stack_beyond.safetensors",
              "list_on.safetensors", "sub/list_off.safetensors", "tag_on.safetensors", "tag_zero.safetensors"],
    "ipadapter": ["ip-adapter_sd15_light.safetensors", "ip-adapter-plus_sd15.safetensors"],
    "clip_vision": ["CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"],
    "vae": ["picked.safetensors", "not_picked.safetensors"],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    comfy = ComfyServer(tmp_path_factory.mktemp("evidence"))
    for pack in ("EvidencePack", "EvidenceV3Pack", "NewestFoldersPack"):
        copy_pack(PACKS / pack, comfy.custom_nodes)
    for relative in ("datasets/cats/1.png", "datasets/cats/1.txt", "datasets/latents.safetensors"):
        place_file(comfy.base / relative, b"not a model" * 1000)
    place_file(comfy.base / "fonts" / "Inter.ttf", b"a font" * 1000)
    for seed, (folder, name) in enumerate((f, n) for f, names in FILES.items() for n in names):
        tiny_weights(comfy.models / folder / name, seed)
    with comfy:
        status, answer, _ = comfy.request("PUT", "/nodes-stats/config", {"track_loras": True})
        assert status == 200, answer
        yield comfy


def rows(server: ComfyServer) -> dict[tuple[str, str], dict]:
    return {(s["model_type"], m["model_name"]): m for s in server.get("/nodes-stats/models") for m in s["models"]}


def settled(server: ComfyServer, prompt: dict, used: set, referenced: set) -> dict:
    """Run the prompt, wait until its uses (with what ran) and references are written; every row then."""
    assert run(server, prompt)["status_str"] == "success"

    def written():
        found = rows(server)
        done = all(found[k]["count"] >= 1 and "loaded" in found[k]["witnesses"] for k in used)
        return found if done and all(found[k]["referenced_count"] >= 1 for k in referenced) else None

    return until(written, 20, f"the uses {sorted(used)} and references {sorted(referenced)}", server)


def assert_only(found: dict, used: set, referenced: set, among: set) -> None:
    """Of the files `among`, exactly `used` are used (counted), exactly `referenced` named but switched off."""
    assert {k for k in among if found[k]["count"]} == used
    assert {k for k in among if found[k]["referenced_count"] and not found[k]["count"]} == referenced
    for key in referenced:
        assert found[key]["witnesses"] == ["referenced"] and found[key]["status"] != "safe_to_remove"


def loras(*names: str) -> set:
    return {("loras", n) for n in names}


def test_a_dict_row_loader_with_on_off_like_rgthree_power_lora_loader(server):
    prompt = {"1": {"class_type": "MiniPowerLoraLoader", "inputs": {
        "PowerLoraLoaderHeaderWidget": {"type": "PowerLoraLoaderHeaderWidget"},
        "lora_1": {"on": True, "lora": "power_on.safetensors", "strength": 0.8, "strengthTwo": None},
        "lora_2": {"on": False, "lora": "power_off.safetensors", "strength": 1.0, "strengthTwo": None},
        "lora_3": {"on": True, "lora": "power_zero.safetensors", "strength": 0, "strengthTwo": None},
        "➕ Add Lora": ""}}}
    used, referenced = loras("power_on.safetensors"), loras("power_off.safetensors", "power_zero.safetensors")
    found = settled(server, prompt, used, referenced)
    assert_only(found, used, referenced, loras("power_on.safetensors", "power_off.safetensors", "power_zero.safetensors"))
    assert found[("loras", "power_on.safetensors")]["witnesses"] == ["loaded", "in prompt"]


def test_a_stack_with_switches_strengths_and_a_count_like_comfyroll_and_efficiency(server):
    prompt = {"1": {"class_type": "MiniLoraStack", "inputs": {
        "lora_count": 2,
        "switch_1": "On", "lora_name_1": "stack_on.safetensors", "model_weight_1": 1.0, "clip_weight_1": 0.5,
        "switch_2": "Off", "lora_name_2": "stack_off.safetensors", "model_weight_2": 1.0, "clip_weight_2": 1.0,
        "switch_3": "On", "lora_name_3": "stack_beyond.safetensors", "model_weight_3": 1.0, "clip_weight_3": 1.0}}}
    used, referenced = loras("stack_on.safetensors"), loras("stack_off.safetensors", "stack_beyond.safetensors")
    found = settled(server, prompt, used, referenced)
    assert_only(found, used, referenced, used | referenced)


def test_a_list_of_dicts_with_names_without_extension_like_lora_manager(server):
    prompt = {"1": {"class_type": "MiniLoraList", "inputs": {"loras": {"__value__": [
        {"name": "list_on", "strength": 1.0, "active": True},
        {"name": "list_off", "strength": 1.0, "active": False}]}}}}
    used, referenced = loras("list_on.safetensors"), loras("sub/list_off.safetensors")
    found = settled(server, prompt, used, referenced)
    assert_only(found, used, referenced, used | referenced)


def test_lora_tags_in_text_fed_by_a_separate_string_node(server):
    prompt = {
        "1": {"class_type": "MiniStringLiteral", "inputs": {"string": "a cat <lora:tag_on:0.7> <lora:tag_zero:0>"}},
        "2": {"class_type": "MiniLoraTagLoader", "inputs": {"text": ["1", 0]}},
    }
    used, referenced = loras("tag_on.safetensors"), loras("tag_zero.safetensors")
    found = settled(server, prompt, used, referenced)
    assert_only(found, used, referenced, used | referenced)


def test_a_preset_loader_s_files_are_counted_from_what_ran(server):
    prompt = {"1": {"class_type": "MiniUnifiedLoader", "inputs": {"preset": "PLUS (high strength)"}}}
    used = {("ipadapter", "ip-adapter-plus_sd15.safetensors"), ("clip_vision", "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors")}
    found = settled(server, prompt, used, set())
    for key in used:
        assert found[key]["witnesses"] == ["loaded"] and found[key]["status"] == "used"
    assert found[("ipadapter", "ip-adapter_sd15_light.safetensors")]["count"] == 0


def test_a_v3_node_with_a_model_picker(server):
    prompt = {"1": {"class_type": "MiniV3VaeLoader", "inputs": {"vae_name": "picked.safetensors"}}}
    used = {("vae", "picked.safetensors")}
    found = settled(server, prompt, used, set())
    assert found[("vae", "picked.safetensors")]["witnesses"] == ["loaded", "in prompt"]
    assert found[("vae", "not_picked.safetensors")]["count"] == 0


def test_nothing_the_packs_did_not_load_was_counted(server):
    counted = {key for key, row in rows(server).items() if row["count"]}
    expected = loras("power_on.safetensors", "stack_on.safetensors", "list_on.safetensors", "tag_on.safetensors") | {
        ("ipadapter", "ip-adapter-plus_sd15.safetensors"), ("clip_vision", "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"),
        ("vae", "picked.safetensors")}
    assert counted <= expected  # with every test of this module run first: equal
    ours = [line for line in server.log().splitlines() if "[usage-stats]" in line]
    assert not [line for line in ours if "stopped watching" in line or "could not" in line], ours


def test_datasets_and_fonts_never_reach_the_models_tab_the_disk_totals_or_quarantine(server):
    types = {section["model_type"] for section in server.get("/nodes-stats/models")}
    assert {"datasets", "fonts"}.isdisjoint(types) and {"loras", "ipadapter", "vae"} <= types
    assert {"datasets", "fonts"}.isdisjoint(server.get("/nodes-stats/config")["model_types"])
    assert {"datasets", "fonts"}.isdisjoint(server.get("/nodes-stats/disk")["types"])
    for model_type, name in (("datasets", "latents.safetensors"), ("fonts", "Inter.ttf")):
        status, answer, _ = server.request("POST", "/nodes-stats/quarantine", {
            "confirm": True, "models": [{"model_type": model_type, "model_name": name}]})
        assert status >= 400 and "error" in answer, answer
    assert (server.base / "datasets" / "latents.safetensors").exists() and (server.base / "fonts" / "Inter.ttf").exists()
