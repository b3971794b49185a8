"""Idle unload, as a spec: when a model is due, what the night window does, and that ComfyUI's queue wins.

The policy is pure arithmetic, driven here by the test's own clock and local hour. The manager is driven
against tests/fake_comfyui/execution.py, a faithful PromptQueue (lock, queue, running items, flags), and
a watch that reports a fixed list of loaded models instead of reading ComfyUI's.
"""

from __future__ import annotations

import threading

import pytest
from comfyui import until
from execution import PromptQueue
from usage_stats.memory.manager import (
    RETRY_SECONDS,
    UNLOAD_FIELDS,
    Loaded,
    MemoryManager,
    UnloadPolicy,
    check_override,
    kind_of,
    wrap,
)
from usage_stats.recording.settings import SettingsError, defaults, validate

T0 = 1_800_000_000.0
VAE = ("vae", "tiny.safetensors")
CKPT = ("checkpoints", "sdxl/base.safetensors")


def policy(overrides=None, hour=12, **changes) -> UnloadPolicy:
    values = validate(UNLOAD_FIELDS, defaults(UNLOAD_FIELDS), {"enabled": True, **changes})
    return UnloadPolicy(values, overrides or {}, local_hour=lambda now: hour)


# --------------------------------------------------------------------------- the policy


def test_each_kind_has_its_own_timeout_and_an_override_beats_it():
    rules = policy({VAE: 60}, diffusion_seconds=600, vae_seconds=120)
    assert rules.timeout("diffusion", CKPT, T0) == 600
    assert rules.timeout("vae", ("vae", "other.safetensors"), T0) == 120
    assert rules.timeout("vae", VAE, T0) == 60


def test_the_first_model_to_fall_due_sets_the_unload_time():
    rules = policy(diffusion_seconds=600, vae_seconds=120)
    models = [Loaded(CKPT, "diffusion", T0), Loaded(VAE, "vae", T0)]
    assert rules.next_unload(models, idle_since=T0 + 5, now=T0 + 10) == T0 + 5 + 120


def test_a_model_used_after_the_queue_went_idle_counts_from_its_use():
    assert policy(vae_seconds=100).due_at(Loaded(VAE, "vae", T0 + 50), idle_since=T0, now=T0 + 60) == T0 + 150


def test_nothing_is_due_when_idle_unload_is_off_or_nothing_is_loaded():
    assert policy(enabled=False).next_unload([Loaded(VAE, "vae", T0)], T0, T0) is None
    assert policy().next_unload([], T0, T0) is None


@pytest.mark.parametrize(
    "start, end, hour, night",
    [
        (22, 7, 23, True), (22, 7, 3, True), (22, 7, 7, False), (22, 7, 12, False), (22, 7, 22, True),
        (1, 5, 1, True), (1, 5, 4, True), (1, 5, 5, False), (1, 5, 0, False),
        (3, 3, 3, False),  # an empty window
    ],
)
def test_the_night_window_may_wrap_past_midnight(start, end, hour, night):
    rules = policy(hour=hour, night_enabled=True, night_start_hour=start, night_end_hour=end)
    assert rules.is_night(T0) is night


def test_at_night_every_timeout_is_multiplied():
    night = policy(hour=2, vae_seconds=1000, night_enabled=True, night_multiplier=0.25)
    day = policy(hour=12, vae_seconds=1000, night_enabled=True, night_multiplier=0.25)
    assert (night.timeout("vae", VAE, T0), day.timeout("vae", VAE, T0)) == (250, 1000)
    assert policy(hour=2, vae_seconds=1000, night_multiplier=0.25).timeout("vae", VAE, T0) == 1000  # window off


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"vae_seconds": 0}, "vae_seconds must be a whole number from 1 to 604800; got 0"),
        ({"night_end_hour": -1}, "night_end_hour must be a whole number from 0 to 23"),
        ({"night_multiplier": 50}, "night_multiplier must be a number from 0.05 to 20; got 50"),
        ({"free_cache": "yes"}, "free_cache must be true or false"),
    ],
)
def test_a_bad_value_names_the_field_and_its_range(changes, words):
    with pytest.raises(SettingsError, match=words):
        validate(UNLOAD_FIELDS, {}, changes)


