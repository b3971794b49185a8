"""Reporting into a shared store: the shipper delivers each prompt once, outages and restarts lose nothing,
a bad URL is one log line with no password in it, and missing evidence keeps files out of safe_to_remove.

The writer, the mappers and the fake ComfyUI are the real ones of the unit tests; the shared store is a
real PostgreSQL (tests/postgres.py).
"""

from __future__ import annotations

import logging

import psycopg
import pytest
from api_app import AppClient
from comfyui import place_file, until

from usage_stats.domain.values import DAY, PromptUse
from usage_stats.evidence.source import SHARED_STORE_UNREACHABLE
from usage_stats.mapper import ModelMapper, PackageMapper
from usage_stats.recording import shared
from usage_stats.recording.shared import SharedSettings, Shipper, redacted, shared_settings
from usage_stats.recording.writer import Writer
from usage_stats.reports.service import Reports
from usage_stats.store.postgres import FleetStore
from usage_stats.tracker import UsageStore

NOW = 1_800_000_000


def prompt_using(ckpt="a.safetensors"):
    return {"prompt": {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}}}}


class Machine:
    """One ComfyUI machine as the extension wires it: a writer over its own database, and its shipper."""

    def __init__(self, base, url: str, name: str, clock=None):
        clock = clock or (lambda: NOW)
        path = str(base / f"{name}.db")
        self.writer = Writer(lambda: UsageStore(path, clock, machine=f"id-{name}"), PackageMapper(own_pack="usage-stats"),
                             ModelMapper(), clock=clock)
        self.settings = SharedSettings(url, f"id-{name}", name)
        self.shipper = Shipper(self.writer, self.settings, lambda url: FleetStore(url, clock), clock)

    def start(self, ship: bool = True) -> Machine:
        self.writer.start()
        assert self.writer.wait_ready(5) is not None
        if ship:
            self.shipper.start()
        return self

    def prompts(self, count: int, ckpt="a.safetensors") -> None:
        for _ in range(count):
            self.writer.on_prompt(prompt_using(ckpt))
        self.writer.flush()

    def stop(self) -> None:
        self.shipper.stop()
        self.writer.stop()


@pytest.fixture
def machines(fake_comfy, shared_url):
    place_file(fake_comfy.models / "checkpoints" / "a.safetensors")
    made: list[Machine] = []

    def make(name="a", url=shared_url, **kwargs) -> Machine:
        made.append(Machine(fake_comfy.base, url, name, **kwargs))
        return made[-1]

    yield make
    for machine in made:
        machine.stop()


@pytest.fixture
def fleet(shared_url):
    store = FleetStore(shared_url)
    yield store
    store.close()


def all_delivered(machine: Machine, fleet: FleetStore, prompts: int):
    return lambda: machine.writer.store.owed_count() == 0 and fleet.prompt_count() == prompts


def test_every_prompt_reaches_the_shared_store_once(machines, fleet):
    a = machines("a").start()
    a.prompts(25)
    until(all_delivered(a, fleet, 25), what="all 25 prompts delivered")
    assert a.shipper.status()["reachable"] is True
    assert [name for _, name, *_ in fleet.machines()] == ["a"]


def test_an_outage_of_the_shared_store_loses_no_prompt_and_counts_none_twice(machines, fleet, postgres):
    a = machines("a").start()
    a.prompts(10)
    until(all_delivered(a, fleet, 10), what="the first 10 delivered")
    postgres.stop()
    try:
        a.prompts(30)  # ComfyUI carries on: the hook only enqueues, the writer writes locally
        until(lambda: a.shipper.error, what="the shipper noticing the outage")
        assert a.writer.store.prompt_count() == 40
    finally:
        postgres.resume()
    until(all_delivered(a, fleet, 40), timeout=60, what="the outbox delivered after the outage")


def test_a_restart_delivers_what_the_outbox_held(machines, fleet):
    before = machines("a").start(ship=False)  # the shared store was unreachable the whole run
    before.prompts(12)
    before.stop()
    after = machines("a").start()  # ComfyUI restarted: the same database, its outbox intact
    until(all_delivered(after, fleet, 12), what="the restart's delivery")


