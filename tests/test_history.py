"""Usage over time inside a real ComfyUI: what each prompt really was, per day, per user, exported, configured.

Prompts run nodes of tests/packs/OutcomePack, so a test decides whether a prompt succeeds, fails while it
runs, is interrupted, or is rejected by ComfyUI's validation, and checks that each is counted as what it was.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest
from comfyui import ComfyServer, copy_pack, place_file, until

pytestmark = pytest.mark.comfyui

PACKS = Path(__file__).parent / "packs"
HOSTILE_NAMES = [
    'comma, and "quotes".safetensors',
    "=SUM(1+1)*cmd.safetensors",
    "+plus.safetensors",
    "-minus.safetensors",
    "@at.safetensors",
    "'apostrophe.safetensors",
    "line\nbreak.safetensors",
    "ünïcødé 模型 😀.safetensors",
]


def wait(server: ComfyServer, seconds: float = 0.0, ckpt: str = "a.safetensors", node: str = "OutcomeWait") -> dict:
    return {"1": {"class_type": node, "inputs": {"seconds": seconds, "ckpt": ckpt}}}


def model_row(server: ComfyServer, name: str) -> dict:
    return server.model("checkpoints", name)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    comfy = ComfyServer(tmp_path_factory.mktemp("history"))
    for name in ["a.safetensors", "b.safetensors", "c.safetensors", "d.safetensors", *HOSTILE_NAMES]:
        place_file(comfy.models / "checkpoints" / name)
    place_file(comfy.models / "loras" / "style.safetensors")
    copy_pack(PACKS / "OutcomePack", comfy.custom_nodes)
    with comfy:
        yield comfy


def test_each_prompt_counts_as_what_it_was(server):
    assert server.queue_prompt(wait(server, 0.1, "a.safetensors"))[0] == 200
    assert server.queue_prompt(wait(server, 0, "b.safetensors", node="OutcomeFail"))[0] == 200
    rejected = {"1": {"class_type": "OutcomeWait", "inputs": {"ckpt": "c.safetensors", "seconds": "not a number"}}}
    assert server.queue_prompt(rejected)[0] == 400
    assert server.queue_prompt(wait(server, 60, "d.safetensors"))[0] == 200
    until(lambda: server.get("/queue")["queue_running"])
    until(lambda: model_row(server, "d.safetensors")["count"] == 1)

    def interrupted() -> dict | None:
        """Interrupt until it takes: ComfyUI clears the flag when it starts executing, so an interrupt sent
        between "running" and the node's first step is lost."""
        server.request("POST", "/interrupt", {})
        summary = server.get("/nodes-stats/summary?days=7")
        return summary if summary["interrupted"] == 1 else None

    summary = until(interrupted, timeout=60)
    assert (summary["prompts"], summary["successes"], summary["failures"], summary["rejected"]) == (3, 1, 1, 1)
    assert summary["success_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert summary["avg_ms"] is not None and summary["p95_ms"] >= 100

    a, b, c, d = (model_row(server, f"{x}.safetensors") for x in "abcd")
    assert (a["count"], a["successes"], a["status"]) == (1, 1, "used")
    assert a["avg_ms"] >= 100
    assert (b["count"], b["failures"], b["status"]) == (1, 1, "used")  # a failed run still needed the file
    assert (c["count"], c["rejected_count"], c["status"]) == (0, 1, "unused_new")  # a typo never makes it used
    assert (d["count"], d["interrupted"]) == (1, 1)

    assert summary["cached_nodes_per_prompt"] == 0  # nothing repeated yet
    for _ in range(2):  # the second of two identical prompts in a row is served from ComfyUI's cache
        assert server.queue_prompt(wait(server, 0.1, "a.safetensors"))[0] == 200
    summary = until(lambda: (s := server.get("/nodes-stats/summary?days=7"))["successes"] == 3 and s)
    assert summary["cached_nodes_per_prompt"] == pytest.approx(1 / 5)

    live = server.get("/nodes-stats/realtime")
    assert (live["prompts"], live["successes"], live["failures"], live["interrupted"], live["rejected"]) == (5, 3, 1, 1, 1)
    assert live["queue"] == {"running": 0, "pending": 0}
    assert {"a.safetensors", "b.safetensors", "d.safetensors"} <= {m["model_name"] for m in live["models"]}

    history = server.get("/nodes-stats/history?kind=model&id=checkpoints/a.safetensors&days=7")
    assert len(history["series"]) == 7 and history["series"][-1]["prompts"] == 3
    assert sum(day["prompts"] for day in history["series"]) == 3


def test_an_export_round_trips_hostile_names_and_is_safe_in_a_spreadsheet(server):
    for name in HOSTILE_NAMES:
        status, answer = server.queue_prompt(wait(server, 0, name))
        assert status == 200, (name, answer)
    until(lambda: all((model_row(server, n) or {}).get("count") for n in HOSTILE_NAMES))
    status, text, headers = server.request("GET", "/nodes-stats/export?format=csv&what=models&days=30")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert "attachment" in headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(text)))
    cells = [cell for row in rows for cell in row.values()]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@")], "a cell a spreadsheet would run"
    exported = {row["model_name"][1:] if row["model_name"].startswith("'") else row["model_name"] for row in rows}
    assert set(HOSTILE_NAMES) <= exported

    status, body, _ = server.request("GET", "/nodes-stats/export?format=json&what=models")
    assert status == 200 and set(HOSTILE_NAMES) <= {row["model_name"] for row in body}
    status, body, _ = server.request("GET", "/nodes-stats/export?format=json&what=daily&days=7")
    assert {"prompt", "node", "package", "model"} <= {row["kind"] for row in body}