def test_a_per_model_override_is_seconds_in_range_or_null():
    assert check_override({"timeout_seconds": 90}) == 90
    assert check_override({"timeout_seconds": None}) is None
    for body in ({"timeout_seconds": 0}, {"timeout_seconds": "60"}, {}, {"timeout_seconds": 5, "x": 1}, [5]):
        with pytest.raises(SettingsError, match="timeout_seconds"):
            check_override(body)


@pytest.mark.parametrize(
    "folder, class_path, kind",
    [
        ("vae", "comfy.taesd.taesd.TAESD", "vae"),
        ("text_encoders", "comfy.text_encoders.t5.T5", "text_encoder"),
        ("diffusion_models", "comfy.model_base.Flux", "diffusion"),
        ("checkpoints", "comfy.model_base.SDXL", "diffusion"),  # one checkpoint file, three kinds of model
        ("checkpoints", "comfy.sdxl_clip.SDXLClipModel", "text_encoder"),
        ("checkpoints", "comfy.ldm.models.autoencoder.AutoencoderKL", "vae"),
        ("clip_vision", "comfy.clip_vision.ClipVisionModel", "other"),
        (None, "comfy.clip_vision.ClipVisionModel", "other"),
        ("upscale_models", "spandrel.ImageModel", "other"),
    ],
)
def test_the_kind_of_a_loaded_model(folder, class_path, kind):
    assert kind_of(folder, class_path) == kind


# --------------------------------------------------------------------------- the manager and ComfyUI's queue


class FixedWatch:
    """What LoadWatch reports, fixed by the test: the models ComfyUI holds."""

    def __init__(self, rows):
        self.rows = rows
        self.last_activity = 0.0

    def loaded(self):
        return [dict(r) for r in self.rows]


def loaded_row(key=VAE, kind="vae", last_used=T0):
    return {"model_type": key[0], "model_name": key[1], "kind": kind, "last_used": last_used}


@pytest.fixture
def clock():
    return {"now": T0}


@pytest.fixture
def manager(clock):
    queue = PromptQueue()
    manager = MemoryManager(FixedWatch([loaded_row()]), queue, clock=lambda: clock["now"], local_hour=lambda now: 12)
    manager.restore({"enabled": True, "vae_seconds": 60}, {})
    manager.tick()  # the first look sees the queue's counter for the first time: idle from now
    return manager


def run_a_prompt(queue: PromptQueue) -> None:
    """What ComfyUI's worker does with one prompt: take it (running), finish it."""
    queue.put((0, "prompt-id"))
    _item, number = queue.get(timeout=1)
    queue.task_done(number)


def test_comfyui_is_asked_to_unload_once_idle_past_the_timeout(manager, clock):
    clock["now"] = T0 + 59
    assert manager.tick() is False and manager.queue.flags == {}
    clock["now"] = T0 + 60
    assert manager.tick() is True
    assert manager.queue.get_flags() == {"unload_models": True, "free_memory": True}


def test_without_free_cache_only_models_are_unloaded(manager, clock):
    manager.restore({"enabled": True, "vae_seconds": 60, "free_cache": False}, {})
    clock["now"] = T0 + 61
    assert manager.tick() is True
    assert manager.queue.get_flags() == {"unload_models": True}


def test_nothing_is_unloaded_while_a_prompt_runs_or_waits(manager, clock):
    manager.queue.put((0, "waiting"))
    clock["now"] = T0 + 1000
    assert manager.tick() is False and manager.queue.flags == {}
    assert manager.idle_since == T0 + 1000  # busy now: idleness restarts


def test_a_prompt_that_ran_between_two_looks_restarts_the_idle_clock(manager, clock):
    clock["now"] = T0 + 50
    run_a_prompt(manager.queue)
    assert manager.tick() is False
    clock["now"] = T0 + 100
    assert manager.tick() is False  # 50 s idle, not 100
    clock["now"] = T0 + 110
    assert manager.tick() is True


