"""Evidence of use from two witnesses (the prompt's inputs, what ComfyUI loaded) and referenced-only files."""

from __future__ import annotations

import types

import pytest
from comfyui import place_file
from conftest import NOW
from usage_stats.domain.values import DAY, Outcome, PromptUse
from usage_stats.evidence.source import mark_witnesses, with_switched_off
from usage_stats.mapper import ModelMapper, PackageMapper
from usage_stats.memory.manager import LoadWatch, wrap
from usage_stats.recording.writer import Finished, Writer
from usage_stats.reports.models import model_report
from usage_stats.tracker import UsageStore

ON = ("loras", "on.safetensors")
OFF = ("loras", "off.safetensors")
PRESET = ("ipadapter", "plus.safetensors")
INSTALLED = {"loras": ["off.safetensors", "on.safetensors"], "ipadapter": ["plus.safetensors"]}


def rows(store) -> dict[str, dict]:
    switched_off_in = store.reference_rows()
    first = {key: NOW - 400 * DAY for key in [ON, OFF, PRESET]}
    report = model_report(store.model_rows(), INSTALLED, first, store.now(),
                          evidence=with_switched_off({}, switched_off_in))
    mark_witnesses(report, store.witness_rows(), switched_off_in)
    return {row["model_name"]: row for section in report for row in section["models"]}


def prompt(ts: int, used=(), referenced=()) -> PromptUse:
    return PromptUse(ts, {"Loader": "Pack"}, frozenset(used), referenced=frozenset(referenced))


def test_a_file_always_switched_off_is_referenced_never_safe_to_remove_and_says_so(store):
    store.record([prompt(NOW - 100 * DAY + i, used=[ON], referenced=[OFF]) for i in range(14)])
    store.clock_state["now"] = NOW
    found = rows(store)
    assert found["off.safetensors"]["count"] == 0
    assert found["off.safetensors"]["status"] == "consider_removing"
    assert "in 14 prompts, always switched off" in " ".join(found["off.safetensors"]["reasons"])
    assert found["off.safetensors"]["witnesses"] == ["referenced"] and found["off.safetensors"]["referenced_count"] == 14
    assert found["on.safetensors"]["count"] == 14 and found["on.safetensors"]["witnesses"] == ["in prompt"]
    assert found["on.safetensors"]["status"] == "safe_to_remove"  # used, but 100 days ago


def test_rejected_prompts_reference_nothing(store):
    store.record([PromptUse(NOW, {}, frozenset(), accepted=False, referenced=frozenset([OFF]))])
    assert store.reference_rows() == {}


def test_a_file_only_the_run_saw_counts_as_used_by_that_prompt(store):
    use = prompt(NOW, used=[ON])
    [row_id] = store.record([use])
    store.record_outcomes([Outcome(use, row_id, "success", 1200, 0, loaded=frozenset([ON, PRESET]))])
    found = rows(store)
    assert found["plus.safetensors"]["count"] == 1 and found["plus.safetensors"]["status"] == "used"
    assert found["plus.safetensors"]["witnesses"] == ["loaded"]
    assert found["on.safetensors"]["count"] == 1 and found["on.safetensors"]["witnesses"] == ["loaded", "in prompt"]
    totals = store.totals("model")
    assert totals["ipadapter/plus.safetensors"].prompts == 1 and totals["ipadapter/plus.safetensors"].successes == 1


def test_loaded_wins_over_switched_off(store):
    use = prompt(NOW, referenced=[OFF])
    [row_id] = store.record([use])
    assert store.reference_rows()[OFF][0] == 1
    store.record_outcomes([Outcome(use, row_id, "error", loaded=frozenset([OFF]))])
    found = rows(store)
    assert found["off.safetensors"]["status"] == "used" and found["off.safetensors"]["count"] == 1
    assert found["off.safetensors"]["witnesses"] == ["loaded"] and found["off.safetensors"]["referenced_count"] == 0


# ---- the runtime witness: LoadWatch on folder_paths, and the writer that receives it


