"""Loaded models and idle unload inside a real ComfyUI (CPU), with a real model that loads in a second.

The test writes a tiny random-weight VAE (tests/tiny_models.py) that ComfyUI's own VAELoader accepts, and
runs real prompts that decode a small empty latent with it, so the model really goes through ComfyUI's
`load_models_gpu` into `current_loaded_models`. `/nodes-stats/loaded` lists that list itself: when it is
empty, ComfyUI holds no model.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from comfyui import ComfyServer, until
from tiny_models import tiny_vae

pytestmark = pytest.mark.comfyui

VAE = "tiny_vae.safetensors"


def decode_prompt(width: int = 64) -> dict:
    """Load the tiny VAE and decode an empty latent with it; a new width makes ComfyUI run the decode again."""
    return {
        "1": {"class_type": "VAELoader", "inputs": {"vae_name": VAE}},
        "2": {"class_type": "EmptyLatentImage", "inputs": {"width": width, "height": 64, "batch_size": 1}},
        "3": {"class_type": "VAEDecode", "inputs": {"samples": ["2", 0], "vae": ["1", 0]}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    comfy = ComfyServer(tmp_path_factory.mktemp("memory"))
    tiny_vae(comfy.models / "vae" / VAE)
    with comfy:
        yield comfy


def run(server: ComfyServer, prompt: dict, timeout: float = 60.0) -> dict:
    """Queue a prompt and wait for ComfyUI to finish it; its history entry's status."""
    status, answer = server.queue_prompt(prompt)
    assert status == 200, answer
    prompt_id = answer["prompt_id"]
    history = until(lambda: server.get(f"/history/{prompt_id}").get(prompt_id), timeout, f"prompt {prompt_id} to finish", server)
    return history["status"]


def configure(server: ComfyServer, **changes) -> dict:
    """The idle-unload values after `changes`, as the PUT answers them."""
    status, answer, _ = server.request("PUT", "/nodes-stats/unload/config", changes)
    assert status == 200, answer
    return answer["config"]


def unload_config(server: ComfyServer) -> dict:
    return server.get("/nodes-stats/unload/config")["config"]


def loaded(server: ComfyServer) -> list[dict]:
    return server.get("/nodes-stats/loaded")["models"]


def analytics_row(server: ComfyServer) -> dict:
    rows = [r for r in server.get("/nodes-stats/unload/analytics") if (r["model_type"], r["model_name"]) == ("vae", VAE)]
    return rows[0] if rows else {"load_count": 0, "loaded": None}


def test_a_model_a_prompt_loaded_is_listed_with_its_file_and_load_time(server):
    configure(server, enabled=False)
    assert run(server, decode_prompt())["status_str"] == "success"
    [model] = loaded(server)
    assert (model["model_type"], model["model_name"], model["kind"], model["memory"]) == ("vae", VAE, "vae", "RAM")
    assert model["load_seconds"] > 0
    assert model["size_bytes"] > 1_000_000  # ~2.4 M float32 weights
    assert model["dynamic"] is False and model["load_is_lazy"] is False  # ComfyUI 0.3.75 has no dynamic VRAM
    assert model["loaded_at"] and model["last_used"]
    until(lambda: analytics_row(server)["load_count"], 10, "the load's record", server)
    row = analytics_row(server)
    assert row["loaded"] is True and row["load_count"] == 1 and row["average_load_seconds"] > 0
    assert row["timeout_seconds"] == configure(server)["vae_seconds"]
    listed = server.model("vae", VAE)
    assert listed["load_count"] == 1 and listed["average_load_seconds"] == row["average_load_seconds"]


def test_with_a_short_timeout_the_model_is_unloaded_once_comfyui_is_idle(server):
    run(server, decode_prompt(width=72))
    assert loaded(server), "the VAE should be in memory after a prompt"
    loads_before = analytics_row(server)["load_count"]
    configure(server, enabled=True, vae_seconds=2)
    try:
        status = server.get("/nodes-stats/loaded")
        assert status["enabled"] and status["next_unload"] is not None
        assert status["models"][0]["unload_at"] is not None
        until(lambda: loaded(server) == [], 20, "the idle unload", server)
        assert server.get("/nodes-stats/loaded")["unloads"] >= 1
        assert analytics_row(server)["loaded"] is False
        # The memory really went back: the next prompt reads the file and loads the model again.
        assert run(server, decode_prompt(width=80))["status_str"] == "success"
        until(lambda: analytics_row(server)["load_count"] == loads_before + 1, 10, "the second load's record", server)
    finally:
        configure(server, enabled=False)