def test_a_prompt_queued_at_the_moment_of_unload_wins(manager, clock):
    """The emptiness check and the flags happen under the queue's own lock: a prompt put while the unload
    waits for that lock stops it. (One put just after finds the flags set; ComfyUI's worker runs it before
    it reads them: the real-server test covers that side.)"""
    clock["now"] = T0 + 61
    with manager.queue.mutex:
        ticker = threading.Thread(target=manager.unload, args=("idle",))
        ticker.start()
        ticker.join(0.2)
        assert ticker.is_alive()  # waiting for the queue's lock
        manager.queue.put((0, "arrived at the moment of unload"))
    ticker.join(1)
    assert manager.queue.flags == {} and manager.unloads == 0
    item, number = manager.queue.get(timeout=1)
    assert item == (0, "arrived at the moment of unload")


def test_an_unload_asked_for_is_not_asked_again_until_it_had_time_to_happen(manager, clock):
    clock["now"] = T0 + 61
    assert manager.tick() is True
    manager.queue.get_flags()  # the worker read them, but the model is still listed (it failed, say)
    clock["now"] = T0 + 61 + RETRY_SECONDS - 1
    assert manager.tick() is False
    clock["now"] = T0 + 61 + RETRY_SECONDS
    assert manager.tick() is True


def test_a_queue_that_refuses_the_flags_is_logged_once_and_retried_later(manager, clock, caplog):
    def refuse(name, data):
        raise RuntimeError("no flags here")

    manager.queue.set_flag = refuse
    clock["now"] = T0 + 61
    assert manager.tick() is False and manager.tick() is False
    assert caplog.text.count("could not ask ComfyUI to unload") <= 1
    del manager.queue.set_flag
    clock["now"] = T0 + 61 + RETRY_SECONDS
    assert manager.tick() is True


def test_an_override_sets_a_models_own_timeout(manager, clock):
    manager.restore({"enabled": True, "vae_seconds": 60}, {VAE: 600})
    clock["now"] = T0 + 300
    assert manager.tick() is False
    clock["now"] = T0 + 600
    assert manager.tick() is True


def test_stored_settings_an_older_version_wrote_fall_back_to_their_defaults(manager):
    manager.restore({"enabled": True, "vae_seconds": -3, "gone": 1}, {})
    assert (manager.config["enabled"], manager.config["vae_seconds"]) == (True, 1800)


def test_the_status_says_when_each_model_will_be_unloaded(manager, clock):
    clock["now"] = T0 + 10
    status = manager.status()
    assert status["next_unload"] == T0 + 60
    assert [(m["model_name"], m["timeout_seconds"], m["unload_at"]) for m in status["models"]] == [(VAE[1], 60, T0 + 60)]
    manager.restore({"enabled": False}, {})
    assert manager.status()["next_unload"] is None


# --------------------------------------------------------------------------- wrapping ComfyUI's functions


class Host:
    """Stands in for a ComfyUI module whose function we wrap."""

    @staticmethod
    def load(x, scale=1):
        if x < 0:
            raise ValueError("negative")
        return x * scale


def test_a_wrapped_function_answers_and_raises_exactly_as_before():
    seen = []
    host = type("host", (), {"load": staticmethod(Host.load)})
    wrap(host, "load", None, lambda state, result, seconds, *args, **kwargs: seen.append((result, args, kwargs)))
    assert host.load(3, scale=2) == 6
    with pytest.raises(ValueError, match="negative"):
        host.load(-1)
    assert seen == [(6, (3,), {"scale": 2})]  # a call that raised reaches nothing of ours
    wrap(host, "load", None, lambda *a, **k: seen.append("twice"))  # installing twice wraps once
    host.load(1)
    assert seen[-1] != "twice"