def test_a_wrong_password_is_one_log_line_that_never_shows_the_password(machines, postgres, caplog):
    url = postgres.url(password="wrong-secret-42")
    a = machines("a", url=url)
    with caplog.at_level(logging.WARNING, logger="usage_stats"):
        a.start()
        a.prompts(3)
        until(lambda: a.shipper.error != shared.NOT_CONNECTED, what="the first failed delivery")
        status = a.shipper.describe()
    lines = [r.getMessage() for r in caplog.records if "shared store" in r.getMessage()]
    assert len(lines) == 1 and "unreachable" in lines[0]
    assert "wrong-secret-42" not in lines[0] + repr(status)
    assert status["reachable"] is False and status["url"] == redacted(url) and ":***@" in status["url"]
    assert a.writer.store.prompt_count() == 3  # recorded locally all the same


def test_the_shared_store_comes_from_the_environment_or_the_settings_file(tmp_path):
    assert shared_settings(str(tmp_path), environ={}) is None  # the default: SQLite only
    (tmp_path / shared.SETTINGS_FILE).write_text('{"url": "postgresql://u:pw@db/stats", "machine_name": "gpu-1"}')
    from_file = shared_settings(str(tmp_path), environ={})
    assert (from_file.url, from_file.machine_name, from_file.stale_hours) == ("postgresql://u:pw@db/stats", "gpu-1", 24)
    from_env = shared_settings(str(tmp_path), environ={shared.URL_VARIABLE: "postgresql://other/db"})
    assert from_env.url == "postgresql://other/db" and from_env.machine_id == from_file.machine_id  # stable id


# --------------------------------------------------------------------------- missing evidence keeps files


def old_unused_model_report(machine: Machine, store) -> dict:
    """The model report of `store`, read as the machine's reports read it, for a file installed 90 days ago."""
    reports = Reports(machine.writer.packages, machine.writer.models, machine.writer.thresholds, shared=machine.shipper)
    (section,) = reports.model_report(store)
    return {m["model_name"]: m for m in section["models"]}


def test_while_the_shared_store_is_unreachable_no_file_is_safe_to_remove(machines, postgres):
    clock = {"now": NOW - 90 * DAY}
    a = machines("a", url=postgres.url(password="wrong"), clock=lambda: clock["now"]).start()
    a.writer.flush()
    clock["now"] = NOW
    row = old_unused_model_report(a, a.writer.store)["a.safetensors"]
    assert row["status"] == "consider_removing"
    assert any("shared store is unreachable" in reason for reason in row["reasons"])


def test_files_a_silent_machine_lists_are_never_safe_to_remove(machines, fleet):
    clock = {"now": NOW - 90 * DAY}
    a = machines("a", clock=lambda: clock["now"]).start()
    b = machines("b", clock=lambda: clock["now"]).start()
    listing = ("checkpoints", "a.safetensors")
    until(lambda: "b" in fleet.incomplete_evidence(stale_before=NOW).get(listing, ()), what="b's listing delivered")
    b.stop()  # b falls silent; a carries on reporting
    clock["now"] = NOW
    until(lambda: a.shipper.last_delivery == NOW, what="a heartbeat at the new time")
    row = old_unused_model_report(a, a.shipper.fleet)["a.safetensors"]
    assert row["status"] == "consider_removing"
    assert any("no report for over 24 h from b" in reason for reason in row["reasons"]), row["reasons"]


def test_a_file_another_machine_lists_under_another_name_shares_its_silence_and_its_use(machines, shared_url, tmp_path):
    """B sees A's a.safetensors as mnt/a.safetensors (another mount point); their hashes say it is one file."""
    clock = {"now": NOW - 90 * DAY}
    a = machines("a", clock=lambda: clock["now"]).start()
    a.writer.submit(lambda store: store.save_hashes([], [("checkpoints", "a.safetensors", "d1")])).result(5)
    b_view = ("checkpoints", "mnt/a.safetensors")
    b = UsageStore(str(tmp_path / "b.db"), clock=lambda: clock["now"], machine="id-b")
    b.note_installed(models=[b_view])
    b.save_hashes([], [(*b_view, "d1")])
    b_fleet = FleetStore(shared_url, clock=lambda: clock["now"])
    b.delivered(b_fleet.deliver("id-b", "b", b.outbox_stream, b.owed(100)))
    clock["now"] = NOW  # b falls silent; a carries on reporting
    until(lambda: a.shipper.last_delivery == NOW and a.writer.store.owed_count() == 0, what="a's hashes delivered")
    row = old_unused_model_report(a, a.shipper.fleet)["a.safetensors"]
    assert row["status"] == "consider_removing" and "from b" in row["evidence_incomplete"], row

    b.record([PromptUse(NOW - DAY, {"CheckpointLoaderSimple": "__builtin__"}, frozenset([b_view]), "default", True,
                        frozenset())])
    b.delivered(b_fleet.deliver("id-b", "b", b.outbox_stream, b.owed(100)))
    row = old_unused_model_report(a, a.shipper.fleet)["a.safetensors"]
    assert row["status"] == "used" and [m["name"] for m in row["machines"]] == ["b"]
    assert "last used as checkpoints/mnt/a.safetensors, the same content on another machine" in row["reasons"]
    b_fleet.close()


