"""What popular packs send, read against the fake ComfyUI: each node class mirrors a real pack node's inputs.

Used files are what the node loads; referenced files are named but switched off (never a use); a name that
is no installed file is neither.
"""

from __future__ import annotations

import pytest
from comfyui import place_file
from usage_stats.mapper import ModelMapper

LORAS = ["a.safetensors", "sub/b.safetensors", "c.safetensors", "d.safetensors"]


@pytest.fixture
def mapper(fake_comfy):
    for name in LORAS:
        place_file(fake_comfy.models / "loras" / name)
    for relative in ["checkpoints/ck.safetensors", "controlnet/cn.safetensors", "embeddings/neg.pt"]:
        place_file(fake_comfy.models / relative)
    mapper = ModelMapper()
    mapper.choose_types(track_loras=True)
    return mapper


def register(fake_comfy, class_type: str, inputs: dict) -> None:
    """A node class whose INPUT_TYPES() answers `inputs` (options read from the folders when called)."""
    fake_comfy.nodes.NODE_CLASS_MAPPINGS[class_type] = type(class_type, (), {"INPUT_TYPES": classmethod(lambda cls: inputs())})


def loras(fake_comfy) -> list[str]:
    return ["None", *fake_comfy.folder_paths.get_filename_list("loras")]


def read(mapper, *nodes) -> tuple[set, set]:
    found = mapper.models_in({str(i + 1): {"class_type": ct, "inputs": inputs} for i, (ct, inputs) in enumerate(nodes)})
    return {n for _, n in found.used}, {n for _, n in found.referenced}


def test_dict_inputs_with_on_and_strength_like_rgthree_power_lora_loader(mapper, fake_comfy):
    # rgthree-comfy "Power Lora Loader (rgthree)": one dict per row, FlexibleOptionalInputType (any key).
    register(fake_comfy, "Power Lora Loader (rgthree)", lambda: {"required": {"model": ("MODEL",), "clip": ("CLIP",)}})
    used, referenced = read(mapper, ("Power Lora Loader (rgthree)", {
        "model": ["9", 0], "clip": ["9", 1],
        "PowerLoraLoaderHeaderWidget": {"type": "PowerLoraLoaderHeaderWidget"},
        "lora_1": {"on": True, "lora": "a.safetensors", "strength": 0.8, "strengthTwo": None},
        "lora_2": {"on": False, "lora": "sub/b.safetensors", "strength": 1.0, "strengthTwo": None},
        "lora_3": {"on": True, "lora": "c.safetensors", "strength": 0, "strengthTwo": None},
        "➕ Add Lora": "",
    }))
    assert used == {"a.safetensors"}
    assert referenced == {"sub/b.safetensors", "c.safetensors"}


def test_a_stack_with_switches_and_weights_like_comfyroll_lora_stack(mapper, fake_comfy):
    # ComfyUI_Comfyroll_CustomNodes "CR LoRA Stack": switch_i On/Off, lora_name_i, model_weight_i, clip_weight_i.
    def inputs():
        row = lambda i: {f"switch_{i}": (["Off", "On"],), f"lora_name_{i}": (loras(fake_comfy),),  # noqa: E731
                         f"model_weight_{i}": ("FLOAT", {}), f"clip_weight_{i}": ("FLOAT", {})}
        return {"required": {**row(1), **row(2), **row(3)}}

    register(fake_comfy, "CR LoRA Stack", inputs)
    used, referenced = read(mapper, ("CR LoRA Stack", {
        "switch_1": "On", "lora_name_1": "a.safetensors", "model_weight_1": 1.0, "clip_weight_1": 1.0,
        "switch_2": "Off", "lora_name_2": "sub/b.safetensors", "model_weight_2": 1.0, "clip_weight_2": 1.0,
        "switch_3": "On", "lora_name_3": "c.safetensors", "model_weight_3": 0.0, "clip_weight_3": 0.0,
    }))
    assert (used, referenced) == ({"a.safetensors"}, {"sub/b.safetensors", "c.safetensors"})


