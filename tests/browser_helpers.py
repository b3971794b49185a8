"""Page object and fixtures' building blocks for the real-browser tests of the Usage Stats UI.

The browser is Debian's chromium driven by Python Playwright; the page is real ComfyUI with this pack.
Waits are web-first (expect / wait_for_function), never sleeps: the CI machine is small and shared.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
TIMEOUT_MS = 60_000
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
TAB_BUTTON = ".usage-stats-tab-button, [data-testid='usage-stats-tab-button']"

# The first-run template browser and the "missing models" check would cover the page with modals.
QUIET_SETTINGS = {
    "Comfy.TutorialCompleted": True,
    "Comfy.Workflow.ShowMissingModelsWarning": False,
    "Comfy.Workflow.ShowMissingNodesWarning": False,
}

# A custom-node pack with one node the tests use and one they never use, plus a pack nobody uses.
DEMO_PACK = '''
class DemoOutput:
    CATEGORY = "usage-stats-demo"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "hello"})}}

    def run(self, text):
        return {}


class DemoNeverUsed(DemoOutput):
    pass


NODE_CLASS_MAPPINGS = {"DemoOutput": DemoOutput, "DemoNeverUsed": DemoNeverUsed}
'''


def seed_base(base: Path) -> Path:
    """A ComfyUI base directory with quiet UI settings and the demo packs installed."""
    (base / "user" / "default").mkdir(parents=True, exist_ok=True)
    (base / "user" / "default" / "comfy.settings.json").write_text(json.dumps(QUIET_SETTINGS))
    for name in ("usage-stats-demo-pack", "usage-stats-idle-pack"):
        (base / "custom_nodes" / name).mkdir(parents=True, exist_ok=True)
        (base / "custom_nodes" / name / "__init__.py").write_text(DEMO_PACK.replace("Demo", name.split("-")[2].title()))
    return base


@contextmanager
def open_ui(url: str, height: int = 1000) -> Iterator["UsageStatsPage"]:
    """A fresh headless Chromium on the ComfyUI page at `url`, seen through the Usage Stats tab."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield UsageStatsPage(browser.new_page(viewport={"width": 1400, "height": height}), url)
        finally:
            browser.close()


@contextmanager
def page_at(browser, url: str, page_class: type["UsageStatsPage"] | None = None, before_load=None) -> Iterator["UsageStatsPage"]:
    """The ComfyUI page at `url` in a browser context of its own (its own storage and cache), closed after.
    `before_load(page)` runs before the page loads, e.g. to hear its requests from the first."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        if before_load is not None:
            before_load(page)
        yield (page_class or UsageStatsPage)(page, url)
    finally:
        context.close()


class UsageStatsPage:
    """The ComfyUI page seen through the Usage Stats tab."""

    def __init__(self, page: Page, url: str):
        self.page = page
        page.set_default_timeout(TIMEOUT_MS)
        page.route("**/api.comfy.org/**", lambda route: route.abort())
        page.goto(url)
        page.wait_for_function("window.app && window.app.extensionManager", timeout=90_000)

    @property
    def panel(self):
        return self.page.get_by_test_id("usage-stats-panel")

    def open(self) -> None:
        if not self.panel.is_visible():
            self.page.locator(TAB_BUTTON).click()
        self.wait_ready()

    def wait_ready(self) -> None:
        expect(self.panel).to_have_attribute("data-state", "ready", timeout=TIMEOUT_MS)
        expect(self.panel).to_have_attribute("aria-busy", "false", timeout=TIMEOUT_MS)

    def refresh(self) -> None:
        self.page.get_by_test_id("usage-stats-refresh").click()
        self.wait_ready()

    def show(self, tab: str) -> None:
        self.page.get_by_test_id(f"usage-stats-tab-{tab}").click()

    def section(self, key: str):
        return self.panel.locator(f"[data-testid='usage-stats-section'][data-section='{key}']")

    def expand(self, key: str) -> None:
        header = self.section(key).locator(".usage-stats-section-header")
        if header.get_attribute("aria-expanded") == "false":
            header.click()

    def badge(self, tier: str):
        return self.panel.locator(f"[data-testid='usage-stats-badge'][data-tier='{tier}']")

    def package_row(self, name: str):
        return self.panel.locator(f"[data-testid='usage-stats-package-row'][data-package='{name}']")

    def model_rows(self):
        return self.panel.get_by_test_id("usage-stats-model-row")

    def search(self, text: str) -> None:
        self.page.get_by_test_id("usage-stats-search").fill(text)

    def queue_workflow(self, workflow: dict) -> None:
        """Load a workflow into the graph and queue it with the frontend's own Queue command."""
        self.page.evaluate("async (wf) => { await window.app.loadGraphData(wf); }", workflow)
        self.page.evaluate("() => window.app.extensionManager.command.execute('Comfy.QueuePrompt')")

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.panel.screenshot(path=str(path))
        return path


# ---- for the suites that run on both frontends (their fixtures are in conftest.py)


def frontend_args(frontend: str) -> tuple[str, ...]:
    """ComfyUI's arguments for the frontend it pins ("pinned") or the newer one scripts/comfyui-env installs."""
    return () if frontend == "pinned" else ("--front-end-root", os.environ["COMFYUI_FRONTEND_NEWEST"])


def quiet(base: Path) -> Path:
    (base / "user" / "default").mkdir(parents=True, exist_ok=True)
    (base / "user" / "default" / "comfy.settings.json").write_text(json.dumps(QUIET_SETTINGS))
    return base


TWENTY_THOUSAND_MODELS = {"checkpoints": 8000, "embeddings": 5000, "controlnet": 3000, "vae": 2000, "upscale_models": 2000}
"""The large install of the README's figures: model files per type."""


def place_twenty_thousand_models(base: Path, write) -> None:
    """The large install's files under `base`, in four subfolders per type; `write(path, i)` makes the i-th of a type."""
    for model_type, count in TWENTY_THOUSAND_MODELS.items():
        for i in range(count):
            write(base / "models" / model_type / f"set{i % 4}" / f"{model_type}_{i:05d}.safetensors", i)
