"""The sidebar tab at its default width, on both frontends (1.32.9: 266 px, 1.58.1: 311 px): what is on
screen is readable, measured on the rendered boxes, not only on the text.

The data is the sandbox's (scripts/sandbox_data.py); the tests that change it (turning LoRA tracking on)
come last in the module.
"""

from __future__ import annotations

import re

import pytest
from browser_helpers import ARTIFACTS, page_at
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

DEFAULT_WIDTHS = {"pinned": 266, "newest": 311}


@pytest.fixture
def ui(browser, sample_server):
    with page_at(browser, sample_server.url) as stats:
        stats.open()
        yield stats


CLIPPED = """(root, selector) => [...root.querySelectorAll(selector)]
    .filter(box => box.getClientRects().length)
    .filter(box => box.scrollHeight > box.clientHeight + 1 || box.scrollWidth > box.clientWidth + 1
        || box.getBoundingClientRect().right > root.getBoundingClientRect().right + 0.5)
    .map(box => box.textContent)"""


def test_the_sidebar_has_its_default_width(ui, frontend):
    width = ui.page.evaluate("() => document.querySelector('.sidebar-content-container').getBoundingClientRect().width")
    assert abs(width - DEFAULT_WIDTHS[frontend]) < 2


def test_tabs_are_on_one_line(ui):
    tops = ui.panel.locator(".usage-stats-tab").evaluate_all(
        "tabs => tabs.map(tab => Math.round(tab.getBoundingClientRect().top))")
    assert len(tops) == 4 and len(set(tops)) == 1


def test_model_names_reasons_and_figures_are_fully_visible(ui):
    ui.show("models")
    expect(ui.model_rows().first).to_be_visible()
    rows = ui.model_rows().count()
    assert rows >= 7
    parts = ("name", "reason", "figures", "size")
    selector = ", ".join(f"[data-testid='usage-stats-model-row'] .usage-stats-{part}" for part in parts)
    assert ui.panel.evaluate(CLIPPED, selector) == []
    row = ui.panel.locator("[data-testid='usage-stats-model-row'][data-model='old_experiments/anime_merge_v3.safetensors']")
    expect(row.get_by_test_id("usage-stats-figures")).to_have_text("0 uses · never used")
    expect(row.get_by_test_id("usage-stats-reason")).to_have_text(re.compile(r"^never used since \d{4}-\d\d-\d\d$"))


def test_pack_names_reasons_and_import_times_are_fully_visible(ui):
    parts = ("name-text", "meta", "pack-reason")
    selector = ", ".join(f"[data-testid='usage-stats-package-row'] .usage-stats-{part}" for part in parts)
    assert ui.panel.evaluate(CLIPPED, selector) == []
    slow = ui.package_row("ComfyUI-Sample-Old-Effects").get_by_test_id("usage-stats-import-time")
    expect(slow).to_have_text("0.4 s to import")
    expect(slow).to_have_class("usage-stats-import-time usage-stats-slow-unused")
    expect(ui.package_row("ComfyUI-Sample-Image-Tools").get_by_test_id("usage-stats-import-time")).to_have_text("0.0 s to import")


def test_search_box_only_on_the_tabs_it_searches(ui):
    search = ui.page.get_by_test_id("usage-stats-search")
    for tab, shown in (("nodes", True), ("models", True), ("duplicates", False), ("quarantine", False)):
        ui.show(tab)
        (expect(search).to_be_visible if shown else expect(search).to_be_hidden)()


def test_the_chart_spans_the_range_with_dates_and_says_when_empty(ui):
    ui.page.locator("[data-testid='usage-stats-range'] [data-days='30']").click()
    ui.wait_ready()
    chart = ui.page.get_by_test_id("usage-stats-chart")
    expect(chart.locator("g")).to_have_count(30)
    box, first, last = chart.evaluate("""svg => [svg.getBoundingClientRect(),
        svg.querySelector('g .usage-stats-chart-hit').getBoundingClientRect(),
        svg.querySelector('g:last-of-type .usage-stats-chart-hit').getBoundingClientRect()]
        .map(r => ({ left: r.left, right: r.right }))""")
    assert abs(first["left"] - box["left"]) < 1 and abs(last["right"] - box["right"]) < 1
    expect(ui.page.get_by_test_id("usage-stats-chart-axis").locator("span")).to_have_count(3)
    ui.show("models")
    never = ui.panel.locator("[data-testid='usage-stats-model-row'][data-model='old_experiments/anime_merge_v3.safetensors']")
    never.get_by_test_id("usage-stats-chart-row").click()
    ui.wait_ready()
    expect(ui.page.get_by_test_id("usage-stats-chart-empty")).to_have_text("No prompts in this range.")


def test_in_a_range_view_an_item_used_before_it_says_when(ui):
    ui.page.locator("[data-testid='usage-stats-range'] [data-days='7']").click()
    ui.wait_ready()
    ui.show("models")
    old = ui.panel.locator("[data-testid='usage-stats-model-row'][data-model='v1-5-pruned-emaonly.ckpt']")
    expect(old.get_by_test_id("usage-stats-figures")).to_have_text("0 uses · last used 3 months ago")
    assert old.get_by_test_id("usage-stats-date").get_attribute("title").startswith("not used in this range; last used")
    never = ui.panel.locator("[data-testid='usage-stats-model-row'][data-model='old_experiments/anime_merge_v3.safetensors']")
    expect(never.get_by_test_id("usage-stats-figures")).to_have_text("0 uses · never used")


def test_screenshots_of_both_tabs_in_dark_and_light_palettes(ui, frontend):
    if frontend != "pinned":
        pytest.skip("one set of screenshots, from the frontend ComfyUI pins")
    for palette in ("dark", "light"):
        ui.page.evaluate("(p) => window.app.extensionManager.setting.set('Comfy.ColorPalette', p)", palette)
        for tab in ("nodes", "models"):
            ui.show(tab)
            ui.page.mouse.move(0, 0)
            path = ARTIFACTS / f"sidebar-{tab}-{palette}.png"
            ARTIFACTS.mkdir(exist_ok=True)
            ui.page.locator(".sidebar-content-container").screenshot(path=str(path))
            assert path.stat().st_size > 10_000
    ui.page.evaluate("() => window.app.extensionManager.setting.set('Comfy.ColorPalette', 'dark')")


def test_while_loras_are_not_tracked_the_models_tab_says_so_and_turns_it_on(ui, sample_server):
    ui.show("models")
    note = ui.panel.get_by_test_id("usage-stats-loras-off")
    expect(note).to_contain_text("LoRAs are not tracked")
    note.get_by_test_id("usage-stats-track-loras").click()
    ui.wait_ready()
    expect(note).to_have_count(0)
    assert sample_server.get("/nodes-stats/config")["config"]["track_loras"] is True
    expect(ui.panel.locator("[data-testid='usage-stats-model-row'][data-model='detail_tweaker.safetensors']")).to_be_visible()
    setting = ui.page.evaluate("() => window.app.extensionManager.setting.get('UsageStats.Tracking.Loras')")
    assert setting is True
