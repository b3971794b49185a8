"""The shared store (PostgreSQL): what machines deliver reads back as one fleet, and each delivery counts once.

These run against a real PostgreSQL server started by the tests (tests/postgres.py).
"""

from __future__ import annotations

import json

import pytest
from conftest import NOW

from usage_stats.domain.values import DAY, Outcome, PromptUse
from usage_stats.store import outbox
from usage_stats.store.postgres import FleetStore
from usage_stats.tracker import UsageStore

CKPT = ("checkpoints", "sd15.safetensors")
LORA = ("loras", "detail.safetensors")


def use(ts=NOW, models=(CKPT,), nodes=None, user="default", accepted=True, referenced=()):
    return PromptUse(ts, nodes or {"CheckpointLoaderSimple": "__builtin__"}, frozenset(models), user, accepted,
                     frozenset(referenced))


@pytest.fixture
def fleet(shared_url):
    store = FleetStore(shared_url, clock=lambda: NOW)
    yield store
    store.close()


def local_store(tmp_path, name: str) -> UsageStore:
    return UsageStore(str(tmp_path / f"{name}.db"), clock=lambda: NOW, machine=name)


def ship(local: UsageStore, fleet: FleetStore, machine: str) -> int:
    """Deliver everything `local` owes, as a machine's shipper does; returns the last seq applied."""
    last = fleet.deliver(machine, machine.upper(), local.outbox_stream, local.owed(10_000))
    local.delivered(last)
    return last


def test_a_local_write_owes_the_shared_store_in_the_same_transaction(tmp_path):
    local = local_store(tmp_path, "a")
    assert [op for _, op, _ in local.owed(10)] == [outbox.SNAPSHOT]  # joining: what was recorded before
    row_ids = local.record([use()])
    owed = local.owed(10)
    assert [op for _, op, _ in owed] == [outbox.SNAPSHOT, outbox.RECORD]
    body = json.loads(owed[1][2])
    assert (body["first_id"], len(body["log"])) == (row_ids[0], 1)


def test_a_store_without_a_shared_store_owes_nothing(store):
    store.record([use()])
    assert store.owed(10) == []


def test_what_two_machines_deliver_reads_as_one_fleet(tmp_path, fleet):
    a, b = local_store(tmp_path, "a"), local_store(tmp_path, "b")
    a.record([use(), use(ts=NOW + 60)])
    b.record([use(models=(CKPT, LORA), user="bob")])
    ship(a, fleet, "a")
    ship(b, fleet, "b")

    rows = {(t, n): (count, first, last) for t, n, count, first, last in fleet.model_rows()}
    assert rows == {CKPT: (3, NOW, NOW + 60), LORA: (1, NOW, NOW)}
    assert fleet.prompt_count() == 3
    assert fleet.totals("model")["loras/detail.safetensors"].prompts == 1
    assert fleet.users() == ["bob", "default"]
    assert [(m, name) for m, name, *_ in fleet.machines()] == [("a", "A"), ("b", "B")]


def test_a_row_delivered_twice_counts_once(tmp_path, fleet):
    local = local_store(tmp_path, "a")
    local.record([use()])
    owed = local.owed(10)
    fleet.deliver("a", "A", local.outbox_stream, owed)
    again = fleet.deliver("a", "A", local.outbox_stream, owed)  # the first answer was lost: the shipper sends it again
    assert fleet.prompt_count() == 1
    assert again == owed[-1][0]


def test_the_fleet_reads_as_the_local_store_reads_when_one_machine_reports(tmp_path, fleet):
    """Every read the reports make gives the same answer from the shared store as from the machine's own."""
    local = local_store(tmp_path, "a")
    ids = local.record([use(models=(CKPT, LORA), referenced=(("loras", "off.safetensors"),)),
                        use(ts=NOW + DAY, user="bob"), use(ts=NOW + 5, accepted=False)])
    local.record_outcomes([Outcome(use(models=(CKPT, LORA)), ids[0], "success", 1200, 2, frozenset({("vae", "x.pt")}))])
    local.note_installed(packages=["pack-a"], models=[CKPT, LORA])
    local.record_load(*CKPT, seconds=1.5, at=NOW + 10)
    ship(local, fleet, "a")

    for read in ("node_rows", "witness_rows", "reference_rows", "package_first_installed", "model_first_installed",
                 "prompt_count", "daily_rows", "first_day", "execution_times", "cached_nodes", "users", "load_rows",
                 "tracking_since"):
        assert _comparable(getattr(fleet, read)()) == _comparable(getattr(local, read)()), read
    assert sorted(fleet.model_rows()) == sorted(local.model_rows())
    for kind in ("prompt", "node", "package", "model"):
        assert fleet.totals(kind) == local.totals(kind), kind
    assert fleet.outcomes_since(NOW) == local.outcomes_since(NOW)
    assert fleet.models_used_since(NOW) == local.models_used_since(NOW)