def test_while_the_shared_store_is_unreachable_the_caps_are_built_once_per_listing(machines, fake_comfy):
    a = machines("a", url="postgresql://nobody@127.0.0.1:1/none").start(ship=False)
    local, models = a.writer.store, a.writer.models
    caps, _ = a.shipper.evidence_gaps(local, models.installed())
    assert caps == {("checkpoints", "a.safetensors"): SHARED_STORE_UNREACHABLE}
    assert a.shipper.evidence_gaps(local, models.installed())[0] is caps  # every report request: no rebuild
    place_file(fake_comfy.models / "checkpoints" / "b.safetensors")
    after, _ = a.shipper.evidence_gaps(local, models.installed())
    assert after == {("checkpoints", n): SHARED_STORE_UNREACHABLE for n in ("a.safetensors", "b.safetensors")}


# --------------------------------------------------------------------------- what the routes read


@pytest.fixture
def app_of(tmp_path):
    """The routes of a machine, wired to read the fleet through its shipper, as __init__.py wires them."""
    made: list[AppClient] = []

    def make(machine: Machine) -> AppClient:
        made.append(AppClient(machine.writer, str(tmp_path / "decisions"), shared=machine.shipper))
        return made[-1]

    yield make
    for client in made:
        client.close()


def bob_ran_a_prompt_on(machine: Machine, fleet: FleetStore) -> None:
    """User bob ran one prompt, on `machine` only, and the fleet has it."""
    use = PromptUse(NOW, {"CheckpointLoaderSimple": "__builtin__"}, frozenset({("checkpoints", "a.safetensors")}), "bob")
    machine.writer.submit(lambda store: store.record([use])).result(5)
    until(all_delivered(machine, fleet, 1), what="bob's prompt in the fleet")


def test_views_by_user_the_users_and_the_last_hour_are_the_fleet_s(machines, fleet, app_of):
    a, b = machines("a").start(), machines("b").start()
    bob_ran_a_prompt_on(b, fleet)
    until(lambda: a.shipper.reachable, what="a reporting")
    app = app_of(a)

    status, summary = app.json("GET", "/nodes-stats/summary?user=bob")
    assert status == 200 and summary["prompts"] == 1, summary  # bob never ran anything on a
    status, answer = app.json("GET", "/nodes-stats/status")
    assert {"id": "bob", "name": "bob"} in answer["users"]
    assert answer["prompts_recorded"] == 0  # this machine's own recording state
    status, live = app.json("GET", "/nodes-stats/realtime")
    assert (live["prompts"], [m["model_name"] for m in live["models"]]) == (1, ["a.safetensors"])
    assert set(live) == {"since", "prompts", "successes", "failures", "interrupted", "rejected", "queue", "models"}

    status, refused = app.json("GET", "/nodes-stats/summary?user=carol")
    assert status == 400 and "unknown user 'carol'" in refused["error"]


def errors_logged(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR and "shared store" in r.getMessage()]


def capped_rows(app: AppClient) -> dict[str, dict]:
    status, sections = app.json("GET", "/nodes-stats/models")
    assert status == 200, sections
    return {m["model_name"]: m for section in sections for m in section["models"]}


