"""Model detection and pack attribution, against the fake ComfyUI with real files on disk."""

from __future__ import annotations

import os

import pytest
from comfyui import place_file
from usage_stats.domain.values import BUILTIN_PACKAGE
from usage_stats.mapper import ModelMapper, PackageMapper


@pytest.fixture
def models(fake_comfy):
    for relative in ["checkpoints/a.safetensors", "checkpoints/sdxl/b.safetensors", "vae/v.safetensors",
                     "unet/u.safetensors", "upscale_models/up.pth", "loras/l.safetensors", "embeddings/sub/neg.pt",
                     "embeddings/Pos.safetensors", "vae_approx/taesd_decoder.pth", "vae_approx/taesd_encoder.pth",
                     "text_encoders/t1.safetensors", "text_encoders/t2.safetensors", "text_encoders/t3.safetensors"]:
        place_file(fake_comfy.models / relative)
    return ModelMapper()


def node(class_type, **inputs):
    return {"class_type": class_type, "inputs": inputs}


def found(mapper, *nodes):
    mapper.refresh()
    return mapper.models_in({str(i): n for i, n in enumerate(nodes)}).used


def test_a_v1_list_input_records_the_selected_file(models):
    assert found(models, node("CheckpointLoaderSimple", ckpt_name="a.safetensors")) == {("checkpoints", "a.safetensors")}


def test_combo_inputs_as_v3_schemas_declare_them_are_recorded(models):
    assert found(models, node("UpscaleModelLoader", model_name="up.pth")) == {("upscale_models", "up.pth")}
    assert found(models, node("TripleCLIPLoader", clip_name1="t1.safetensors", clip_name2="t2.safetensors",
                              clip_name3="t3.safetensors")) == {("text_encoders", f"t{i}.safetensors") for i in (1, 2, 3)}


@pytest.mark.parametrize("value", ["sdxl/b.safetensors", "sdxl\\b.safetensors"])
def test_subfolder_values_are_recorded_with_forward_slashes(models, value):
    assert found(models, node("CheckpointLoaderSimple", ckpt_name=value)) == {("checkpoints", "sdxl/b.safetensors")}


def test_files_in_alias_folders_are_recorded_under_the_canonical_type(models):
    unet = node("UNETLoader", unet_name="u.safetensors", weight_dtype="default")
    assert found(models, unet) == {("diffusion_models", "u.safetensors")}
    assert "unet" not in models.tracked_types()


def test_loras_and_non_model_folders_are_not_tracked(models):
    assert found(models, node("LoraLoader", lora_name="l.safetensors", model=["1", 0], strength_model=1.0)) == set()
    assert {"loras", "configs", "custom_nodes"}.isdisjoint(models.tracked_types())


@pytest.mark.parametrize(
    "text, expected",
    [
        ("embedding:neg", {"sub/neg.pt"}),
        ("a cat, (embedding:neg.pt:1.2)", {"sub/neg.pt"}),
        ("embedding:sub/neg, embedding:pos", {"sub/neg.pt", "Pos.safetensors"}),
        ("no embeddingneg here, xembedding:neg", set()),
    ],
)
def test_embeddings_named_in_any_text_input_are_recorded(models, text, expected):
    result = found(models, node("CLIPTextEncode", text=text, clip=["1", 0]))
    assert result == {("embeddings", name) for name in expected}


def test_a_name_in_two_types_is_recorded_as_the_type_the_input_offers(models, fake_comfy):
    place_file(fake_comfy.models / "vae" / "a.safetensors")
    assert found(models, node("VAELoader", vae_name="a.safetensors")) == {("vae", "a.safetensors")}
    assert found(models, node("CheckpointLoaderSimple", ckpt_name="a.safetensors")) == {("checkpoints", "a.safetensors")}


def test_a_model_added_after_start_is_found_on_the_next_refresh(models, fake_comfy):
    assert found(models, node("CheckpointLoaderSimple", ckpt_name="new.safetensors")) == set()
    place_file(fake_comfy.models / "checkpoints" / "new.safetensors")
    assert found(models, node("CheckpointLoaderSimple", ckpt_name="new.safetensors")) == {("checkpoints", "new.safetensors")}