def _comparable(value):
    return sorted(map(tuple, value)) if isinstance(value, list) and value and isinstance(value[0], (list, tuple)) else value


def test_a_snapshot_replaces_the_machines_rows_and_may_come_again(tmp_path, fleet, monkeypatch):
    """An outbox past its bound folds into one snapshot of every total: bounded, and nothing is lost."""
    import usage_stats.tracker as tracker

    monkeypatch.setattr(tracker, "OUTBOX_LIMIT", 3)
    local = local_store(tmp_path, "a")
    for i in range(10):
        local.record([use(ts=NOW + i)])
    assert len(local.owed(100)) <= 4
    ship(local, fleet, "a")
    ship(local, fleet, "a")
    assert fleet.prompt_count() == 10
    assert fleet.model_rows() == [(*CKPT, 10, NOW, NOW + 9)]


def test_a_reset_on_one_machine_keeps_the_others_evidence(tmp_path, fleet):
    a, b = local_store(tmp_path, "a"), local_store(tmp_path, "b")
    a.record([use()])
    b.record([use(models=(LORA,))])
    a.reset()
    ship(a, fleet, "a")
    ship(b, fleet, "b")
    assert [(t, n) for t, n, *_ in fleet.model_rows()] == [LORA]


def test_rows_owed_after_everything_was_delivered_still_count(tmp_path, fleet):
    """Sequence numbers are never used twice, even once the outbox was emptied (AUTOINCREMENT)."""
    local = local_store(tmp_path, "a")
    local.record([use()])
    ship(local, fleet, "a")
    assert local.owed(10) == []
    local.record([use(ts=NOW + 1)])
    ship(local, fleet, "a")
    assert fleet.prompt_count() == 2


def test_a_replaced_local_database_keeps_what_the_old_one_delivered_as_a_retired_machine(tmp_path, fleet):
    """A database moved aside as corrupt must not take the machine's past use out of the fleet's evidence."""
    old = local_store(tmp_path, "old")
    old.record([use(), use()])
    old.note_installed(models=[CKPT])
    ship(old, fleet, "a")
    new = local_store(tmp_path, "new")  # the same machine, its database moved aside: a new outbox stream
    new.record([use(models=(LORA,))])
    ship(new, fleet, "a")
    assert sorted((t, n, count) for t, n, count, *_ in fleet.model_rows()) == [(*CKPT, 2), (*LORA, 1)]
    machines = {m: (name, retired) for m, name, _, retired in fleet.machines()}
    assert machines == {"a": ("A", False), f"a:{old.outbox_stream}": ("A (earlier database)", True)}
    assert fleet.incomplete_evidence(stale_before=NOW + DAY) == {}  # the retired identity lists CKPT, never silent
    new.record([use(models=(LORA,))])
    ship(new, fleet, "a")  # later deliveries of the new stream count as usual
    assert sorted((t, n, count) for t, n, count, *_ in fleet.model_rows()) == [(*CKPT, 2), (*LORA, 2)]


def test_files_listed_by_a_silent_machine_have_incomplete_evidence(tmp_path, shared_url):
    clock = {"now": NOW}
    fleet = FleetStore(shared_url, clock=lambda: clock["now"])
    a, b = local_store(tmp_path, "a"), local_store(tmp_path, "b")
    a.note_installed(models=[CKPT])
    b.note_installed(models=[CKPT, LORA])
    ship(a, fleet, "a")
    ship(b, fleet, "b")
    clock["now"] = NOW + 3600
    fleet.deliver("a", "A", a.outbox_stream, [])  # a heartbeat: a still reports, b fell silent
    assert fleet.incomplete_evidence(stale_before=NOW + 60) == {CKPT: ["B"], LORA: ["B"]}
    assert fleet.incomplete_evidence(stale_before=NOW - 60) == {}
    fleet.close()