@pytest.fixture
def watched(fake_comfy, monkeypatch):
    """folder_paths' resolvers wrapped as LoadWatch.install wraps them; the test says which prompt executes."""
    import folder_paths

    place_file(fake_comfy.models / "checkpoints" / "a.safetensors")
    monkeypatch.setattr(folder_paths, "get_full_path", folder_paths.get_full_path)  # undone after the test
    monkeypatch.setattr(folder_paths, "get_full_path_or_raise", _or_raise, raising=False)
    watch = LoadWatch()
    heard: list = []
    watch.on_used = lambda prompt_id, key: heard.append((prompt_id, key))
    executing = {"now": None}
    watch._executing = lambda: executing["now"]
    wrap(folder_paths, "get_full_path", None, watch._after_resolve)
    wrap(folder_paths, "get_full_path_or_raise", None, watch._after_resolve)
    return types.SimpleNamespace(folder_paths=folder_paths, heard=heard, executing=executing, base=fake_comfy.base)


def _or_raise(folder_name, filename):
    """As ComfyUI's folder_paths.get_full_path_or_raise: get_full_path, or FileNotFoundError."""
    import folder_paths

    full_path = folder_paths.get_full_path(folder_name, filename)
    if full_path is None:
        raise FileNotFoundError(f"Model in folder '{folder_name}' with filename '{filename}' not found.")
    return full_path


def test_files_resolved_while_a_prompt_executes_are_reported_once_for_it(watched):
    fp = watched.folder_paths
    expected = str(watched.base / "models" / "checkpoints" / "a.safetensors")
    assert fp.get_full_path("checkpoints", "a.safetensors") == expected  # outside a node: ours or validation
    assert watched.heard == []
    watched.executing["now"] = ("prompt-1", "4")
    assert fp.get_full_path_or_raise("checkpoints", "a.safetensors") == expected
    assert fp.get_full_path("checkpoints", "a.safetensors") == expected
    watched.executing["now"] = ("prompt-2", "4")
    fp.get_full_path("checkpoints", "a.safetensors")
    assert watched.heard == [("prompt-1", ("checkpoints", "a.safetensors")), ("prompt-2", ("checkpoints", "a.safetensors"))]


def test_the_extensions_own_lookups_while_a_prompt_executes_are_no_use(watched):
    """Sizes, moves and detection ask for paths from other threads while ComfyUI runs a prompt."""
    from usage_stats.support.files import model_path

    watched.executing["now"] = ("prompt-1", "4")
    assert model_path("checkpoints", "a.safetensors") == str(watched.base / "models" / "checkpoints" / "a.safetensors")
    assert watched.heard == []


def test_a_file_that_is_not_there_is_no_use_and_the_error_is_comfyuis(watched):
    watched.executing["now"] = ("prompt-1", "4")
    assert watched.folder_paths.get_full_path("checkpoints", "missing.safetensors") is None
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        watched.folder_paths.get_full_path_or_raise("checkpoints", "missing.safetensors")
    assert watched.heard == []


def test_the_writer_counts_what_a_prompt_loaded_when_it_finishes(fake_comfy):
    place_file(fake_comfy.models / "checkpoints" / "a.safetensors")
    place_file(fake_comfy.models / "vae" / "v.safetensors")
    writer = Writer(lambda: UsageStore(str(fake_comfy.base / "usage_stats.db")), PackageMapper("usage-stats"), ModelMapper())
    writer.start()
    try:
        writer.wait_ready(5)
        body = {"prompt": {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}}},
                "prompt_id": "p-1"}
        writer.on_prompt(body)
        writer.on_loaded("p-1", ("vae", "v.safetensors"))
        writer.on_loaded("p-1", ("loras", "not_tracked.safetensors"))  # LoRAs are off by default: ignored
        writer.on_loaded("someone-elses", ("checkpoints", "a.safetensors"))
        writer.on_finished(Finished("p-1", "success", exec_ms=10))
        writer.flush()
        usage = {(t, n): count for t, n, count, *_ in writer.store.model_rows()}
        assert usage == {("checkpoints", "a.safetensors"): 1, ("vae", "v.safetensors"): 1}
        assert writer.store.witness_rows()[("vae", "v.safetensors")] == (0, 1)
    finally:
        writer.stop()