def test_a_broken_read_of_the_shared_store_is_logged_as_a_bug_not_called_an_outage(machines, fleet, app_of, caplog):
    clock = {"now": NOW - 90 * DAY}
    a = machines("a", clock=lambda: clock["now"]).start()
    until(lambda: a.shipper.reachable, what="a reporting")
    clock["now"] = NOW
    until(lambda: a.shipper.last_delivery == NOW, what="a heartbeat at the new time")
    app = app_of(a)
    with psycopg.connect(fleet.url, autocommit=True) as db:
        db.execute("ALTER TABLE model_loads RENAME TO moved_away")  # the model report's last read now fails
        with caplog.at_level(logging.WARNING, logger="usage_stats"):
            row = capped_rows(app)["a.safetensors"]
            capped_rows(app)  # the same failure again: logged once
            status, described = app.json("GET", "/nodes-stats/shared")
        db.execute("ALTER TABLE moved_away RENAME TO model_loads")
    assert row["status"] == "consider_removing"  # the local report, capped: never safe_to_remove
    assert row["evidence_incomplete"] == "reading the shared store failed, so other machines' use of this file is unknown"
    (logged,) = errors_logged(caplog)
    assert logged.getMessage().startswith("[usage-stats] reading the shared store failed (model_report: ")
    assert isinstance(logged.exc_info[1], psycopg.errors.UndefinedTable)  # with its traceback
    assert described["reachable"] is True and "model_loads" in described["error"]
    assert "unreachable" not in described["error"]

    assert capped_rows(app)["a.safetensors"]["status"] == "safe_to_remove"  # the fleet's answer again
    assert app.json("GET", "/nodes-stats/shared")[1]["error"] is None


def test_a_stopped_server_is_an_outage_not_a_bug(machines, app_of, postgres, caplog):
    a = machines("a").start(ship=False)
    a.shipper.ship_once(a.writer.store)  # delivered once, by hand: no shipper thread notices the outage first
    app = app_of(a)
    capped_rows(app)  # the reading thread's connection is open when the server stops
    postgres.stop()
    try:
        with caplog.at_level(logging.WARNING, logger="usage_stats"):
            row = capped_rows(app)["a.safetensors"]
            status, described = app.json("GET", "/nodes-stats/shared")
    finally:
        postgres.resume()
    assert row["evidence_incomplete"] == SHARED_STORE_UNREACHABLE[1][0]
    assert described["reachable"] is False and "is unreachable" in described["error"]
    assert errors_logged(caplog) == []  # an outage is one warning, never a traceback


def test_a_delivery_the_shared_store_cannot_apply_is_one_log_line_with_its_traceback(machines, fleet, shared_url, caplog):
    """Not an outage but a bug: reports read this machine's own statistics (capped) until it delivers again."""
    a = machines("a").start()
    until(lambda: a.shipper.reachable, what="the first delivery")
    with psycopg.connect(shared_url, autocommit=True) as db:
        db.execute("ALTER TABLE daily RENAME TO moved_away")  # every batch of prompts adds to it
        try:
            with caplog.at_level(logging.WARNING, logger="usage_stats"):
                a.prompts(3)
                until(lambda: a.shipper.error, what="the failed delivery")
                a.prompts(2)
                until(lambda: a.writer.store.prompt_count() == 5, what="recorded locally all the same")
            lines = [r for r in caplog.records if "shared store" in r.getMessage()]
            assert len(lines) == 1 and "delivering to the shared store" in lines[0].getMessage()
            assert lines[0].exc_info is not None and '"daily" does not exist' in lines[0].getMessage()
            assert a.shipper.reachable is False  # the fleet lacks a's latest use: reports cap every file
        finally:
            db.execute("ALTER TABLE moved_away RENAME TO daily")
    until(all_delivered(a, fleet, 5), timeout=60, what="everything delivered once it can be applied")


def test_the_fleets_evidence_gaps_are_read_again_when_a_machine_falls_silent_or_reports_again(machines, fleet):
    clock = {"now": NOW - 90 * DAY}
    a = machines("a", clock=lambda: clock["now"]).start()
    b = machines("b", clock=lambda: clock["now"]).start()
    until(lambda: len(fleet.machines()) == 2 and a.writer.store.owed_count() == b.writer.store.owed_count() == 0,
          what="both machines reporting, nothing owed")
    reading = a.shipper.fleet
    assert a.shipper.evidence_gaps(reading, {})[0] == {}
    b.stop()  # b falls silent: nothing is delivered, yet its files' evidence is now incomplete
    clock["now"] = NOW
    until(lambda: a.shipper.last_delivery == NOW, what="a heartbeat at the new time")
    gaps, key = a.shipper.evidence_gaps(reading, {})
    assert "from b" in gaps[("checkpoints", "a.safetensors")][1][0], gaps
    assert a.shipper.evidence_gaps(reading, {}) == (gaps, key)
    assert a.shipper.evidence_gaps(reading, {})[0] is gaps  # nothing changed: not read again
    b_again = machines("b", clock=lambda: clock["now"]).start()
    until(lambda: b_again.shipper.last_delivery == NOW, what="b reporting again")
    assert a.shipper.evidence_gaps(reading, {})[0] == {}