def test_a_view_of_one_machine_counts_its_prompts_only(tmp_path, fleet):
    from usage_stats.domain.values import View

    a, b = local_store(tmp_path, "a"), local_store(tmp_path, "b")
    a.record([use(), use()])
    b.record([use()])
    ship(a, fleet, "a")
    ship(b, fleet, "b")
    assert fleet.totals("model", View(machine="b"))["checkpoints/sd15.safetensors"].prompts == 1
    assert fleet.totals("model", View(machine="a"))["checkpoints/sd15.safetensors"].prompts == 2
    assert a.totals("model", View(machine="a"))["checkpoints/sd15.safetensors"].prompts == 2  # its own view
    assert a.totals("model", View(machine="b")) == {}  # another machine's prompts are not in a's database
    used_on = fleet.model_machines()[CKPT]
    assert [(machine, name) for machine, name, _, _ in used_on] == [("a", "A"), ("b", "B")]


def test_a_pack_is_used_on_the_machines_that_ran_its_nodes(tmp_path, fleet):
    a, b = local_store(tmp_path, "a"), local_store(tmp_path, "b")
    a.record([use(nodes={"Upscale": "upscale-pack", "KSampler": "__builtin__"})])
    b.record([use(ts=NOW + 60, nodes={"Upscale": "upscale-pack", "Face": "face-pack"})])
    ship(a, fleet, "a")
    ship(b, fleet, "b")
    used_on = {pack: [(machine, last) for machine, _, last, _ in machines]
               for pack, machines in fleet.package_machines().items()}
    assert used_on == {"upscale-pack": [("b", NOW + 60), ("a", NOW)], "face-pack": [("b", NOW + 60)],
                       "__builtin__": [("a", NOW)]}


def test_one_content_under_names_no_machine_lists_both_of_is_one_file(tmp_path, fleet):
    """A mounts the shared volume as its checkpoints folder, B as a subfolder: one file, two names. Two names
    of one content that one machine lists both of are two copies there (duplicates), and stay apart."""
    mounted, copy = ("checkpoints", "volume/sd15.safetensors"), ("checkpoints", "sd15 copy.safetensors")
    a, b = local_store(tmp_path, "a"), local_store(tmp_path, "b")
    a.note_installed(models=[CKPT, copy])
    a.save_hashes([], [(*CKPT, "d1"), (*copy, "d1")])
    b.note_installed(models=[mounted])
    b.save_hashes([], [(*mounted, "d1"), (*LORA, "d2")])
    ship(a, fleet, "a")
    ship(b, fleet, "b")
    assert fleet.content_twins() == {CKPT: {mounted}, copy: {mounted}, mounted: {CKPT, copy}}


def test_hashes_found_before_a_machine_joined_reach_the_shared_store_with_its_snapshot(tmp_path, fleet):
    path = str(tmp_path / "a.db")
    alone = UsageStore(path, clock=lambda: NOW)
    alone.save_hashes([], [(*CKPT, "d1")])
    alone.save_hashes([], [(*CKPT, "d1")])  # the same again: nothing changed, nothing owed
    alone.close()
    joined = UsageStore(path, clock=lambda: NOW, machine="a")
    assert [op for _, op, _ in joined.owed(10)] == [outbox.SNAPSHOT]
    joined.save_hashes([], [(*CKPT, "d1")])
    assert [op for _, op, _ in joined.owed(10)] == [outbox.SNAPSHOT]
    joined.save_hashes([], [(*CKPT, "d9")])  # the file was replaced under its name
    assert [op for _, op, _ in joined.owed(10)] == [outbox.SNAPSHOT, outbox.DIGESTS]
    ship(joined, fleet, "a")
    b = local_store(tmp_path, "b")
    b.save_hashes([], [("checkpoints", "other name.safetensors", "d9")])
    ship(b, fleet, "b")
    assert fleet.content_twins()[CKPT] == {("checkpoints", "other name.safetensors")}
    joined.reset()  # a reset forgets statistics, not what the files are
    ship(joined, fleet, "a")
    assert CKPT in fleet.content_twins()


def test_a_read_while_the_server_is_down_fails_as_a_lost_connection_in_a_thread_that_never_read(shared_url, postgres):
    """Reports read in executor threads, each with its own connection: one that never connected must fail the
    way an outage does, or the outage is taken for a bug (recording/shared.connection_lost)."""
    import threading

    from usage_stats.recording.shared import connection_lost

    fleet = FleetStore(shared_url)
    failures = []

    def read() -> None:
        try:
            fleet.machines()
        except Exception as error:
            failures.append(error)

    postgres.stop()
    try:
        thread = threading.Thread(target=read)
        thread.start()
        thread.join(30)
    finally:
        postgres.resume()
    [error] = failures
    assert connection_lost(error), repr(error)
    fleet.close()