@pytest.mark.parametrize(
    "path, words",
    [
        ("/nodes-stats/models?days=8x", "days"),
        ("/nodes-stats/packages?days=0", "days"),
        ("/nodes-stats/usage?days=99999", "days"),
        ("/nodes-stats/summary?user=nobody", "unknown user"),
        ("/nodes-stats/export?format=xlsx", "format"),
        ("/nodes-stats/export?what=everything", "what"),
        ("/nodes-stats/history?kind=lora&id=x", "kind"),
        ("/nodes-stats/history?kind=model", "id is required"),
    ],
)
def test_bad_parameters_get_a_400_that_names_them(server, path, words):
    status, body, _ = server.request("GET", path)
    assert status == 400 and words in body["error"]


@pytest.mark.parametrize(
    "change, words",
    [
        ({"retention_days": 1}, "retention_days must be a whole number from 7 to 3650"),
        ({"consider_days": 90}, "safe_days (60) must be greater than consider_days (90)"),
        ({"tracking": "yes"}, "tracking must be true or false"),
        ({"model_types": ["not_a_folder"]}, "model_types: unknown type 'not_a_folder'"),
        ({"colour": "red"}, "unknown setting 'colour'"),
    ],
)
def test_bad_config_values_get_a_400_that_names_the_field_and_range(server, change, words):
    status, body, _ = server.request("PUT", "/nodes-stats/config", change)
    assert status == 400 and words in body["error"]


def test_a_config_change_applies_at_once_and_survives_a_restart(server):
    assert server.request("PUT", "/nodes-stats/config", {"tracking": False})[0] == 200
    before = server.get("/nodes-stats/status")["prompts_recorded"]
    assert server.queue_prompt(wait(server, 0, "a.safetensors"))[0] == 200  # not counted: tracking is off
    status, body, _ = server.request("PUT", "/nodes-stats/config", {"tracking": True, "track_loras": True})
    assert status == 200 and body["config"]["track_loras"] is True
    assert server.queue_prompt(wait(server, 0, "a.safetensors"))[0] == 200
    server.wait_recorded(before + 1)
    server.flush()
    assert server.get("/nodes-stats/status")["prompts_recorded"] == before + 1
    assert server.model("loras", "style.safetensors") is not None

    server.restart()
    config = server.get("/nodes-stats/config")["config"]
    assert (config["tracking"], config["track_loras"]) == (True, True)
    assert server.request("PUT", "/nodes-stats/config", {"track_loras": False})[0] == 200
    assert server.model("loras", "style.safetensors") is None