def test_a_prompt_naming_a_file_the_view_lacks_reads_the_folders_again_at_once(models, fake_comfy):
    models.refresh()
    assert models.refresh(max_age=60) is False  # a young view is kept: no stat calls
    place_file(fake_comfy.models / "checkpoints" / "just_added.safetensors")
    prompt = {"1": node("CheckpointLoaderSimple", ckpt_name="just_added.safetensors")}
    assert models.models_in(prompt).used == {("checkpoints", "just_added.safetensors")}


def test_a_lora_choice_never_makes_the_mapper_read_the_folders_again(models, monkeypatch):
    models.refresh()
    reads = []
    monkeypatch.setattr(models, "_refresh", lambda: reads.append(1) or False)
    prompt = {"1": node("LoraLoader", lora_name="l.safetensors", model=["2", 0], strength_model=1.0),
              "2": node("CheckpointLoaderSimple", ckpt_name="a.safetensors")}
    assert models.models_in(prompt).used == {("checkpoints", "a.safetensors")}
    assert reads == []


def test_taesd_choices_mean_the_pair_of_preview_files(models):
    assert found(models, node("VAELoader", vae_name="taesd")) == {
        ("vae_approx", "taesd_decoder.pth"), ("vae_approx", "taesd_encoder.pth")}


def test_folder_types_added_by_packs_are_tracked(models, fake_comfy):
    fake_comfy.folder_paths.add_model_folder_path("ipadapter", str(fake_comfy.models / "ipadapter"))
    place_file(fake_comfy.models / "ipadapter" / "ip.bin")
    assert models.installed()["ipadapter"] == ["ip.bin"]


def test_links_numbers_and_unknown_nodes_are_ignored(models):
    assert found(models, node("CheckpointLoaderSimple", ckpt_name=["4", 0]), node("NoSuchNode", ckpt_name="a.safetensors"),
                 {"class_type": 5}, "not a node") == set()


def test_the_same_file_under_two_types_sharing_a_folder_is_keyed_by_its_real_path(models, fake_comfy):
    fake_comfy.folder_paths.add_model_folder_path("ipadapter", str(fake_comfy.models / "checkpoints"))
    keys = models.same_file_keys()
    assert keys[("ipadapter", "a.safetensors")] == keys[("checkpoints", "a.safetensors")]


# ---- packs


class PackNode:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}


def make_pack(custom_nodes, name, files=("__init__.py",)):
    for file in files:
        place_file(custom_nodes / name / file, b"")
    return str(custom_nodes / name)


def test_packs_are_found_loaded_failed_disabled_and_frontend_only(fake_comfy):
    custom_nodes = fake_comfy.base / "custom_nodes"
    fake_comfy.nodes.load_pack(make_pack(custom_nodes, "Loaded"), {"LoadedNode": type("LoadedNode", (PackNode,), {})})
    single = custom_nodes / "single.py"
    place_file(single, b"")
    fake_comfy.nodes.load_pack(str(single), {"SingleNode": type("SingleNode", (PackNode,), {})})
    fake_comfy.nodes.load_pack(make_pack(custom_nodes, "NoNodes"), {})
    make_pack(custom_nodes, "Broken")
    make_pack(custom_nodes, "Old.disabled")
    make_pack(custom_nodes, ".disabled/Newer@2_0_0")
    place_file(custom_nodes / "README.md", b"")
    make_pack(custom_nodes, "__pycache__")

    packs = {p.name: p for p in PackageMapper(own_pack="usage-stats").installed()}
    assert set(packs) == {"Loaded", "single", "NoNodes", "Broken", "Old", "Newer"}
    assert packs["Loaded"].node_types == ["LoadedNode"] and packs["single"].node_types == ["SingleNode"]
    assert packs["NoNodes"].frontend_only
    assert packs["Broken"].import_failed and not packs["Broken"].frontend_only
    assert packs["Old"].disabled and packs["Newer"].disabled


