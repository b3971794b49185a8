"""The hook and the writer thread: O(1) enqueue, exact counting, batching, exit flush, degraded modes."""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from comfyui import place_file, until
from usage_stats.domain.values import DAY
from usage_stats.mapper import ModelMapper, PackageMapper
from usage_stats.recording.writer import HAND_OVER_EVERY, Finished, Submission, Writer, current_submission
from usage_stats.tracker import UsageStore


@pytest.fixture
def writer(fake_comfy):
    place_file(fake_comfy.models / "checkpoints" / "a.safetensors")
    path = str(fake_comfy.base / "usage_stats.db")
    w = Writer(lambda: UsageStore(path), PackageMapper(own_pack="usage-stats"), ModelMapper())
    w.start()
    assert w.wait_ready(5) is not None
    yield w
    w.stop()


def prompt_using(ckpt="a.safetensors"):
    return {"prompt": {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "x", "clip": ["1", 1]}},
    }}


def test_the_hook_returns_exactly_what_it_got(writer):
    for json_data in (prompt_using(), {}, {"prompt": "not a dict"}, [], None, "junk", {"prompt": {"1": None}}):
        assert writer.on_prompt(json_data) is json_data


def test_a_class_type_or_model_used_twice_in_one_prompt_counts_once(writer):
    writer.on_prompt(prompt_using())
    writer.flush()
    counts = sorted((ct, count) for ct, _, count, *_ in writer.store.node_rows())
    assert counts == [("CLIPTextEncode", 1), ("CheckpointLoaderSimple", 1)]
    assert [(t, n, c) for t, n, c, *_ in writer.store.model_rows()] == [("checkpoints", "a.safetensors", 1)]


def test_a_burst_is_written_completely(writer):
    for _ in range(3000):
        writer.on_prompt(prompt_using())
    writer.flush(timeout=30)
    assert writer.store.prompt_count() == 3000
    assert writer.dropped == 0


def test_a_full_queue_drops_and_counts_instead_of_blocking(fake_comfy):
    w = Writer(lambda: UsageStore(str(fake_comfy.base / "db")), PackageMapper("x"), ModelMapper(), queue_size=5)
    for _ in range(8):  # the writer thread is not started: nothing drains the queue
        w.on_prompt(prompt_using())
    assert w.dropped == 3


def test_queued_prompts_are_written_when_the_writer_stops(fake_comfy):
    path = str(fake_comfy.base / "usage_stats.db")
    w = Writer(lambda: UsageStore(path), PackageMapper("x"), ModelMapper())
    w.start()
    for _ in range(50):
        w.on_prompt(prompt_using())
    w.stop()
    reopened = UsageStore(path)
    assert reopened.prompt_count() == 50
    reopened.close()


def test_a_database_that_cannot_be_opened_turns_tracking_off_with_one_line(fake_comfy, caplog):
    def unopenable():
        raise PermissionError("read-only file system")

    w = Writer(unopenable, PackageMapper("x"), ModelMapper())
    w.start()
    assert w.wait_ready(5) is None
    assert "read-only file system" in w.unavailable
    json_data = prompt_using()
    assert w.on_prompt(json_data) is json_data
    assert caplog.text.count("[usage-stats]") == 1