def test_under_multi_user_each_user_sees_their_own_numbers(make_server):
    comfy = make_server(("--multi-user",))
    place_file(comfy.models / "checkpoints" / "a.safetensors")
    copy_pack(PACKS / "OutcomePack", comfy.custom_nodes)
    comfy.start()
    users = {}
    for name in ("alice", "bob"):
        status, user_id, _ = comfy.request("POST", "/users", {"username": name})
        assert status == 200, user_id
        users[name] = user_id
    for name, prompts in (("alice", 2), ("bob", 1)):
        for _ in range(prompts):
            status, _, _ = comfy.request("POST", "/prompt", {"prompt": wait(comfy)}, headers={"comfy-user": users[name]})
            assert status == 200
    comfy.wait_recorded(3)
    for name, prompts in (("alice", 2), ("bob", 1)):
        path = f"/nodes-stats/summary?user={users[name]}"
        summary = until(lambda path=path, p=prompts: (s := comfy.get(path))["successes"] == p and s)
        assert summary["prompts"] == prompts
        (section,) = comfy.get(f"/nodes-stats/models?user={users[name]}")
        assert section["models"][0]["count"] == prompts
    (section,) = comfy.get("/nodes-stats/models")
    assert section["models"][0]["count"] == 3
    listed = {(user["id"], user["name"]) for user in comfy.get("/nodes-stats/status")["users"]}
    assert listed >= {(users["alice"], "alice"), (users["bob"], "bob")}
    status, body, _ = comfy.request("GET", "/nodes-stats/packages?user=mallory")
    assert status == 400 and "unknown user" in body["error"]


def test_retention_in_a_real_comfyui_folds_200_days_of_prompts_with_every_total_unchanged(make_server):
    """A database whose clock was set 200 days back wrote a prompt a day; the real server's idle writer
    deletes the detail older than the retention window, and no total, first or last use changes."""
    from usage_stats.domain.values import DAY, PromptUse
    from usage_stats.tracker import UsageStore

    comfy = make_server()
    place_file(comfy.models / "checkpoints" / "a.safetensors")
    comfy.database.parent.mkdir(parents=True)
    now = int(time.time())
    seeded = UsageStore(str(comfy.database), clock=lambda: now - 200 * DAY)
    seeded.record([PromptUse(now - day * DAY + DAY // 2, {"CheckpointLoaderSimple": "__builtin__"},
                             frozenset({("checkpoints", "a.safetensors")})) for day in range(200, 0, -1)])
    seeded.close()
    comfy.start()

    def detail_rows() -> int:
        import sqlite3

        with sqlite3.connect(f"file:{comfy.database}?mode=ro", uri=True) as db:
            return db.execute("SELECT COUNT(*) FROM prompt_log").fetchone()[0]

    until(lambda: detail_rows() == 180, timeout=30)
    model = comfy.model("checkpoints", "a.safetensors")
    assert (model["count"], model["status"]) == (200, "used")
    assert model["first_seen"][:10] == time.strftime("%Y-%m-%d", time.gmtime(now - 200 * DAY + DAY // 2))
    summary = comfy.get("/nodes-stats/summary")
    assert summary["prompts"] == 200 and sum(day["prompts"] for day in summary["per_day"]) == 200
    history = comfy.get("/nodes-stats/history?kind=model&id=checkpoints/a.safetensors")
    assert sum(day["prompts"] for day in history["series"]) == 200