def test_a_stack_with_a_count_like_efficiency_lora_stacker(mapper, fake_comfy):
    # efficiency-nodes-comfyui "LoRA Stacker": lora_count, lora_name_i, lora_wt_i (simple), model_str_i/clip_str_i.
    def inputs():
        rows = {}
        for i in range(1, 5):
            rows |= {f"lora_name_{i}": (loras(fake_comfy),), f"lora_wt_{i}": ("FLOAT", {}),
                     f"model_str_{i}": ("FLOAT", {}), f"clip_str_{i}": ("FLOAT", {})}
        return {"required": {"input_mode": (["simple", "advanced"],), "lora_count": ("INT", {}), **rows}}

    register(fake_comfy, "LoRA Stacker", inputs)
    rows = {}
    for i, name in enumerate(["a.safetensors", "sub/b.safetensors", "c.safetensors", "d.safetensors"], start=1):
        rows |= {f"lora_name_{i}": name, f"lora_wt_{i}": 1.0, f"model_str_{i}": 1.0, f"clip_str_{i}": 1.0}
    used, referenced = read(mapper, ("LoRA Stacker", {"input_mode": "simple", "lora_count": 2, **rows}))
    assert used == {"a.safetensors", "sub/b.safetensors"}
    assert referenced == {"c.safetensors", "d.safetensors"}


def test_a_list_of_dicts_with_names_without_extension(mapper, fake_comfy):
    # A list-valued widget as the frontend sends it ({"__value__": [...]}), e.g. a LoRA list loader's rows.
    register(fake_comfy, "LoraListLoader", lambda: {"required": {"model": ("MODEL",)}})
    used, referenced = read(mapper, ("LoraListLoader", {"model": ["9", 0], "loras": {"__value__": [
        {"name": "a", "active": True, "strength": 1.0},
        {"name": "b", "active": False, "strength": 1.0},  # b.safetensors in a subfolder
        {"name": "never_installed", "active": True, "strength": 1.0},
    ]}}))
    assert (used, referenced) == ({"a.safetensors"}, {"sub/b.safetensors"})


def test_lora_tags_in_text_that_a_string_node_feeds_through_a_link(mapper, fake_comfy):
    # A LoRA-syntax loader (e.g. comfyui_lora_tag_loader "LoraTagLoader") fed by a separate string node.
    register(fake_comfy, "StringLiteral", lambda: {"required": {"string": ("STRING", {"multiline": True})}})
    register(fake_comfy, "LoraTagLoader", lambda: {"required": {"model": ("MODEL",), "text": ("STRING", {})}})
    used, referenced = read(
        mapper,
        ("StringLiteral", {"string": "a cat <lora:a:0.8>, <LORA:sub/b.safetensors>, <lora:c:0:0>, <lora:d:0:1> "
                                     "<lora:missing:1> embedding:neg"}),
        ("LoraTagLoader", {"model": ["9", 0], "text": ["1", 0]}),
    )
    assert used == {"a.safetensors", "sub/b.safetensors", "d.safetensors", "neg.pt"}
    assert referenced == {"c.safetensors"}


def test_a_strength_names_the_file_it_scales_like_efficiency_efficient_loader(mapper, fake_comfy):
    # efficiency-nodes-comfyui "Efficient Loader": a checkpoint and a LoRA with its own strengths, one group.
    register(fake_comfy, "Efficient Loader", lambda: {"required": {
        "ckpt_name": (fake_comfy.folder_paths.get_filename_list("checkpoints"),), "lora_name": (loras(fake_comfy),),
        "lora_model_strength": ("FLOAT", {}), "lora_clip_strength": ("FLOAT", {})}})
    used, referenced = read(mapper, ("Efficient Loader", {"ckpt_name": "ck.safetensors", "lora_name": "a.safetensors",
                                                          "lora_model_strength": 0.0, "lora_clip_strength": 0.0}))
    assert (used, referenced) == ({"ck.safetensors"}, {"a.safetensors"})


def test_core_lora_loader_at_strength_zero_loads_nothing(mapper):
    # nodes.LoraLoader.load_lora returns early when strength_model == 0 and strength_clip == 0.
    used, referenced = read(mapper, ("LoraLoader", {"model": ["9", 0], "lora_name": "a.safetensors", "strength_model": 0.0}))
    assert (used, referenced) == (set(), {"a.safetensors"})


