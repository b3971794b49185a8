"""Evidence of use from two witnesses (the prompt's inputs, what ComfyUI loaded) and referenced-only files."""

from __future__ import annotations

from conftest import NOW
from usage_stats.evidence import mark_witnesses, with_switched_off
from usage_stats.tracker import DAY, Outcome, PromptUse, model_report

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
