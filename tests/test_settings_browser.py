"""The Usage Stats settings in ComfyUI's own settings dialog, on both frontends: in the order people read
them, with the server's ranges and defaults, the model types as a choice among this ComfyUI's types, a refused
value named as the dialog names it, and the tiers named by the thresholds in force.
"""

from __future__ import annotations

import pytest
from browser_helpers import page_at
from comfyui import until
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

IN_ORDER = [
    "Record prompts",
    "Track LoRA files",
    "Model types to track",
    "Days unused before “Consider removing”",
    "Days unused before “Safe to remove”",
    "Days of per-prompt detail to keep (totals are kept forever)",
    "Allow moving files while ComfyUI listens on the network",
    "Unload idle models",
]


@pytest.fixture
def ui(browser, sample_server):
    with page_at(browser, sample_server.url) as stats:
        stats.page.wait_for_function("() => window.app.extensionManager.setting.get('UsageStats.Tracking.Enabled') === true")
        yield stats


@pytest.fixture
def page(ui):
    return ui.page


def open_usage_stats_settings(page):
    page.evaluate("() => window.app.extensionManager.command.execute('Comfy.ShowSettingsDialog')")
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Usage Stats", exact=True).first.click()
    expect(dialog.get_by_text(IN_ORDER[0], exact=True)).to_be_visible()
    return dialog


def test_settings_appear_tracking_first_switch_on_top_thresholds_increasing(page):
    dialog = open_usage_stats_settings(page)
    tops = [dialog.get_by_text(label, exact=True).first.bounding_box()["y"] for label in IN_ORDER]
    assert tops == sorted(tops), list(zip(IN_ORDER, tops, strict=True))


def test_model_types_are_a_choice_among_this_comfyuis_types(page, sample_server):
    options = page.evaluate("""() => {
        const spec = window.app.extensionManager.setting.settingsById?.["UsageStats.Tracking.ModelTypes"]
            ?? window.app.ui.settings.settingsParamLookup?.["UsageStats.Tracking.ModelTypes"];
        return spec ? spec.options("").map(o => o.value) : null;
    }""")
    types = sample_server.get("/nodes-stats/config")["model_types"]
    assert options is not None and options[0] == "" and options[1:] == types
    assert "checkpoints" in types


def test_a_refused_value_names_the_setting_as_the_dialog_does(page, sample_server):
    page.evaluate("() => window.app.extensionManager.setting.set('UsageStats.Tiers.SafeDays', 10)")
    expect(page.get_by_text("Days unused before “Safe to remove”: not saved", exact=True)).to_be_visible()
    expect(page.get_by_text(
        "Days unused before “Safe to remove” (10) must be greater than Days unused before “Consider removing” (30)",
        exact=True)).to_be_visible()
    page.wait_for_function("() => window.app.extensionManager.setting.get('UsageStats.Tiers.SafeDays') === 60")
    assert sample_server.get("/nodes-stats/config")["config"]["safe_days"] == 60


def test_ranges_and_defaults_are_the_servers_a_timeout_in_minutes(page, sample_server):
    """The dialog keeps no copy of them: safe_days may be 1 on the server, so it may be 1 in the dialog."""
    fields = {f["name"]: f for f in sample_server.get("/nodes-stats/config")["fields"]}
    timeouts = {f["name"]: f for f in sample_server.get("/nodes-stats/unload/config")["fields"]}
    dialog = open_usage_stats_settings(page)
    safe_days = dialog.get_by_role("spinbutton", name="Days unused before “Safe to remove”")
    expect(safe_days).to_have_attribute("aria-valuemin", str(fields["safe_days"]["min"]))
    expect(safe_days).to_have_attribute("aria-valuemax", str(fields["safe_days"]["max"]))
    vae_minutes = dialog.get_by_role("spinbutton", name="VAE: minutes idle")
    expect(vae_minutes).to_have_attribute("aria-valuemax", str(timeouts["vae_seconds"]["max"] // 60))
    defaults = page.evaluate("""(ids) => ids.map((id) => (window.app.extensionManager.setting.settingsById?.[id]
        ?? window.app.ui.settings.settingsParamLookup?.[id])?.defaultValue)""",
                             ["UsageStats.Storage.RetentionDays", "UsageStats.Memory.vae_seconds"])
    assert defaults == [fields["retention_days"]["default"], timeouts["vae_seconds"]["default"] // 60]


def test_the_new_tier_is_named_by_the_consider_days_in_force(ui, sample_server):
    """Changed in the dialog, then by another client: the label follows the threshold the tiers were cut at."""
    label = ui.badge("unused_new").locator(".usage-stats-badge-label")
    ui.page.evaluate("() => window.app.extensionManager.setting.set('UsageStats.Tiers.ConsiderDays', 45)")
    try:
        until(lambda: sample_server.get("/nodes-stats/config")["config"]["consider_days"] == 45, 15,
              "the dialog's change to reach the server", sample_server)
        ui.open()
        expect(label).to_have_text("Unused < 45 days")
        assert sample_server.request("PUT", "/nodes-stats/config", {"consider_days": 40})[0] == 200
        ui.refresh()
        expect(label).to_have_text("Unused < 40 days")
    finally:
        assert sample_server.request("PUT", "/nodes-stats/config", {"consider_days": 30})[0] == 200