def test_prompts_arriving_at_the_moment_of_unload_run_normally(server):
    configure(server, enabled=True, vae_seconds=1)
    try:
        unloads_before = server.get("/nodes-stats/loaded")["unloads"]
        log_before = len(server.log())
        for step, pause in enumerate([0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.5, 2.5]):
            assert run(server, decode_prompt(width=64 + 8 * (step % 4)))["status_str"] == "success"
            time.sleep(pause)  # sweeps the moment the 1 s timeout falls due, so some prompts meet the unload
        assert server.get("/nodes-stats/loaded")["unloads"] > unloads_before
        new_log = server.log()[log_before:]
        assert "Traceback" not in new_log and "[usage-stats] could not" not in new_log
    finally:
        configure(server, enabled=False)


def test_unload_now_frees_everything_between_prompts(server):
    run(server, decode_prompt(width=96))
    assert loaded(server)
    status, answer, _ = server.request("POST", "/nodes-stats/unload/now", {"confirm": True})
    assert (status, answer["requested"], answer["models"]) == (200, True, [VAE])
    until(lambda: loaded(server) == [], 10, "the unload asked for", server)


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"vae_seconds": 0}, "vae_seconds must be a whole number from 1 to 604800; got 0"),
        ({"night_start_hour": 24}, "night_start_hour must be a whole number from 0 to 23"),
        ({"night_multiplier": "x"}, "night_multiplier must be a number from 0.05 to 20"),
        ({"enabled": 1}, "enabled must be true or false"),
        ({"idle": True}, "unknown setting 'idle'"),
    ],
)
def test_bad_config_values_get_a_400_naming_the_field_and_its_range(server, changes, words):
    status, answer, _ = server.request("PUT", "/nodes-stats/unload/config", changes)
    assert (status, answer) == (400, {"ok": False, "status": 400, "error": answer["error"]})
    assert words in answer["error"]


def test_a_per_model_override_is_kept_and_can_be_removed(server):
    path = f"/nodes-stats/unload/models/vae/{VAE}"
    status, answer, _ = server.request("PUT", path, {"timeout_seconds": 7200})
    assert (status, answer["timeout_seconds"]) == (200, 7200)
    assert (analytics_row(server)["override_seconds"], analytics_row(server)["timeout_seconds"]) == (7200, 7200)
    status, answer, _ = server.request("PUT", path, {"timeout_seconds": 0})
    assert status == 400 and "timeout_seconds must be a whole number from 1 to 604800" in answer["error"]
    status, answer, _ = server.request("PUT", "/nodes-stats/unload/models/nonsense/x.bin", {"timeout_seconds": 60})
    assert status == 400 and "unknown model type 'nonsense'" in answer["error"]
    assert server.request("PUT", path, {"timeout_seconds": None})[0] == 200
    assert analytics_row(server)["override_seconds"] is None


def test_unload_now_needs_a_confirmation_and_the_same_origin(server):
    status, answer, _ = server.request("POST", "/nodes-stats/unload/now", {})
    assert status == 400 and '{"confirm": true}' in answer["error"]
    status, answer, _ = server.request("POST", "/nodes-stats/unload/now", {"confirm": True},
                                       headers={"Origin": "http://evil.example"})
    assert status == 403


def test_changes_sent_at_the_same_time_all_land(server):
    """The settings dialog sends one PUT per field; none may undo another."""
    changes = [{"diffusion_seconds": 601}, {"text_encoder_seconds": 602}, {"vae_seconds": 603}, {"other_seconds": 604}]
    with ThreadPoolExecutor(len(changes)) as pool:
        statuses = list(pool.map(lambda change: server.request("PUT", "/nodes-stats/unload/config", change)[0], changes))
    try:
        assert statuses == [200] * len(changes)
        values = unload_config(server)
        assert [values[name] for change in changes for name in change] == [601, 602, 603, 604]
    finally:
        configure(server, diffusion_seconds=1800, text_encoder_seconds=1800, vae_seconds=1800, other_seconds=1800)


def test_settings_survive_a_restart(server):
    configure(server, vae_seconds=900, night_enabled=True)
    try:
        server.restart()
        values = unload_config(server)
        assert (values["vae_seconds"], values["night_enabled"], values["enabled"]) == (900, True, False)
    finally:
        configure(server, vae_seconds=1800, night_enabled=False)
