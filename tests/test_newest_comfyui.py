"""Shapes of the newest ComfyUI (Comfy-Org/ComfyUI as read for /work/shared/reference/comfyui-newest.md), on the fake.

Each fake follows the source it names: comfy_api/latest/_io.py (DynamicCombo.Input.as_dict and
_expand_schema_for_dynamic, _DynamicGroup), folder_paths.py (`datasets`), nodes.py (VAELoader.image_taes),
server.py post_prompt (a null prompt_id is minted), app/node_replace_manager.py (NodeReplaceManager).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from comfyui import place_file
from usage_stats.mapper import ModelMapper, PackageMapper
from usage_stats.recording.writer import Writer
from usage_stats.tracker import UsageStore


@pytest.fixture
def mapper(fake_comfy):
    for relative in ["checkpoints/ck.safetensors", "checkpoints/other.safetensors", "loras/l.safetensors",
                     "vae_approx/taef2_decoder.safetensors", "vae_approx/taef2_encoder.safetensors"]:
        place_file(fake_comfy.models / relative)
    mapper = ModelMapper()
    mapper.choose_types(track_loras=True)
    return mapper


def register(fake_comfy, class_type: str, required) -> None:
    fake_comfy.nodes.NODE_CLASS_MAPPINGS[class_type] = type(
        class_type, (), {"INPUT_TYPES": classmethod(lambda cls: {"required": required()})})


def test_a_model_picker_in_a_dynamic_combo_is_read_under_its_dotted_key(mapper, fake_comfy):
    fake_comfy.nodes.NODE_CLASS_MAPPINGS["PickerNode"] = fake_comfy.nodes.DynamicPickerLoader
    prompt = {"1": {"class_type": "PickerNode", "inputs": {
        "model": "checkpoint", "model.ckpt_name": "ck.safetensors",
        "model.extra": "lora", "model.extra.lora_name": "l.safetensors",  # left over from the other option
    }}}
    found = mapper.models_in(prompt)
    assert found.used == {("checkpoints", "ck.safetensors")}
    assert found.referenced == {("loras", "l.safetensors")}  # named, but ComfyUI does not read it
    prompt["1"]["inputs"]["model"] = "checkpoint+lora"
    assert mapper.models_in(prompt).used == {("checkpoints", "ck.safetensors"), ("loras", "l.safetensors")}


def test_dynamic_group_rows_are_read_under_group_row_field_keys(mapper, fake_comfy):
    # _DynamicGroup: fields submitted as '<group>.<index>.<field>', template as a V1 input dict, max <= 20.
    template = lambda: {"required": {"ckpt_name": ("COMBO", {"options": fake_comfy.folder_paths.get_filename_list(  # noqa: E731
        "checkpoints")}), "enabled": ("BOOLEAN", {})}}  # as _DynamicGroup.Input.as_dict gives its template
    register(fake_comfy, "GroupNode", lambda: {"rows": ("COMFY_DYNAMICGROUP_V3", {"template": template(), "min": 0, "max": 4})})
    found = mapper.models_in({"1": {"class_type": "GroupNode", "inputs": {
        "rows.0.ckpt_name": "ck.safetensors", "rows.0.enabled": True,
        "rows.1.ckpt_name": "other.safetensors", "rows.1.enabled": False}}})
    assert (found.used, found.referenced) == ({("checkpoints", "ck.safetensors")}, {("checkpoints", "other.safetensors")})


def test_non_model_folder_types_never_become_model_types(mapper, fake_comfy):
    # The fake registers datasets and fonts as the newest folder_paths.py does; a pack adds a type of its own.
    fake_comfy.folder_paths.add_model_folder_path("ipadapter", str(fake_comfy.models / "ipadapter"))  # no extensions
    for relative in ["datasets/cats/1.png", "datasets/cats/1.txt", "datasets/latents.safetensors", "fonts/Inter.ttf"]:
        place_file(fake_comfy.base / relative)
    for relative in ["ipadapter/ip.safetensors", "ipadapter/README.md"]:
        place_file(fake_comfy.models / relative)
    assert {"datasets", "fonts"}.isdisjoint(mapper.model_types())
    installed = mapper.installed()
    assert "datasets" not in installed and "fonts" not in installed
    assert installed["ipadapter"] == ["ip.safetensors"]


def test_taesd_decoders_come_from_comfyuis_vae_loader(mapper):
    found = mapper.models_in({"1": {"class_type": "VAELoader", "inputs": {"vae_name": "taef2"}}})
    assert found.used == {("vae_approx", "taef2_decoder.safetensors"), ("vae_approx", "taef2_encoder.safetensors")}


def test_a_null_prompt_id_gets_the_id_the_server_will_use(fake_comfy):
    writer = Writer(lambda: UsageStore(str(fake_comfy.base / "db.sqlite")), PackageMapper("usage-stats"), ModelMapper())
    for body in ({"prompt": {}, "prompt_id": None}, {"prompt": {}}):
        writer.on_prompt(body)
        assert str(uuid.UUID(body["prompt_id"])) == body["prompt_id"]  # canonical lowercase, as validate_job_id wants
    given = {"prompt": {}, "prompt_id": "0c5d3b1e-6a5e-4f5b-9a4e-2a1d3c4b5e6f"}
    assert writer.on_prompt(given)["prompt_id"] == "0c5d3b1e-6a5e-4f5b-9a4e-2a1d3c4b5e6f"


class NodeReplaceManager:
    """app/node_replace_manager.py NodeReplaceManager, as far as post_prompt uses it: a retired class_type that
    is no longer registered runs as the first registered successor, its inputs renamed by `input_mapping`."""

    def __init__(self, registered: dict):
        self.registered = registered
        self._replacements: dict[str, list[dict]] = {}

    def register(self, old_node_id: str, new_node_id: str, input_mapping: list[dict]) -> None:
        self._replacements.setdefault(old_node_id, []).append({"new": new_node_id, "inputs": input_mapping})

    def has_replacement(self, old_node_id: str) -> bool:
        return old_node_id in self._replacements

    def apply_replacements(self, prompt: dict) -> None:
        for number, node in list(prompt.items()):
            if not isinstance(node, dict) or "class_type" not in node or "inputs" not in node:
                continue
            if node["class_type"] in self.registered or not self.has_replacement(node["class_type"]):
                continue
            replacement = self._replacements[node["class_type"]][0]
            if replacement["new"] not in self.registered:
                continue
            inputs = {}
            for mapping in replacement["inputs"]:
                inputs[mapping["new_id"]] = mapping["set_value"] if "set_value" in mapping else node["inputs"][mapping["old_id"]]
            prompt[number] = {**node, "class_type": replacement["new"], "inputs": inputs}


def test_a_replaced_node_type_is_recorded_as_what_runs(fake_comfy, mapper, monkeypatch):
    from server import PromptServer

    monkeypatch.setattr(PromptServer, "instance", None)  # the server this test makes is gone after it
    replacements = PromptServer().node_replace_manager = NodeReplaceManager(fake_comfy.nodes.NODE_CLASS_MAPPINGS)
    replacements.register("OldCheckpointLoader", "CheckpointLoaderSimple", [{"old_id": "model", "new_id": "ckpt_name"}])
    writer = Writer(lambda: UsageStore(str(fake_comfy.base / "db.sqlite")), PackageMapper("usage-stats"), mapper)
    asked = {"1": {"class_type": "OldCheckpointLoader", "inputs": {"model": "ck.safetensors"}}}
    use = writer.extract(0, asked)
    assert set(use.nodes) == {"CheckpointLoaderSimple"} and use.models == {("checkpoints", "ck.safetensors")}
    assert asked["1"]["class_type"] == "OldCheckpointLoader"  # the prompt ComfyUI validates next is not ours to change
    assert set(writer.extract(0, {"1": {"class_type": "NeverRegistered", "inputs": {}}}).nodes) == {"NeverRegistered"}


def test_packs_the_newest_comfyui_refused_are_labelled_refused_not_failed(fake_comfy, monkeypatch):
    """nodes.py init_external_custom_nodes asks app/governance.py pack_refusal(path) and, under --enable-manager,
    comfyui_manager.should_be_disabled(path) before importing a pack; a refused pack never ran."""
    import sys
    import types

    from comfy.cli_args import args
    from usage_stats.domain.tiers import package_cap

    denied, blocked = {"denied-pack"}, {"blocked-pack"}
    governance = types.SimpleNamespace(pack_refusal=lambda path: (
        f"Custom node pack '{Path(path).name}' is not permitted by your organization's policy."
        if Path(path).name.lower() in denied else None))
    monkeypatch.setitem(sys.modules, "app", types.SimpleNamespace(governance=governance))
    monkeypatch.setitem(sys.modules, "app.governance", governance)
    manager = types.SimpleNamespace(should_be_disabled=lambda path: Path(path).name in blocked)
    monkeypatch.setitem(sys.modules, "comfyui_manager", manager)
    monkeypatch.setattr(args, "enable_manager", True, raising=False)
    custom_nodes = fake_comfy.base / "custom_nodes"
    for name in ("denied-pack", "blocked-pack", "Broken"):
        place_file(custom_nodes / name / "__init__.py", b"")
    packs = {p.name: p for p in PackageMapper(own_pack="usage-stats").installed()}
    assert "organization's policy" in packs["denied-pack"].refused and not packs["denied-pack"].import_failed
    assert packs["blocked-pack"].refused == "blocked by the manager's policy"
    assert packs["Broken"].import_failed and packs["Broken"].refused is None
    cap, reasons = package_cap(packs["denied-pack"])
    assert cap == "consider_removing" and "refused by ComfyUI" in reasons[0]
