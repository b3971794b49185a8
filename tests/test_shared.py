"""Reporting into a shared store: the shipper delivers each prompt once, outages and restarts lose nothing,
a bad URL is one log line with no password in it, and missing evidence keeps files out of safe_to_remove.

The writer, the mappers and the fake ComfyUI are the real ones of the unit tests; the shared store is a
real PostgreSQL (tests/postgres.py).
"""

from __future__ import annotations

import logging

import pytest
from comfyui import place_file, until

from usage_stats.domain.values import DAY
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
    until(lambda: len(fleet.machines()) == 2, what="both machines reporting")
    b.stop()  # b falls silent; a carries on reporting
    clock["now"] = NOW
    until(lambda: a.shipper.last_delivery == NOW, what="a heartbeat at the new time")
    row = old_unused_model_report(a, a.shipper.fleet)["a.safetensors"]
    assert row["status"] == "consider_removing"
    assert any("no report for over 24 h from b" in reason for reason in row["reasons"]), row["reasons"]


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
