"""The decisions UI in a real browser on a real ComfyUI: space per tier, and the quarantine round trip
(tick a model, move it after a confirmation that names its size, restore it from the Quarantine tab)."""

from __future__ import annotations

import json
import re
import time

import pytest
from browser_helpers import open_ui, seed_base
from comfyui import ComfyServer, place_file
from playwright.sync_api import expect
from usage_stats.domain.values import DAY
from usage_stats.tracker import UsageStore

pytestmark = pytest.mark.browser

OLD_MODEL = "old ü model.safetensors"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = seed_base(tmp_path_factory.mktemp("comfyui-decisions"))
    place_file(base / "models" / "checkpoints" / OLD_MODEL, b"o" * 4096)
    place_file(base / "models" / "checkpoints" / "copy a.safetensors", b"c" * 2048)
    place_file(base / "models" / "vae" / "copy b.safetensors", b"c" * 2048)
    place_file(base / "models" / "vae" / "same size, other bytes.safetensors", b"x" * 2048)
    database = base / "user" / "__nodes_stats" / "usage_stats.db"
    database.parent.mkdir(parents=True)
    store = UsageStore(str(database), clock=lambda: time.time() - 90 * DAY)
    store.note_installed(models=[("checkpoints", OLD_MODEL)])
    store.close()
    with ComfyServer(base) as running:
        yield running


@pytest.fixture
def ui(server):
    with open_ui(server.url) as stats:
        yield stats


def test_a_model_moves_to_quarantine_and_back_from_the_panel(ui, server):
    original = server.models / "checkpoints" / OLD_MODEL
    ui.open()
    ui.show("models")
    expect(ui.badge("safe_to_remove").get_by_test_id("usage-stats-badge-bytes")).to_have_text("4.0 KB")
    row = ui.panel.locator(f"[data-testid='usage-stats-model-row'][data-model='{OLD_MODEL}']")
    expect(row).to_have_attribute("data-status", "safe_to_remove")
    expect(row.locator(".usage-stats-size")).to_have_text("4.0 KB")
    expect(row.get_by_test_id("usage-stats-reason")).to_have_text(re.compile(r"^never used since \d{4}-\d\d-\d\d$"))
    row.get_by_test_id("usage-stats-select").check()
    expect(ui.panel.get_by_test_id("usage-stats-selection-summary")).to_have_text("1 file selected · frees 4.0 KB")

    ui.panel.get_by_test_id("usage-stats-quarantine-selected").click()
    confirm = ui.page.locator("[role='dialog'][aria-labelledby='global-prompt']")
    expect(confirm).to_contain_text("1 file (4.0 KB)")
    confirm.locator("button[aria-label='Confirm']").click()
    ui.wait_ready()
    expect(row).to_have_count(0)
    assert not original.exists()

    ui.show("quarantine")
    entry = ui.panel.locator(f"[data-testid='usage-stats-quarantine-row'][data-model='{OLD_MODEL}']")
    expect(ui.panel.get_by_test_id("usage-stats-quarantine-total")).to_have_text("1 file · 4.0 KB")
    entry.get_by_test_id("usage-stats-restore").click()
    ui.wait_ready()
    expect(entry).to_have_count(0)
    assert original.read_bytes() == b"o" * 4096
    expect(ui.panel.get_by_test_id("usage-stats-actions-log").locator("li")).to_have_count(2)
    ui.show("models")
    expect(row).to_have_attribute("data-status", "safe_to_remove")


def test_pinning_a_model_keeps_it_out_of_the_removal_tiers(ui):
    ui.open()
    ui.show("models")
    row = ui.panel.locator(f"[data-testid='usage-stats-model-row'][data-model='{OLD_MODEL}']")
    row.get_by_test_id("usage-stats-keep").click()
    ui.wait_ready()
    expect(row).to_have_attribute("data-status", "unused_new")
    expect(row.get_by_test_id("usage-stats-keep")).to_have_attribute("aria-pressed", "true")
    row.get_by_test_id("usage-stats-keep").click()
    ui.wait_ready()
    expect(row).to_have_attribute("data-status", "safe_to_remove")


def test_the_duplicates_tab_finds_identical_files_and_the_space_they_waste(ui):
    ui.open()
    ui.show("duplicates")
    ui.panel.get_by_test_id("usage-stats-find-duplicates").click()
    view = ui.panel.get_by_test_id("usage-stats-duplicates")
    expect(view).to_have_attribute("data-state", "done")
    summary = ui.panel.get_by_test_id("usage-stats-duplicates-summary")
    expect(summary).to_have_text("1 group of identical files · 2.0 KB in extra copies")
    group = ui.panel.get_by_test_id("usage-stats-duplicate-group")
    expect(group).to_contain_text("copy a.safetensors (Checkpoints)")
    expect(group).to_contain_text("copy b.safetensors (VAE)")
    expect(group).not_to_contain_text("other bytes")


def test_history_is_imported_from_past_outputs_after_a_confirmation(ui, server):
    from comfyui import prompt_using
    from test_decisions import save_png

    past = time.time() - 120 * DAY
    save_png(server.base / "output" / "ComfyUI_00001_.png", json.dumps(prompt_using(OLD_MODEL)), mtime=past)
    (server.base / "output" / "interrupted save.png").write_bytes(b"")
    ui.open()
    ui.page.get_by_test_id("usage-stats-import-history").click()
    confirm = ui.page.locator("[role='dialog'][aria-labelledby='global-prompt']")
    expect(confirm).to_contain_text("counted once")
    confirm.locator("button[aria-label='Confirm']").click()
    expect(ui.page.locator(".p-toast-message")).to_contain_text(
        "1 past prompt added from 2 images; 1 file skipped (empty, or not a regular file)")
    ui.wait_ready()
    ui.show("models")
    row = ui.panel.locator(f"[data-testid='usage-stats-model-row'][data-model='{OLD_MODEL}']")
    expect(row.locator(".usage-stats-count")).to_have_text("1 use")


def test_a_pack_can_be_pinned_from_its_details(ui):
    ui.open()
    row = ui.package_row("usage-stats-idle-pack")
    row.click()
    ui.panel.get_by_test_id("usage-stats-keep-pack").click()
    ui.wait_ready()
    expect(ui.package_row("usage-stats-idle-pack").locator("[data-flag='kept']")).to_have_text("kept")
    expect(ui.panel.get_by_test_id("usage-stats-disable-pack")).to_be_visible()
