"""Two real ComfyUI servers over one models folder, reporting into one real PostgreSQL: one fleet-wide answer.

Each server keeps its own SQLite database; the shared store is configured by the environment, as an
administrator would configure a fleet. Real ComfyUI, real PostgreSQL (tests/postgres.py), no fakes.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from comfyui import ComfyServer, place_file, prompt_using, until

from usage_stats.recording.shared import NAME_VARIABLE, URL_VARIABLE

pytestmark = pytest.mark.comfyui
DAY = 86_400


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, postgres):
    """Machines A and B: two ComfyUI servers whose models/ is one folder, reporting into one database."""
    url = postgres.create_database()
    base_a, base_b = tmp_path_factory.mktemp("machine-a"), tmp_path_factory.mktemp("machine-b")
    for name in ("only-b.safetensors", "nobody.safetensors", "often.safetensors", "daily-on-b.safetensors",
                 "unused.safetensors", "listed-by-d.safetensors"):  # before the start: listings are cached by mtime
        place_file(base_a / "models" / "checkpoints" / name)
    (base_b / "models").symlink_to(base_a / "models", target_is_directory=True)
    with ComfyServer(base_a, env={URL_VARIABLE: url, NAME_VARIABLE: "A"}) as a, \
            ComfyServer(base_b, env={URL_VARIABLE: url, NAME_VARIABLE: "B"}) as b:
        until(lambda: len(a.get("/nodes-stats/shared")["machines"]) == 2, what="both machines reporting", server=a)
        yield a, b, url


def model_row(server, name: str) -> dict:
    (section,) = server.get(f"/nodes-stats/models?type=checkpoints&q={name}")
    return section["models"][0]


def fleet_prompts(url: str) -> int:
    with psycopg.connect(url) as db:
        return db.execute("SELECT COALESCE(SUM(prompts), 0) FROM daily WHERE kind = 'prompt'").fetchone()[0]


def test_a_model_used_only_on_machine_b_is_used_in_machine_as_view(fleet):
    a, b, _ = fleet
    status, answer = b.queue_prompt(prompt_using("only-b.safetensors"))
    assert status == 200, answer
    row = until(lambda: (r := model_row(a, "only-b"))["status"] == "used" and r,
                what="A's view counting B's use", server=a)
    assert row["count"] == 1 and [m["name"] for m in row["machines"]] == ["B"]
    assert a.get("/nodes-stats/summary")["prompts"] == 1  # the summary counts the fleet's prompts too
    assert a.get("/nodes-stats/realtime")["prompts"] == 1  # and so does the last hour
    assert model_row(a, "nobody")["status"] != "used"
    ids = {m["name"]: m["id"] for m in a.get("/nodes-stats/shared")["machines"]}
    assert set(ids) == {"A", "B"}
    for machine, count in (("A", 0), ("B", 1)):  # a view of one machine counts its prompts only
        (section,) = a.get(f"/nodes-stats/models?type=checkpoints&q=only-b&machine={ids[machine]}")
        assert section["models"][0]["count"] == count, machine
    status, answer, _ = a.request("GET", "/nodes-stats/models?machine=nobody-knows")
    assert status == 400 and "unknown machine" in answer["error"]


def test_a_silent_machine_keeps_the_files_it_lists_out_of_safe_to_remove(fleet):
    a, _, url = fleet
    now = int(time.time())
    with psycopg.connect(url) as db:  # machine C listed nobody.safetensors 90 days ago and fell silent 2 days ago
        db.execute("INSERT INTO machines (id, name, stream, last_report) VALUES ('c', 'C', 's', %s)", (now - 2 * DAY,))
        db.execute("INSERT INTO model_inventory VALUES ('c', 'checkpoints', 'nobody.safetensors', %s)", (now - 90 * DAY,))
    row = until(lambda: (r := model_row(a, "nobody"))["status"] == "consider_removing" and r,
                what="the silent machine's cap", server=a)
    assert any("from C" in reason for reason in row["reasons"]), row["reasons"]
    with psycopg.connect(url) as db:  # C reports again: nothing else keeps the file
        db.execute("UPDATE machines SET last_report = %s WHERE id = 'c'", (int(time.time()),))
    until(lambda: model_row(a, "nobody")["status"] == "safe_to_remove", what="safe once C reports", server=a)


def test_an_outage_and_a_restart_lose_no_prompt_and_count_none_twice(fleet, postgres):
    a, _, url = fleet
    before = fleet_prompts(url)
    recorded = a.get("/nodes-stats/status")["prompts_recorded"]
    for _ in range(3):
        assert a.queue_prompt(prompt_using("often.safetensors"))[0] == 200
    until(lambda: fleet_prompts(url) == before + 3, what="the first prompts delivered", server=a)
    postgres.stop()
    try:
        for _ in range(5):  # ComfyUI carries on; the outbox holds what the shared store is owed
            assert a.queue_prompt(prompt_using("often.safetensors"))[0] == 200
        a.wait_recorded(recorded + 8)
        until(lambda: not a.get("/nodes-stats/shared")["reachable"], what="A noticing the outage", server=a)
        a.restart()  # ComfyUI restarted while the outbox held the batches
        assert a.get("/nodes-stats/shared")["owed"] > 0
    finally:
        postgres.resume()
    until(lambda: fleet_prompts(url) == before + 8 and a.get("/nodes-stats/shared")["owed"] == 0, timeout=60,
          what="the outbox delivered after the restart", server=a)


def test_a_wrong_password_is_one_log_line_and_comfyui_carries_on(make_server, tmp_path_factory, postgres):
    url = postgres.url(password="not-the-password-7")
    server = make_server(base=tmp_path_factory.mktemp("wrong"), env={URL_VARIABLE: url}).start()
    place_file(server.models / "checkpoints" / "x.safetensors")
    assert server.queue_prompt(prompt_using("x.safetensors"))[0] == 200
    server.wait_recorded(1)
    shared = until(lambda: (s := server.get("/nodes-stats/shared"))["error"] != "not connected yet" and s,
                   what="the first failed delivery", server=server)
    assert shared["reachable"] is False and ":***@" in shared["url"]
    lines = [line for line in server.log().splitlines() if "[usage-stats]" in line and "shared store" in line]
    assert len(lines) == 1 and "unreachable" in lines[0], lines
    assert "not-the-password-7" not in server.log() + repr(shared)
    row = server.get("/nodes-stats/models?type=checkpoints")[0]["models"][0]
    assert row["status"] == "used"  # recorded locally all the same


def quarantine(server, name: str):
    body = {"confirm": True, "models": [{"model_type": "checkpoints", "model_name": name}]}
    return server.request("POST", "/nodes-stats/quarantine", body, {"Origin": server.url})[:2]


def test_a_quarantine_on_a_is_refused_while_the_fleet_may_use_the_file_and_restorable_on_b(fleet):
    a, b, url = fleet
    assert b.queue_prompt(prompt_using("daily-on-b.safetensors"))[0] == 200
    until(lambda: model_row(a, "daily-on-b")["status"] == "used", what="A seeing B's use", server=a)
    status, answer = quarantine(a, "daily-on-b.safetensors")
    assert status == 409 and "in use on the fleet" in answer["error"], answer

    with psycopg.connect(url) as db:  # machine D lists a file and has been silent for two days
        db.execute("INSERT INTO machines (id, name, stream, last_report) VALUES ('d', 'D', 's', %s)",
                   (int(time.time()) - 2 * DAY,))
        db.execute("INSERT INTO model_inventory VALUES ('d', 'checkpoints', 'listed-by-d.safetensors', 0)")
    until(lambda: model_row(a, "listed-by-d")["evidence_incomplete"], what="D's silence reaching A", server=a)
    status, answer = quarantine(a, "listed-by-d.safetensors")
    assert status == 409 and "from D" in answer["error"], answer
    assert (a.models / "checkpoints" / "listed-by-d.safetensors").exists()

    status, answer = quarantine(a, "unused.safetensors")  # nobody uses it and every machine reports: allowed
    assert status == 200 and answer["refused"] == [], answer
    held = {item["model_name"]: item["id"] for item in b.get("/nodes-stats/quarantine")["items"]}
    assert "unused.safetensors" in held  # the quarantine lies on the shared volume: B sees it
    status, answer, _ = b.request("POST", "/nodes-stats/quarantine/restore",
                                  {"confirm": True, "ids": [held["unused.safetensors"]]}, {"Origin": b.url})
    assert status == 200, answer
    assert (a.models / "checkpoints" / "unused.safetensors").exists()
    recorded = until(lambda: (actions := a.get("/nodes-stats/shared")["actions"]) and len(actions) >= 2 and actions,
                     what="both actions in the shared store", server=a)
    assert [(x["machine"], x["action"], x["target"]) for x in recorded[:2]] == [
        ("B", "restore", "checkpoints/unused.safetensors"), ("A", "quarantine", "checkpoints/unused.safetensors")]


def test_a_file_two_machines_list_under_different_names_is_one_file_once_hashed(tmp_path_factory, postgres):
    """A mounts the shared volume as its checkpoints folder, B as a subfolder of its own: one file, two names.
    Once each machine's duplicate search has hashed it, B's use of its name keeps A's name in use."""
    url = postgres.create_database()
    volume = tmp_path_factory.mktemp("volume")
    place_file(volume / "mounted.safetensors")
    base_a, base_b = tmp_path_factory.mktemp("mount-a"), tmp_path_factory.mktemp("mount-b")
    (base_a / "models").mkdir()
    (base_a / "models" / "checkpoints").symlink_to(volume, target_is_directory=True)
    (base_b / "models" / "checkpoints").mkdir(parents=True)
    (base_b / "models" / "checkpoints" / "volume").symlink_to(volume, target_is_directory=True)
    with ComfyServer(base_a, env={URL_VARIABLE: url, NAME_VARIABLE: "A"}) as a, \
            ComfyServer(base_b, env={URL_VARIABLE: url, NAME_VARIABLE: "B"}) as b:
        for server in (a, b):  # one file each: with a shared store, a size nothing else has is hashed too
            status, started, _ = server.request("POST", "/nodes-stats/duplicates/scan", {}, {"Origin": server.url})
            assert status == 200 and started["every_file"] is True, started
            assert server.wait_job("/nodes-stats/duplicates")["result"]["files_hashed"] == 1
        assert b.queue_prompt(prompt_using("volume/mounted.safetensors"))[0] == 200

        def a_row():
            return next(m for m in a.get("/nodes-stats/models?type=checkpoints")[0]["models"]
                        if m["model_name"] == "mounted.safetensors")

        row = until(lambda: (r := a_row())["status"] == "used" and r, what="B's use reaching A's name", server=a)
        assert "last used as checkpoints/volume/mounted.safetensors, the same content on another machine" in row["reasons"]
        assert [m["name"] for m in row["machines"]] == ["B"]
        status, answer = quarantine(a, "mounted.safetensors")
        assert status == 409 and "in use on the fleet" in answer["error"], answer
        assert (volume / "mounted.safetensors").exists()
