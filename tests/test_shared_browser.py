"""The shared store in the panel, on both frontends: a line saying how many machines report and which fell
silent, and saying plainly when the shared store is unreachable or a read of it failed (nothing is suggested
for removal then); a machine picker saying when each machine last reported.
Real ComfyUI, real PostgreSQL, real headless Chromium."""

from __future__ import annotations

import re
import time

import psycopg
import pytest
from browser_helpers import frontend_args, page_at, seed_base
from comfyui import ComfyServer, place_file, until
from playwright.sync_api import expect

from usage_stats.recording.shared import NAME_VARIABLE, URL_VARIABLE

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory, frontend, postgres):
    env = {URL_VARIABLE: postgres.create_database(), NAME_VARIABLE: "studio-1"}
    with ComfyServer(seed_base(tmp_path_factory.mktemp(f"shared-{frontend}")), frontend_args(frontend), env) as running:
        until(lambda: running.get("/nodes-stats/shared")["reachable"], what="the first delivery", server=running)
        yield running


@pytest.fixture
def ui(browser, server):
    with page_at(browser, server.url) as page:
        yield page


def test_the_panel_says_how_many_machines_report_and_when_the_shared_store_is_unreachable(ui, server, postgres):
    ui.open()
    line = ui.page.get_by_test_id("usage-stats-fleet")
    expect(line).to_have_text("Shared store: 1 machine")
    expect(line).to_have_attribute("data-reachable", "true")
    postgres.stop()
    try:
        until(lambda: not server.get("/nodes-stats/shared")["reachable"], what="the outage noticed", server=server)
        ui.refresh()
        expect(line).to_contain_text("Shared store unreachable: nothing is suggested for removal")
        expect(line).to_have_attribute("data-reachable", "false")
    finally:
        postgres.resume()
    until(lambda: server.get("/nodes-stats/shared")["reachable"], what="the shared store back", server=server)
    ui.refresh()
    expect(line).to_have_text("Shared store: 1 machine")


def test_the_panel_says_when_a_read_of_the_shared_store_failed(ui, server):
    def read_error():
        server.get("/nodes-stats/models")  # answered all the same (200), from this machine's statistics if need be
        return server.get("/nodes-stats/shared")["error"]

    with psycopg.connect(server.env[URL_VARIABLE], autocommit=True) as db:
        db.execute("ALTER TABLE model_inventory RENAME TO moved_away")  # every model report reads it
        try:
            until(read_error, what="the failed read in the status", server=server)
            ui.open()
            line = ui.page.get_by_test_id("usage-stats-fleet")
            expect(line).to_have_text("Reading the shared store failed: views fall back to this machine's statistics, "
                                      "and nothing in them is suggested for removal")
            expect(line).to_have_attribute("title", re.compile("model_inventory"))
            expect(line).to_have_attribute("data-reachable", "true")  # it answers: not an outage
        finally:
            db.execute("ALTER TABLE moved_away RENAME TO model_inventory")
    until(lambda: not read_error(), what="the shared store read again", server=server)
    ui.refresh()
    expect(line).to_have_text("Shared store: 1 machine")


def test_the_machine_picker_counts_one_machines_prompts_and_says_when_each_last_reported(ui, server):
    url = server.env[URL_VARIABLE]
    assert server.queue_prompt({"1": {"class_type": "DemoOutput", "inputs": {"text": "hi"}}})[0] == 200
    with psycopg.connect(url) as db:  # a second machine of the fleet, which ran nothing and last reported 5 min ago
        db.execute("INSERT INTO machines (id, name, stream, last_report) VALUES ('gpu-2', 'gpu-2', 's', %s) "
                   "ON CONFLICT DO NOTHING", (int(time.time()) - 300,))
    until(lambda: server.get("/nodes-stats/summary")["prompts"] >= 1, what="the prompt in the fleet", server=server)
    ui.open()
    overview = ui.page.get_by_test_id("usage-stats-overview")
    prompts = overview.locator("[data-stat='Prompts'] dd")
    expect(prompts).not_to_have_text("0")
    picker = ui.page.get_by_test_id("usage-stats-machine")
    expect(picker.locator("option")).to_have_text(
        ["All machines", "gpu-2 · last report 5 minutes ago", re.compile(r"^studio-1 · last report (just now|\d+ seconds? ago)$")]
    )
    picker.select_option(value="gpu-2")
    ui.wait_ready()
    expect(prompts).to_have_text("0")
    assert "machine=gpu-2" in ui.page.get_by_test_id("usage-stats-export").get_attribute("href")
    picker.select_option(value="")
    ui.wait_ready()
    expect(prompts).not_to_have_text("0")


def test_the_duplicates_tab_says_a_shared_store_has_every_file_hashed(ui):
    ui.open()
    ui.show("duplicates")
    expect(ui.panel.get_by_test_id("usage-stats-duplicates-summary")).to_contain_text("Every model file is read once")


def test_model_and_pack_rows_say_which_machines_of_the_fleet_used_them(ui, server):
    """Runs last: it adds a machine to the fleet the picker test counts."""
    place_file(server.models / "checkpoints" / "fleet-used.safetensors")
    an_hour_ago = int(time.time()) - 3600
    with psycopg.connect(server.env[URL_VARIABLE]) as db:  # gpu-3 used the file an hour ago, and reports
        db.execute("INSERT INTO machines (id, name, stream, last_report) VALUES ('gpu-3', 'gpu-3', 's', %s)",
                   (int(time.time()),))
        db.execute("INSERT INTO model_usage (machine, model_type, model_name, count, first_seen, last_seen) "
                   "VALUES ('gpu-3', 'checkpoints', 'fleet-used.safetensors', 2, %s, %s)", (an_hour_ago, an_hour_ago))
        db.execute("INSERT INTO node_usage (machine, class_type, package, count, first_seen, last_seen) "
                   "VALUES ('gpu-3', 'IdleOutput', 'usage-stats-idle-pack', 1, %s, %s)", (an_hour_ago, an_hour_ago))
    until(lambda: (row := server.model("checkpoints", "fleet-used.safetensors")) and row["machines"],
          what="the fleet's use in the report", server=server)
    ui.open()
    ui.show("models")
    ui.search("fleet-used")
    model_row = ui.model_rows().filter(has_text="fleet-used")
    used_on = model_row.get_by_test_id("usage-stats-used-on")
    expect(used_on).to_have_text("on gpu-3")
    tooltip = re.compile(r"^gpu-3: last used 1 hour ago, last report (just now|\d+ seconds? ago)$")
    expect(used_on).to_have_attribute("title", tooltip)
    edges = model_row.evaluate(  # at the sidebar's default width nothing is pushed out of the row
        """row => [...row.querySelectorAll("[data-testid=usage-stats-used-on], [data-testid=usage-stats-keep]")]
                  .map((e) => e.getBoundingClientRect().right - row.getBoundingClientRect().right)""")
    assert len(edges) == 2 and max(edges) <= 0, edges
    ui.show("nodes")
    ui.search("")
    expect(ui.package_row("usage-stats-idle-pack").get_by_test_id("usage-stats-used-on")).to_have_text("on gpu-3")
