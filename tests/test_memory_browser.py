"""The memory status line and the idle-unload settings in a real browser on a real ComfyUI.

A real prompt loads the tiny VAE (tests/tiny_models.py); the panel must say it is in memory and mark it in
the Models tab, and the settings dialog's Memory entries must reach the server.
"""

from __future__ import annotations

import re

import pytest
from browser_helpers import open_ui, seed_base
from comfyui import ComfyServer, until
from playwright.sync_api import expect
from test_memory_acceptance import VAE, decode_prompt, run
from tiny_models import tiny_vae

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = seed_base(tmp_path_factory.mktemp("comfyui"))
    tiny_vae(base / "models" / "vae" / VAE)
    with ComfyServer(base) as comfy:
        yield comfy


@pytest.fixture
def ui(server):
    with open_ui(server.url, height=900) as stats:
        yield stats


def test_the_status_line_says_what_is_loaded_and_the_models_tab_marks_it(server, ui):
    assert run(server, decode_prompt())["status_str"] == "success"
    ui.open()
    status = ui.page.get_by_test_id("usage-stats-memory")
    expect(status).to_have_text("1 model in memory · idle unload off")
    expect(status).to_have_attribute("title", f"In memory: {VAE}")
    ui.show("models")
    badge = ui.panel.locator(f"[data-testid='usage-stats-model-row'][data-model='{VAE}'] [data-testid='usage-stats-loaded']")
    expect(badge).to_have_text(re.compile(r"^loaded · \d+(\.\d)? s$"))
    expect(badge).to_have_attribute("title", re.compile(r"^In RAM \(VAE\); loading took \d"))


def test_a_setting_changed_in_the_settings_dialog_reaches_the_server(server, ui):
    ui.page.evaluate("() => window.app.extensionManager.command.execute('Comfy.ShowSettingsDialog')")
    dialog = ui.page.get_by_role("dialog")
    dialog.get_by_text("Usage Stats", exact=True).first.click()
    setting_row(dialog, "Unload idle models").get_by_role("switch").click()
    minutes = setting_row(dialog, "VAE: minutes idle").locator("input")
    minutes.click()
    minutes.press("Control+a")
    minutes.press_sequentially("5")  # typed, as a user would: the number input ignores a programmatic fill
    minutes.press("Enter")
    minutes.press("Tab")

    def sent() -> bool:
        values = server.get("/nodes-stats/unload/config")["config"]
        return (values["vae_seconds"], values["enabled"]) == (300, True)

    until(sent, 15, "the typed timeout to reach the server", server)


def setting_row(dialog, label: str):
    """One entry of ComfyUI's settings dialog: its label and its input."""
    return dialog.locator(".form-label", has_text=label).locator("xpath=..")


def test_the_dialog_shows_values_changed_through_the_api(server, ui):
    status, _, _ = server.request("PUT", "/nodes-stats/unload/config", {"other_seconds": 1200})
    assert status == 200
    ui.page.reload()
    ui.page.wait_for_function("window.app && window.app.extensionManager")
    ui.page.wait_for_function("window.app.extensionManager.setting.get('UsageStats.Memory.other_seconds') === 20")