def test_core_custom_and_unknown_node_types_map_to_their_package(fake_comfy):
    custom_nodes = fake_comfy.base / "custom_nodes"
    fake_comfy.nodes.load_pack(make_pack(custom_nodes, "Foo"), {"FooNode": type("FooNode", (PackNode,), {})})
    by_hand = type("ByHand", (PackNode,), {"__module__": os.path.join(str(custom_nodes), "My_x_Pack.nodes")})
    fake_comfy.nodes.NODE_CLASS_MAPPINGS["ByHand"] = by_hand
    packages = PackageMapper(own_pack="usage-stats").packages_by_class()
    assert "KSampler" not in packages  # not registered: the writer records it as __unknown__
    assert packages["CheckpointLoaderSimple"] == BUILTIN_PACKAGE
    assert packages["FooNode"] == "Foo"
    assert packages["ByHand"] == "My.Pack"


def test_comfyui_manager_and_this_extension_are_protected(fake_comfy):
    custom_nodes = fake_comfy.base / "custom_nodes"
    for name in ("ComfyUI-Manager", "usage-stats", "Other"):
        fake_comfy.nodes.load_pack(make_pack(custom_nodes, name), {})
    packs = {p.name: p.protected for p in PackageMapper(own_pack="usage-stats").installed()}
    assert packs == {"ComfyUI-Manager": True, "usage-stats": True, "Other": False}


@pytest.mark.parametrize("files", [
    {"pyproject.toml": b'[project]\nname = "ComfyUI-Manager"\nversion = "3.3.5"\n'},
    {"pyproject.toml": b'[project]\nname = "comfyui_manager"\n'},
    {"glob/manager_server.py": b"", "__init__.py": b""},
    {"comfyui_manager/glob/manager_server.py": b"", "pyproject.toml": b"not toml ["},
    {"cm-cli.py": b""},
])
def test_comfyui_manager_is_recognised_by_what_it_is_under_any_folder_name(fake_comfy, files):
    from usage_stats.mapper import is_comfyui_manager

    custom_nodes = fake_comfy.base / "custom_nodes"
    for relative, content in files.items():
        place_file(custom_nodes / "ComfyUI-Manager-main" / relative, content)
    assert is_comfyui_manager(str(custom_nodes / "ComfyUI-Manager-main"))
    fake_comfy.nodes.load_pack(str(custom_nodes / "ComfyUI-Manager-main"), {})
    assert {p.name: p.protected for p in PackageMapper(own_pack="usage-stats").installed()} == {"ComfyUI-Manager-main": True}


def test_a_pack_that_only_mentions_the_manager_is_not_taken_for_it(fake_comfy, tmp_path):
    from usage_stats.mapper import is_comfyui_manager

    custom_nodes = fake_comfy.base / "custom_nodes"
    place_file(custom_nodes / "Manager-Helper" / "pyproject.toml", b'[project]\nname = "comfyui-manager-helper"\n')
    place_file(custom_nodes / "Manager-Helper" / "manager_server.py", b"")
    place_file(custom_nodes / "single.py", b"")
    (custom_nodes / "Piped").mkdir()
    os.mkfifo(custom_nodes / "Piped" / "pyproject.toml")  # read as a regular file only: the check never waits
    assert not is_comfyui_manager(str(custom_nodes / "Manager-Helper"))
    assert not is_comfyui_manager(str(custom_nodes / "single.py"))
    assert not is_comfyui_manager(str(custom_nodes / "Piped"))
    assert not is_comfyui_manager(str(tmp_path / "missing"))


def test_a_disabled_manager_under_another_name_stays_protected(fake_comfy):
    custom_nodes = fake_comfy.base / "custom_nodes"
    place_file(custom_nodes / ".disabled" / "ComfyUI-Manager-main@3_3_5" / "cm-cli.py", b"")
    place_file(custom_nodes / "Renamed.disabled" / "glob" / "manager_server.py", b"")
    packs = {p.name: p for p in PackageMapper(own_pack="usage-stats").installed()}
    assert {name: (p.disabled, p.protected) for name, p in packs.items()} == {
        "ComfyUI-Manager-main": (True, True), "Renamed": (True, True)}