def test_a_file_name_that_is_not_utf8_is_still_listed_and_recorded(writer, fake_comfy):
    raw = os.fsdecode(b"caf\xe9.safetensors")  # Latin-1 bytes on disk: Python holds them as a lone surrogate
    place_file(fake_comfy.models / "checkpoints" / raw)
    writer.on_prompt({"prompt": {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": raw}}}})
    writer.flush()
    assert [(n, c) for t, n, c, *_ in writer.store.model_rows()] == [("caf\\udce9.safetensors", 1)]
    assert writer.dropped == 0


def test_items_installed_at_start_are_noted_as_first_seen(writer):
    writer.flush()
    assert ("checkpoints", "a.safetensors") in writer.store.model_first_installed()


def test_a_file_a_report_lists_first_is_noted_by_the_writer_while_idle(writer, fake_comfy):
    writer.flush()
    place_file(fake_comfy.models / "checkpoints" / "b.safetensors")
    assert "b.safetensors" in writer.models.installed()["checkpoints"]  # a report's listing, nothing queued
    until(lambda: ("checkpoints", "b.safetensors") in writer.store.model_first_installed(), timeout=5,
          what="the idle writer's inventory")


# ---- wiring


def load_as_comfyui_does(name: str):
    """Import the checkout's __init__.py by file location, as nodes.load_custom_node does."""
    repo = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location(name, repo / "__init__.py", submodule_search_locations=[str(repo)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_importing_the_extension_registers_the_hook_and_every_route(fake_comfy, monkeypatch):
    import server

    prompt_server = server.PromptServer()
    package = load_as_comfyui_does("wired_pack")
    try:
        assert package.WEB_DIRECTORY == "./js" and package.NODE_CLASS_MAPPINGS == {}
        assert len(prompt_server.on_prompt_handlers) == 1
        json_data = prompt_using()
        assert prompt_server.trigger_on_prompt(json_data) is json_data
        paths = {route.path for route in prompt_server.routes}
        assert {"/nodes-stats/packages", "/nodes-stats/usage", "/nodes-stats/models", "/nodes-stats/reset"} <= paths
    finally:
        prompt_server.on_prompt_handlers[0].__self__.stop()
        server.PromptServer.instance = None


def test_importing_outside_comfyui_does_not_raise(monkeypatch, caplog):
    import server

    monkeypatch.setattr(server.PromptServer, "instance", None)
    package = load_as_comfyui_does("unwired_pack")
    assert package.NODE_CLASS_MAPPINGS == {}
    assert "not tracking" in caplog.text


def test_retention_folds_200_days_of_prompts_into_daily_rows_with_every_total_unchanged(fake_comfy):
    """With an injected clock: 200 days of prompts written through the hook, then the writer's idle pass
    deletes the detail older than the retention window (30 days here) and no total, first or last use moves."""
    place_file(fake_comfy.models / "vae" / "v.safetensors")
    path = str(fake_comfy.base / "usage_stats.db")
    clock = {"now": 1_800_000_000 - 200 * DAY}
    now = lambda: clock["now"]  # noqa: E731
    w = Writer(lambda: UsageStore(path, clock=now), PackageMapper("x"), ModelMapper(), clock=now)
    w.start()
    w.wait_ready(5)
    w.apply_config({**w.config.as_dict(), "retention_days": 30})
    for _ in range(200):
        w.on_prompt({"prompt": {"1": {"class_type": "VAELoader", "inputs": {"vae_name": "v.safetensors"}}}})
        w.flush()
        clock["now"] += DAY
    store = w.store
    def totals():
        return store.prompt_count(), store.node_rows(), store.model_rows(), store.totals("model"), store.totals("prompt")

    before = totals()
    w.prune_soon()
    until(lambda: sqlite3.connect(path).execute("SELECT COUNT(*) FROM prompt_log").fetchone()[0] <= 30, timeout=10,
          what="the idle writer's pruning")
    try:
        assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM prompt_log").fetchone() == (30,)
        assert totals() == before
        assert store.prompt_count() == 200 and len(store.daily_series("model", "vae/v.safetensors")) == 200
    finally:
        w.stop()


def test_a_prompt_sqlite_rejects_costs_only_itself(fake_comfy):
    stamps = iter([1_800_000_000, 2**70, 1_800_000_001])  # 2**70 does not fit an SQLite integer
    path = str(fake_comfy.base / "usage_stats.db")
    w = Writer(lambda: UsageStore(path), PackageMapper("x"), ModelMapper(), clock=lambda: next(stamps, time.time()))
    for _ in range(3):
        w.on_prompt(prompt_using())
    w.start()
    try:
        w.flush()
        assert (w.store.prompt_count(), w.dropped) == (2, 1)
        assert w._thread.is_alive()
    finally:
        w.stop()


def test_a_big_batch_is_read_in_chunks_with_the_interpreter_handed_over_between_them(fake_comfy):
    """ComfyUI's event loop waits for the GIL while the writer reads prompts: it gets it between short chunks."""
    path = str(fake_comfy.base / "usage_stats.db")
    read_so_far: list[int] = []
    w = Writer(lambda: UsageStore(path), PackageMapper("x"), ModelMapper(), hand_over=lambda: read_so_far.append(len(w._pending)))
    for _ in range(100):  # queued before the thread starts: one batch of 100
        w.on_prompt(prompt_using())
    w.start()
    try:
        w.flush()
        assert read_so_far == [HAND_OVER_EVERY, 2 * HAND_OVER_EVERY, 3 * HAND_OVER_EVERY]
        assert w.store.prompt_count() == 100 and w.dropped == 0
    finally:
        w.stop()


def test_a_flush_ends_the_gathering_of_a_batch_at_once(writer, monkeypatch):
    """Prompts do not wake the writer while it gathers a batch, but a task (flush, reset, stop) does."""
    monkeypatch.setattr("usage_stats.recording.writer.BATCH_WINDOW_SECONDS", 60)
    writer.on_prompt(prompt_using())
    writer.on_prompt(prompt_using())
    writer.flush(timeout=5)  # would time out if it waited for the 60 s window
    assert writer.store.prompt_count() == 2


def test_importing_the_entry_point_as_a_lone_module_does_not_raise(monkeypatch, caplog):
    """pytest imports a checkout's root __init__.py this way when the folder name is not a package name."""
    repo = Path(__file__).resolve().parent.parent
    monkeypatch.syspath_prepend(str(repo))
    monkeypatch.delitem(sys.modules, "__init__", raising=False)
    module = importlib.import_module("__init__")
    monkeypatch.delitem(sys.modules, "__init__")
    assert module.NODE_CLASS_MAPPINGS == {} and module.WEB_DIRECTORY == "./js"
    assert "not tracking" in caplog.text


# ---- ComfyUI's verdict and each prompt's outcome


def submit(writer, json_data, user="default"):
    """Call the hook the way ComfyUI's /prompt handler does under our request middleware."""
    submission = Submission(user=user)
    token = current_submission.set(submission)
    try:
        writer.on_prompt(json_data)
    finally:
        current_submission.reset(token)
    return submission


def test_a_prompt_comfyui_rejects_is_kept_apart_and_never_counts_as_use(writer):
    writer.on_verdict(submit(writer, prompt_using()), accepted=False)
    writer.flush()
    assert writer.store.node_rows() == [] and writer.store.prompt_count() == 0
    assert writer.store.totals("prompt")[""].rejected == 1


def test_an_accepted_prompt_counts_and_its_outcome_follows(writer):
    json_data = prompt_using()
    submission = submit(writer, json_data, user="alice")
    assert submission.prompt_id == json_data["prompt_id"]  # the id ComfyUI will queue it under
    writer.on_verdict(submission, accepted=True)
    writer.on_finished(Finished(submission.prompt_id, "success", exec_ms=250, cached_nodes=2))
    writer.flush()
    totals = writer.store.totals("model")["checkpoints/a.safetensors"]
    assert (totals.prompts, totals.successes, totals.exec_ms) == (1, 1, 250)
    assert writer.store.users() == ["alice"]


def test_an_outcome_that_overtakes_the_verdict_still_lands(writer):
    submission = submit(writer, prompt_using())
    writer.on_finished(Finished(submission.prompt_id, "interrupted"))
    writer.on_verdict(submission, accepted=True)
    writer.flush()
    assert writer.store.totals("prompt")[""].interrupted == 1
    assert writer.store.prompt_count() == 1


def test_a_prompt_whose_verdict_never_comes_counts_as_accepted(writer, monkeypatch):
    monkeypatch.setattr("usage_stats.recording.writer.VERDICT_WAIT_SECONDS", 0)
    submit(writer, prompt_using())
    writer.flush()
    writer.flush()
    assert writer.store.prompt_count() == 1


def test_a_prompt_sent_without_a_request_counts_as_accepted(writer):
    writer.on_prompt(prompt_using())
    writer.flush()
    assert writer.store.prompt_count() == 1


def test_a_client_chosen_prompt_id_is_kept(writer):
    json_data = {**prompt_using(), "prompt_id": "mine"}
    submit(writer, json_data)
    assert json_data["prompt_id"] == "mine"


def test_with_tracking_off_the_hook_does_nothing_at_all(writer):
    writer.config.replace({**writer.config.as_dict(), "tracking": False})
    json_data = prompt_using()
    before = {**json_data}
    writer.on_prompt(json_data)
    writer.flush()
    assert json_data == before and writer.store.prompt_count() == 0


def every_total(store) -> list:
    """Every daily total the reports sum: the prompt line, each node type, each pack and each model, per day."""
    return [(kind, item, totals) for kind in ("prompt", "node", "package", "model")
            for item, totals in store.totals(kind).items()] + [("day", row[:4], row) for row in store.daily_rows()]


def test_a_reset_forgets_the_prompts_and_outcomes_in_flight_before_it(writer):
    """Outcomes of prompts sent before a reset never land on the fresh rows: successes never outnumber prompts."""
    written = [submit(writer, prompt_using()) for _ in range(3)]
    for submission in written:
        writer.on_verdict(submission, accepted=True)
    writer.flush()  # on disk, waiting for their outcomes
    awaiting = submit(writer, prompt_using())  # its verdict comes after the reset
    writer.reset().result(5)
    for submission in [*written, awaiting]:
        writer.on_verdict(submission, accepted=True)
        writer.on_finished(Finished(submission.prompt_id, "success", exec_ms=10))
    after = submit(writer, prompt_using())
    writer.on_verdict(after, accepted=True)
    writer.on_finished(Finished(after.prompt_id, "success", exec_ms=10))
    writer.flush()
    assert writer.store.prompt_count() == 1
    prompt = writer.store.totals("prompt")[""]
    assert (prompt.prompts, prompt.successes) == (1, 1)
    for kind, item, totals in every_total(writer.store):
        if kind == "day":
            assert totals[5] <= totals[4], totals  # successes <= prompts on each day
        else:
            assert totals.successes <= totals.prompts, (kind, item, totals)