def test_a_multi_controlnet_stack_switch_like_comfyroll(mapper, fake_comfy):
    # Comfyroll "CR Multi-ControlNet Stack": switch_i, controlnet_i, controlnet_strength_i.
    register(fake_comfy, "CR Multi-ControlNet Stack", lambda: {"required": {
        **{f"switch_{i}": (["Off", "On"],) for i in (1, 2)},
        **{f"controlnet_{i}": (["None", *fake_comfy.folder_paths.get_filename_list("controlnet")],) for i in (1, 2)},
        **{f"controlnet_strength_{i}": ("FLOAT", {}) for i in (1, 2)}}})
    used, referenced = read(mapper, ("CR Multi-ControlNet Stack", {
        "switch_1": "Off", "controlnet_1": "cn.safetensors", "controlnet_strength_1": 1.0,
        "switch_2": "On", "controlnet_2": "None", "controlnet_strength_2": 1.0}))
    assert (used, referenced) == (set(), {"cn.safetensors"})


def test_a_controlnet_in_a_stack_with_no_image_is_not_applied_like_comfyroll(mapper, fake_comfy):
    # Comfyroll "CR Multi-ControlNet Stack" applies entry i only when switch_i is On, controlnet_i is not
    # "None" and its optional image_i is connected.
    controlnets = lambda: ["None", *fake_comfy.folder_paths.get_filename_list("controlnet")]  # noqa: E731
    register(fake_comfy, "CR Multi-ControlNet Stack", lambda: {
        "required": {**{f"switch_{i}": (["Off", "On"],) for i in (1, 2)},
                     **{f"controlnet_{i}": (controlnets(),) for i in (1, 2)}},
        "optional": {**{f"image_{i}": ("IMAGE",) for i in (1, 2)}, "cnet_stack": ("CONTROL_NET_STACK",)}})
    unconnected = {"switch_1": "On", "controlnet_1": "cn.safetensors", "switch_2": "Off", "controlnet_2": "None"}
    assert read(mapper, ("CR Multi-ControlNet Stack", unconnected)) == (set(), {"cn.safetensors"})
    connected = {**unconnected, "image_1": ["7", 0]}
    assert read(mapper, ("CR Multi-ControlNet Stack", connected)) == ({"cn.safetensors"}, set())


def test_an_unnumbered_loader_with_an_optional_image_is_read_as_before(mapper, fake_comfy):
    register(fake_comfy, "LoaderWithPreview", lambda: {
        "required": {"ckpt_name": (fake_comfy.folder_paths.get_filename_list("checkpoints"),)},
        "optional": {"image": ("IMAGE",)}})
    assert read(mapper, ("LoaderWithPreview", {"ckpt_name": "ck.safetensors"})) == ({"ck.safetensors"}, set())


def test_loaded_by_one_node_wins_over_switched_off_in_another(mapper, fake_comfy):
    register(fake_comfy, "Power Lora Loader (rgthree)", lambda: {"required": {}})
    used, referenced = read(
        mapper,
        ("Power Lora Loader (rgthree)", {"lora_1": {"on": False, "lora": "a.safetensors", "strength": 1}}),
        ("LoraLoader", {"lora_name": "a.safetensors", "strength_model": 1.0}),
    )
    assert (used, referenced) == ({"a.safetensors"}, set())


def test_deep_and_huge_values_are_read_within_bounds(mapper, fake_comfy):
    register(fake_comfy, "Odd", lambda: {"required": {}})
    deep: dict = {"lora": "a.safetensors"}
    for _ in range(50):
        deep = {"inner": deep}
    huge = {"__value__": [{"name": f"x{i}"} for i in range(10_000)] + [{"name": "c"}]}
    numbers = {"__value__": [0] * 1_000_000 + ["c.safetensors"]}
    assert read(mapper, ("Odd", {"deep": deep, "huge": huge, "numbers": numbers})) == (set(), set())


def test_saved_workflows_name_files_as_packs_spell_them():
    from usage_stats.evidence.workflows import model_references, uses_in

    workflow = {"nodes": [{"id": 1, "type": "LoraListLoader", "widgets_values": [{"__value__": [{"name": "b"}]}]},
                          {"id": 2, "type": "StringLiteral", "widgets_values": ["a cat <lora:c:0.5>"]}]}
    installed = {"loras": LORAS, "checkpoints": ["ck.safetensors"]}
    references = model_references({"w.json": uses_in(workflow)}, installed)
    assert set(references) == {("loras", "sub/b.safetensors"), ("loras", "c.safetensors")}
