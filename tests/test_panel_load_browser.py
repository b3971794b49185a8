"""What the panel fetches, counted from the browser's own requests, on both frontends: only the visible
tab's data, once per finished prompt, and nothing while nothing happens ("nothing" checked after a flush)."""

from __future__ import annotations

import pytest
from browser_helpers import UsageStatsPage, frontend_args, seed_base
from comfyui import ComfyServer
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

DEMO_PROMPT = {"1": {"class_type": "DemoOutput", "inputs": {"text": "hello"}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory, frontend):
    with ComfyServer(seed_base(tmp_path_factory.mktemp(f"load-{frontend}")), frontend_args(frontend)) as running:
        yield running


@pytest.fixture
def ui(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    stats = UsageStatsPage(page, server.url)
    stats.requests = []
    page.on("request", lambda request: "/nodes-stats/" in request.url and stats.requests.append(route_of(request.url)))
    yield stats
    context.close()


def past_the_debounce(ui, server) -> None:
    """Wait, in the page, past the panel's reload debounce (1 s) after the writer has flushed, so a second
    reload, had one been asked for, would have been requested and reported."""
    server.flush()
    ui.page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 2000))")
    server.flush()
    ui.page.evaluate("() => 0")


def route_of(url: str) -> str:
    return url.split("/nodes-stats/", 1)[1].split("?", 1)[0]


def test_the_nodes_tab_never_fetches_the_models_and_one_prompt_reloads_it_once(ui, server):
    ui.open()
    recorded = server.get("/nodes-stats/status")["prompts_recorded"]
    assert "packages" in ui.requests and "models" not in ui.requests, ui.requests
    del ui.requests[:]
    with ui.page.expect_request(lambda request: "/nodes-stats/packages" in request.url):
        assert server.queue_prompt(DEMO_PROMPT)[0] == 200  # no client id: only the queue's "status" event tells the page
        server.wait_recorded(recorded + 1)
    ui.wait_ready()
    past_the_debounce(ui, server)
    assert ui.requests.count("packages") == 1 and ui.requests.count("status") == 1, ui.requests
    assert "models" not in ui.requests, ui.requests
    expect(ui.package_row("usage-stats-demo-pack")).to_have_attribute("data-status", "used")


def test_a_prompt_queued_from_the_page_reloads_the_visible_tab_once(ui, server):
    ui.open()
    ui.show("models")
    ui.wait_ready()
    recorded = server.get("/nodes-stats/status")["prompts_recorded"]
    del ui.requests[:]
    with ui.page.expect_request(lambda request: "/nodes-stats/models" in request.url):
        ui.page.evaluate("(prompt) => window.app.api.fetchApi('/prompt', { method: 'POST', body: JSON.stringify("
                         "{ prompt, client_id: window.app.api.clientId }) })", DEMO_PROMPT)
        server.wait_recorded(recorded + 1)
    ui.wait_ready()
    past_the_debounce(ui, server)
    assert ui.requests.count("models") == 1, ui.requests
    assert "packages" not in ui.requests, ui.requests


def test_switching_tabs_loads_the_new_tab_and_back_comes_from_the_cache(ui):
    ui.open()
    ui.show("models")
    expect(ui.panel.get_by_test_id("usage-stats-models")).to_be_visible()
    ui.wait_ready()
    assert ui.requests.count("models") == 1
    ui.show("nodes")
    ui.wait_ready()
    ui.show("models")
    expect(ui.panel.get_by_test_id("usage-stats-models")).to_be_visible()
    assert ui.requests.count("models") == 1 and ui.requests.count("packages") == 1, ui.requests


def test_the_memory_line_reads_once_on_opening_then_nothing_while_nothing_happens(ui, server):
    ui.open()
    expect(ui.page.get_by_test_id("usage-stats-memory")).not_to_have_text("Memory: …")
    expect(ui.page.get_by_test_id("usage-stats-fleet")).to_be_hidden()  # no shared store configured
    assert ui.requests.count("loaded") == 1 and ui.requests.count("shared") == 1, ui.requests
    before = list(ui.requests)
    server.flush()
    ui.page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 6000))")  # longer than the old 5 s poll
    server.flush()
    ui.page.evaluate("() => 0")  # the page's requests so far are reported
    assert ui.requests == before


def test_a_closed_panel_fetches_nothing_after_a_prompt(ui, server):
    ui.open()
    ui.page.locator(".usage-stats-tab-button, [data-testid='usage-stats-tab-button']").click()
    expect(ui.panel).to_have_count(0)
    del ui.requests[:]
    recorded = server.get("/nodes-stats/status")["prompts_recorded"]
    assert server.queue_prompt(DEMO_PROMPT)[0] == 200
    server.wait_recorded(recorded + 1)
    past_the_debounce(ui, server)
    assert ui.requests == []
