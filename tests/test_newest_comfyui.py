"""Shapes of the newest ComfyUI (Comfy-Org/ComfyUI as read for /work/shared/reference/comfyui-newest.md), on the fake.

Each fake follows the source it names: comfy_api/latest/_io.py (DynamicCombo.Input.as_dict and
_expand_schema_for_dynamic, _DynamicGroup), folder_paths.py (`datasets`), nodes.py (VAELoader.image_taes),
server.py post_prompt (a null prompt_id is minted).
"""

from __future__ import annotations

import uuid

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
