"""What the panel fetches, counted from the browser's own requests, on both frontends: only the visible
tab's data, once per finished prompt, and nothing while nothing happens ("nothing" checked after a flush);
at 20,000 models, the Models tab's pages and totals, never the whole list."""

from __future__ import annotations

import json

import pytest
from urllib.parse import parse_qs, urlsplit

from browser_helpers import TWENTY_THOUSAND_MODELS, frontend_args, page_at, place_twenty_thousand_models, seed_base
from comfyui import ComfyServer, place_file
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

DEMO_PROMPT = {"1": {"class_type": "DemoOutput", "inputs": {"text": "hello"}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory, frontend):
    base = seed_base(tmp_path_factory.mktemp(f"load-{frontend}"))
    place_file(base / "models" / "checkpoints" / "one.safetensors")  # so the Models tab has a list to page
    with ComfyServer(base, frontend_args(frontend)) as running:
        yield running


@pytest.fixture(scope="module")
def large_server(tmp_path_factory, frontend):
    """20,000 model files (1 byte each), never used, placed before ComfyUI starts."""
    base = seed_base(tmp_path_factory.mktemp(f"load-large-{frontend}"))
    place_twenty_thousand_models(base, lambda path, i: place_file(path))
    with ComfyServer(base, frontend_args(frontend)) as running:
        yield running


@pytest.fixture
def ui(browser, server):
    with page_at(browser, server.url) as stats:
        stats.requests = []
        stats.page.on("request", lambda request: "/nodes-stats/" in request.url and stats.requests.append(route_of(request.url)))
        yield stats


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
    assert "packages" in ui.requests and "models" not in ui.requests and "disk" not in ui.requests, ui.requests
    del ui.requests[:]
    with ui.page.expect_request(lambda request: "/nodes-stats/packages" in request.url):
        assert server.queue_prompt(DEMO_PROMPT)[0] == 200  # no client id: only the queue's "status" event tells the page
        server.wait_recorded(recorded + 1)
    ui.wait_ready()
    past_the_debounce(ui, server)
    assert ui.requests.count("packages") == 1 and ui.requests.count("status") == 1, ui.requests
    assert "models" not in ui.requests and "disk" not in ui.requests, ui.requests
    expect(ui.package_row("usage-stats-demo-pack")).to_have_attribute("data-status", "used")


def test_a_prompt_queued_from_the_page_reloads_the_visible_tab_once(ui, server):
    ui.open()
    ui.show("models")
    ui.wait_ready()
    recorded = server.get("/nodes-stats/status")["prompts_recorded"]
    del ui.requests[:]
    with ui.page.expect_request(lambda request: "/nodes-stats/disk" in request.url):  # the Models tab's totals
        ui.page.evaluate("(prompt) => window.app.api.fetchApi('/prompt', { method: 'POST', body: JSON.stringify("
                         "{ prompt, client_id: window.app.api.clientId }) })", DEMO_PROMPT)
        server.wait_recorded(recorded + 1)
    ui.wait_ready()
    past_the_debounce(ui, server)
    assert ui.requests.count("disk") == 1, ui.requests
    assert ui.requests.count("models") == ui.panel.get_by_test_id("usage-stats-model-list").count(), ui.requests  # a page each
    assert "packages" not in ui.requests, ui.requests


def test_switching_tabs_loads_the_new_tab_and_back_comes_from_the_cache(ui):
    ui.open()
    ui.show("models")
    expect(ui.panel.get_by_test_id("usage-stats-models")).to_be_visible()
    ui.wait_ready()
    assert ui.requests.count("disk") == 1
    pages = ui.requests.count("models")
    ui.show("nodes")
    ui.wait_ready()
    ui.show("models")
    expect(ui.panel.get_by_test_id("usage-stats-models")).to_be_visible()
    ui.wait_ready()
    assert ui.requests.count("disk") == 1 and ui.requests.count("packages") == 1, ui.requests
    assert ui.requests.count("models") == pages, ui.requests


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


@pytest.fixture
def large_ui(browser, large_server):
    """The large install's page, with every /nodes-stats response it receives (to weigh their bodies)."""
    with page_at(browser, large_server.url) as stats:
        stats.responses = []
        stats.page.on("response", lambda response: "/nodes-stats/" in response.url and stats.responses.append(response))
        yield stats


def model_reads(ui) -> list[dict[str, list[str]]]:
    """The query of every /models request the page made so far."""
    return [parse_qs(urlsplit(r.url).query, keep_blank_values=True) for r in ui.responses if route_of(r.url) == "models"]


def test_the_models_tabs_first_visit_at_20000_models_downloads_pages_not_the_whole_list(large_ui, large_server):
    whole = len(json.dumps(large_server.get("/nodes-stats/models"), separators=(",", ":")).encode())
    large_ui.open()
    del large_ui.responses[:]
    large_ui.show("models")
    expect(large_ui.model_rows().first).to_be_visible()
    large_ui.wait_ready()
    expect(large_ui.panel.get_by_test_id("usage-stats-model-pending")).to_have_count(0)
    expect(large_ui.badge("unused_new").locator(".usage-stats-badge-count")).to_have_text("20,000")
    expect(large_ui.section("models-checkpoints").locator(".usage-stats-section-count")).to_have_text("8,000")
    reads = model_reads(large_ui)
    assert reads and all(int(query["limit"][0]) <= 100 for query in reads), reads  # no read of the whole list
    assert len(reads) <= len(TWENTY_THOUSAND_MODELS), reads  # the first page of each open section
    downloaded = sum(len(r.body()) for r in large_ui.responses if route_of(r.url) in ("models", "disk"))
    print(f"\n20,000 models: the Models tab's first visit read {downloaded:,} bytes; the whole list is {whole:,}")
    assert downloaded < whole / 20, (downloaded, whole)


def test_scrolling_and_searching_the_models_tab_reach_rows_past_the_first_page(large_ui):
    large_ui.open()
    large_ui.show("models")
    large_ui.wait_ready()
    last = large_ui.panel.locator("[data-model='set3/checkpoints_07999.safetensors']")
    expect(last).to_have_count(0)  # not on the first page: it is the last of 8,000
    checkpoints = large_ui.section("models-checkpoints").get_by_test_id("usage-stats-model-list")
    checkpoints.evaluate("list => list.scrollTop = list.scrollHeight")
    expect(last).to_be_visible()
    assert any(int(q["offset"][0]) >= 7900 and q["type"] == ["checkpoints"] for q in model_reads(large_ui))

    wanted = "set1/embeddings_04321.safetensors"
    large_ui.search("EMBEDDINGS_04321")
    row = large_ui.panel.locator(f"[data-model='{wanted}']")
    expect(row).to_be_visible()
    expect(large_ui.model_rows()).to_have_count(1)
    expect(large_ui.badge("unused_new").locator(".usage-stats-badge-count")).to_have_text("1")
    assert any(q.get("q") == ["embeddings_04321"] for q in model_reads(large_ui))
    assert all("limit" in q for q in model_reads(large_ui))


def test_a_selection_spans_pages_and_searches_and_the_move_names_exactly_the_ticked_rows(large_ui):
    large_ui.open()
    large_ui.show("models")
    large_ui.wait_ready()
    first = "set0/vae_00000.safetensors"
    large_ui.panel.locator(f"[data-model='{first}']").get_by_test_id("usage-stats-select").check()
    large_ui.search("controlnet_02999")
    second = large_ui.panel.locator("[data-model='set3/controlnet_02999.safetensors']")
    second.get_by_test_id("usage-stats-select").check()
    expect(large_ui.panel.get_by_test_id("usage-stats-selection-summary")).to_have_text("2 files selected · frees 2 B")
    sent = []

    def hold(route):  # read what the move would send, and move nothing: the install serves the other tests
        sent.append(route.request.post_data_json)
        route.fulfill(status=503, content_type="application/json", body=json.dumps({"ok": False, "status": 503, "error": "held"}))

    large_ui.page.route("**/nodes-stats/quarantine", hold)
    large_ui.panel.get_by_test_id("usage-stats-quarantine-selected").click()
    confirm = large_ui.page.locator("[role='dialog'][aria-labelledby='global-prompt']")
    expect(confirm).to_contain_text("2 files (2 B)")
    with large_ui.page.expect_response("**/nodes-stats/quarantine"):
        confirm.locator("button[aria-label='Confirm'], button:has-text('Confirm')").first.click()  # the two frontends' dialogs
    assert sent and sorted((m["model_type"], m["model_name"]) for m in sent[0]["models"]) == [
        ("controlnet", "set3/controlnet_02999.safetensors"), ("vae", first)], sent


def test_a_page_load_reads_each_config_once(browser, server):
    requests = []
    hear = lambda page: page.on("request", lambda r: "/nodes-stats/" in r.url and requests.append(route_of(r.url)))  # noqa: E731
    with page_at(browser, server.url, before_load=hear) as ui:  # the settings dialog syncs with the server at load
        ui.open()
        server.flush()
        ui.page.evaluate("() => 0")  # the page's requests so far are reported
    assert requests.count("unload/config") == 1, requests
    assert requests.count("config") == 2, requests  # the settings' one read, and the panel's header
