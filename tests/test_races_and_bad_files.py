"""Races and hostile files inside a real ComfyUI: concurrent settings changes, a reset in the middle of a burst,
FIFOs and sockets where images, models and saved workflows should be, and text no database can store.

One server serves the module; the reset test runs last because it forgets everything.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from comfyui import ComfyServer, copy_pack, place_file, until

pytestmark = pytest.mark.comfyui

PACKS = Path(__file__).parent / "packs"
OLD = int(time.time()) - 120 * 86400


def wait_prompt(seconds: float = 0.0, ckpt: str = "a.safetensors") -> dict:
    return {"1": {"class_type": "OutcomeWait", "inputs": {"seconds": seconds, "ckpt": ckpt}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    comfy = ComfyServer(tmp_path_factory.mktemp("races"))
    place_file(comfy.models / "checkpoints" / "a.safetensors")
    place_file(comfy.models / "checkpoints" / "dup one.safetensors", b"d" * 2048)
    place_file(comfy.models / "checkpoints" / "dup two.safetensors", b"d" * 2048)
    os.mkfifo(comfy.models / "checkpoints" / "pipe.safetensors")
    workflows = comfy.base / "user" / "default" / "workflows"
    workflows.mkdir(parents=True)
    os.mkfifo(workflows / "pipe.json")
    copy_pack(PACKS / "OutcomePack", comfy.custom_nodes)
    with comfy:
        yield comfy


def post(server: ComfyServer, path: str, body) -> tuple[int, dict]:
    status, data, _ = server.request("POST", path, body)
    return status, data


def job_state(server: ComfyServer, path: str, state: str, timeout: float = 30) -> dict:
    return until(lambda: (s := server.get(path))["state"] == state and s, timeout, f"{path} {state}", server)


# --------------------------------------------------------------------------- settings


def test_five_concurrent_settings_changes_all_persist(server):
    changes = [{"consider_days": 20}, {"safe_days": 70}, {"retention_days": 90}, {"track_loras": True},
               {"model_types": ["checkpoints"]}]
    answers: list = [None] * len(changes)
    start = threading.Barrier(len(changes))

    def change(index: int) -> None:
        start.wait()
        answers[index] = server.request("PUT", "/nodes-stats/config", changes[index])[0]

    threads = [threading.Thread(target=change, args=(i,)) for i in range(len(changes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == [200] * len(changes)
    expected = {key: value for change in changes for key, value in change.items()}
    config = server.get("/nodes-stats/config")["config"]
    assert {key: config[key] for key in expected} == expected
    defaults = {"consider_days": 30, "safe_days": 60, "retention_days": 180, "track_loras": False, "model_types": []}
    assert server.request("PUT", "/nodes-stats/config", defaults)[0] == 200


# --------------------------------------------------------------------------- names that cannot be stored


def test_a_lone_surrogate_or_nul_in_a_request_is_a_400(server):
    for body in (b'{"kind": "package", "name": "\\ud800", "keep": true}',
                 b'{"kind": "model", "model_type": "checkpoints", "name": "a\\u0000b", "keep": true}'):
        status, data, _ = server.request("POST", "/nodes-stats/keep", body)
        assert status == 400 and "cannot be stored" in data["error"], data
    status, data, _ = server.request("PUT", "/nodes-stats/config", b'{"model_types": ["\\udfff"]}')
    assert status == 400 and "cannot be stored" in data["error"], data
    status, data, _ = server.request("GET", "/nodes-stats/models?q=%00")
    assert status == 400 and "cannot be stored" in data["error"], data
    assert server.request("POST", "/nodes-stats/keep", {"kind": "package", "name": "OutcomePack", "keep": True})[0] == 200


# --------------------------------------------------------------------------- files that are not files


def test_a_fifo_listed_as_a_model_has_no_size_and_is_no_duplicate(server):
    pipe = server.model("checkpoints", "pipe.safetensors")
    assert pipe is not None, "ComfyUI lists a FIFO by its name"
    assert (pipe["size"], pipe["counted_bytes"]) == (None, 0)
    assert post(server, "/nodes-stats/duplicates/scan", {})[0] == 200
    result = job_state(server, "/nodes-stats/duplicates", "done")["result"]
    assert [sorted(f[0]["model_name"] for f in g["files"]) for g in result["groups"]] == [
        ["dup one.safetensors", "dup two.safetensors"]]


def test_a_fifo_among_saved_workflows_never_blocks_a_report(server):
    status, data, _ = server.request("GET", "/nodes-stats/references", timeout=15)
    assert status == 200, data
    assert server.model("checkpoints", "a.safetensors") is not None  # the model report builds too


def test_the_history_import_reports_a_fifo_a_socket_and_an_empty_image_and_finishes(server):
    output = server.base / "output"
    os.mkfifo(output / "fifo.png")
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(output / "sock.png"))
    listening.listen(1)
    place_file(output / "empty.png", b"")
    try:
        assert post(server, "/nodes-stats/history-import", {"confirm": True})[0] == 200
        status = job_state(server, "/nodes-stats/history-import", "done")
    finally:
        listening.close()
    assert sorted((Path(s["path"]).name, s["reason"]) for s in status["skipped"]) == [
        ("empty.png", "empty file"), ("fifo.png", "not a regular file"), ("sock.png", "not a regular file")]
    assert status["skipped_count"] == 3 and status["result"]["images"] == 3


def test_a_slow_history_import_stops_when_cancelled_keeps_what_it_read_and_starts_again(server):
    from test_decisions import save_png

    folder = server.base / "output" / "many"
    first = save_png(folder / "00000.png", json.dumps(wait_prompt(ckpt="dup one.safetensors")), mtime=OLD)
    for number in range(1, 20_000):  # one image under 20,000 names: minutes of reading, seconds to make
        os.link(first, folder / f"{number:05}.png")
    try:
        assert post(server, "/nodes-stats/history-import", {"confirm": True})[0] == 200
        until(lambda: server.get("/nodes-stats/history-import")["progress"]["done"] >= 2, what="two images read")
        status, answer = post(server, "/nodes-stats/history-import/cancel", {})
        assert status == 200 and answer["cancelled"] is True
        stopped = job_state(server, "/nodes-stats/history-import", "cancelled", timeout=10)
        assert stopped["progress"]["done"] < stopped["progress"]["total"]
        assert server.model("checkpoints", "dup one.safetensors")["count"] == 1  # what it read is recorded
        assert post(server, "/nodes-stats/history-import", {"confirm": True})[0] == 200  # and it starts again
        assert post(server, "/nodes-stats/history-import/cancel", {})[1]["cancelled"] is True
        job_state(server, "/nodes-stats/history-import", "cancelled", timeout=10)
    finally:
        shutil.rmtree(folder)


# --------------------------------------------------------------------------- a reset in the middle of a burst (last)


def test_a_reset_during_a_burst_of_prompts_never_leaves_more_successes_than_prompts(server):
    burst, senders = 200, 2
    sent = []

    def send(first: int) -> None:
        for number in range(first, burst, senders):  # a different wait each: ComfyUI would serve a repeat from its cache
            sent.append(server.queue_prompt(wait_prompt(0.03 + number / 10_000))[0])

    threads = [threading.Thread(target=send, args=(first,)) for first in range(senders)]
    for thread in threads:
        thread.start()
    try:
        until(lambda: server.get("/nodes-stats/status")["prompts_recorded"] >= 40, what="40 prompts recorded")
        assert server.get("/queue")["queue_pending"], "the reset must come while prompts are still in flight"
        status, data, _ = server.request("POST", "/nodes-stats/reset", {"confirm": True})
        assert status == 200, data
    finally:
        for thread in threads:
            thread.join(120)
    after = 20  # the writer may hold the whole burst when the reset comes (it forgets it): some come after, surely
    for number in range(after):
        sent.append(server.queue_prompt(wait_prompt(0.06 + number / 10_000))[0])
    assert sent == [200] * (burst + after)
    until(lambda: not (q := server.get("/queue"))["queue_running"] and not q["queue_pending"], 120, "the queue drained")

    def settled():  # every prompt recorded after the reset succeeded: its outcome follows it, and nothing else
        summary = server.get("/nodes-stats/summary")
        return summary if 0 < summary["prompts"] == summary["successes"] else None

    summary = until(settled, 30, "successes equal to prompts after the reset", server)
    assert summary["prompts"] < burst + after
    for day in summary["per_day"]:
        assert day["successes"] <= day["prompts"], day
    for node in server.get("/nodes-stats/usage"):
        assert node["successes"] <= node["count"], node
    for section in server.get("/nodes-stats/models"):
        for model in section["models"]:
            assert model["successes"] <= model["count"], model
    history = server.get("/nodes-stats/history?kind=model&id=checkpoints/a.safetensors")["series"]
    assert all(day["successes"] <= day["prompts"] for day in history)