def test_a_failure_of_ours_in_a_wrapper_is_logged_once_and_never_reaches_comfyui(caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("our bug")

    host = type("host", (), {"load": staticmethod(Host.load)})
    wrap(host, "load", broken, broken)
    assert [host.load(2), host.load(4)] == [2, 4]
    assert caplog.text.count("stopped watching load") == 1



def test_no_thread_of_ours_watches_while_idle_unload_is_off(fake_comfy, tmp_path):
    """The watcher costs ComfyUI a wake-up a second: it runs only while idle unload is on, and ends when turned off."""
    from usage_stats.mapper import ModelMapper, PackageMapper
    from usage_stats.memory.manager import POLL_SECONDS
    from usage_stats.recording.writer import Writer
    from usage_stats.tracker import UsageStore

    def watchers() -> int:
        return sum(t.name == "usage-stats-memory" and t.is_alive() for t in threading.enumerate())

    writer = Writer(lambda: UsageStore(str(tmp_path / "db.sqlite")), PackageMapper(own_pack="us"), ModelMapper())
    writer.start()
    manager = MemoryManager(FixedWatch([]), PromptQueue(), local_hour=lambda now: 12)
    try:
        manager.start(writer)
        assert manager.ready.wait(10) and watchers() == 0
        manager.config.replace({**manager.config.as_dict(), "enabled": True})
        manager.apply()
        manager.apply()
        assert watchers() == 1
        manager.config.replace({**manager.config.as_dict(), "enabled": False})
        until(lambda: watchers() == 0, 5 * POLL_SECONDS, "the watcher to end")
    finally:
        writer.stop()


def test_without_a_database_the_defaults_stay_and_changes_are_taken(fake_comfy, tmp_path):
    from usage_stats.mapper import ModelMapper, PackageMapper
    from usage_stats.recording.writer import Writer

    def unusable():
        raise OSError("read-only file system")

    writer = Writer(unusable, PackageMapper(own_pack="us"), ModelMapper())
    writer.start()
    manager = MemoryManager(FixedWatch([]), PromptQueue(), local_hour=lambda now: 12)
    manager.start(writer)
    assert manager.ready.wait(10) and manager.config["enabled"] is False


class DynamicPatcher:
    """comfy/model_patcher.py ModelPatcherDynamic as the newest ComfyUI reports it: resident on the device
    (`loaded_size`), held in pinned RAM (`loaded_ram_size`), `is_dynamic()`."""

    def __init__(self, on_device: int, in_ram: int):
        self.on_device, self.in_ram = on_device, in_ram

    def loaded_size(self):
        return self.on_device

    def loaded_ram_size(self):
        return self.in_ram

    def is_dynamic(self):
        return True


def test_under_dynamic_vram_the_figures_say_where_the_weights_are_and_that_loading_was_lazy():
    from usage_stats.memory.manager import _dynamic_fields

    assert _dynamic_fields(DynamicPatcher(on_device=1_000, in_ram=9_000)) == {
        "dynamic": True, "ram_bytes": 9_000, "load_is_lazy": True}
    assert _dynamic_fields(object()) == {"dynamic": False, "ram_bytes": None, "load_is_lazy": False}

def test_the_config_route_answers_the_values_and_describes_each_field_as_the_main_config_does(fake_comfy, tmp_path):
    """The settings dialog takes each entry's default, range and help from this description: one source."""
    from api_app import AppClient
    from usage_stats.mapper import ModelMapper, PackageMapper
    from usage_stats.recording.writer import Writer
    from usage_stats.tracker import UsageStore

    writer = Writer(lambda: UsageStore(str(tmp_path / "db.sqlite")), PackageMapper(own_pack="us"), ModelMapper())
    writer.start()
    manager = MemoryManager(FixedWatch([]), PromptQueue(), local_hour=lambda now: 12)
    manager.start(writer)
    client = AppClient(writer, str(tmp_path / "decisions"), memory=manager)
    try:
        status, answer = client.json("GET", "/nodes-stats/unload/config")
        assert status == 200 and set(answer) == {"config", "fields"}, answer
        assert answer["config"]["vae_seconds"] == 1800 and [f["name"] for f in answer["fields"]] == list(answer["config"])
        vae = next(f for f in answer["fields"] if f["name"] == "vae_seconds")
        assert vae == {"name": "vae_seconds", "type": "int", "default": 1800, "min": 1, "max": 604800,
                       "help": "Idle timeout of VAEs."}
        status, changed = client.json("PUT", "/nodes-stats/unload/config", {"vae_seconds": 600})
        assert status == 200 and set(changed) == {"ok", "config", "fields"}, changed
        assert changed["config"] == {**answer["config"], "vae_seconds": 600} and changed["fields"] == answer["fields"]
        status, main = client.json("GET", "/nodes-stats/config")
        assert status == 200 and {"config", "fields"} <= set(main)
        assert [f["name"] for f in main["fields"]] == list(main["config"])
        assert all(set(f) == set(vae) for f in main["fields"])
    finally:
        client.close()
        writer.stop()
