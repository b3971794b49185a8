"""Fault suite against a real ComfyUI: crashes, a locked or corrupt or unusable database, hostile names.

Each test starts its own ComfyUI (about 12 s) and asserts what the user would see: prompts accepted,
counts on disk, the log line, the HTTP answer. Timing checks are generous (the CI machine has 2 shared
cores) but far below what a blocking hook or a lost batch would cost, so they can still fail.
"""

from __future__ import annotations

import concurrent.futures
import os
import sqlite3
import statistics
import threading
import time
from pathlib import Path

import pytest
from comfyui import ComfyServer, place_file, until

pytestmark = pytest.mark.comfyui

CHECKPOINT = "fault.safetensors"


def workflow(checkpoint: str = CHECKPOINT, seed: int = 0) -> dict:
    """A prompt ComfyUI accepts (it has an output node); it fails later, at execution, on the 1-byte model."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
            "seed": seed, "steps": 1, "cfg": 1.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "fault"}},
    }


def new_server(make_server, *, checkpoint: str = CHECKPOINT, extra_args=()) -> ComfyServer:
    server = make_server(extra_args=extra_args)
    place_file(server.models / "checkpoints" / checkpoint)
    return server


def recorded_on_disk(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute("SELECT COUNT(*) FROM prompt_log").fetchone()[0]


def usage_lines(server: ComfyServer, text: str) -> list[str]:
    return [line for line in server.log().splitlines() if "[usage-stats]" in line and text in line]


# --------------------------------------------------------------------------- 1. kill -9 during a burst


def test_kill_9_during_a_burst_loses_at_most_the_last_second(make_server):
    server = new_server(make_server).start()
    accepted: list[float] = []  # monotonic time each accepted POST returned
    sent = 0
    lock = threading.Lock()
    stop = threading.Event()

    def post(seed: int) -> None:
        nonlocal sent
        if stop.is_set():
            return
        with lock:
            sent += 1
        try:
            status, _ = server.queue_prompt(workflow(seed=seed))
        except OSError:
            return  # the server died under us
        if status == 200:
            with lock:
                accepted.append(time.monotonic())

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(post, seed) for seed in range(2000)]
        until(lambda: len(accepted) >= 1000, timeout=120, what="1,000 accepted prompts before the kill")
        killed_at = time.monotonic()
        server.stop(kill=True)  # SIGKILL to the whole process group
        stop.set()
        concurrent.futures.wait(futures)

    with sqlite3.connect(server.database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    recorded = recorded_on_disk(server.database)
    settled = sum(1 for t in accepted if t < killed_at - 1.0)
    assert settled > 0
    assert settled <= recorded <= sent, f"accepted >1 s before the kill: {settled}, recorded {recorded}, sent {sent}"

    server.start()  # and ComfyUI reopens it as it is: not moved aside, still counting
    assert not list(server.database.parent.glob("usage_stats.db.corrupt-*"))
    status, _ = server.queue_prompt(workflow(seed=99_999))
    assert status == 200
    server.wait_recorded(recorded + 1)


# --------------------------------------------------------------------------- 2. another writer holds the lock


@pytest.mark.timed
def test_database_locked_by_another_writer_for_10_s_loses_and_slows_nothing(make_server):
    server = new_server(make_server).start()

    def timed_post(seed: int) -> float:
        start = time.perf_counter()
        status, data = server.queue_prompt(workflow(seed=seed))
        assert status == 200, data
        return time.perf_counter() - start

    baseline = [timed_post(seed) for seed in range(20)]
    server.wait_recorded(20)

    holder = sqlite3.connect(server.database, isolation_level=None, timeout=10)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO meta (key, value) VALUES ('fault-test', 'holding the write lock')")
    during: list[float] = []
    try:
        held_until = time.monotonic() + 10
        seed = 100
        while time.monotonic() < held_until:
            during.append(timed_post(seed))
            seed += 1
            time.sleep(0.1)
        assert recorded_on_disk(server.database) == 20, "nothing can be written while the lock is held"
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert len(during) >= 20
    # A hook that waited on SQLite would take >= 1 s (the writer's busy timeout) per prompt.
    assert max(during) < 1.0, f"slowest POST while locked: {max(during):.3f} s"
    assert statistics.median(during) <= 3 * statistics.median(baseline) + 0.05, (baseline, during)
    server.wait_recorded(20 + len(during), timeout=15)  # retried after the release: nothing lost
    server.flush()
    assert server.get("/nodes-stats/status")["prompts_recorded"] == 20 + len(during)
    assert server.get("/nodes-stats/status")["prompts_dropped"] == 0


# --------------------------------------------------------------------------- 3. corrupt database at start


def test_corrupt_database_is_moved_aside_and_a_fresh_one_tracks(make_server):
    server = new_server(make_server)
    garbage = b"this is not a database " + os.urandom(8192)
    server.database.parent.mkdir(parents=True, exist_ok=True)
    server.database.write_bytes(garbage)
    server.start()

    status, _ = server.queue_prompt(workflow())
    assert status == 200
    server.wait_recorded(1)
    aside = list(server.database.parent.glob("usage_stats.db.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    assert len(usage_lines(server, "moved it aside")) == 1
    with sqlite3.connect(server.database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# --------------------------------------------------------------------------- 4. unusable database path


def _directory_named_like_the_database(server: ComfyServer) -> Path:
    server.database.mkdir(parents=True)  # sqlite3: "unable to open database file", but not corrupt
    return server.database


def _file_named_like_the_folder(server: ComfyServer) -> Path:
    server.database.parent.parent.mkdir(parents=True, exist_ok=True)
    server.database.parent.write_text("not a folder")  # makedirs fails: the folder cannot be created
    return server.database.parent


@pytest.mark.parametrize("block", [_directory_named_like_the_database, _file_named_like_the_folder])
def test_unusable_database_path_keeps_comfyui_running_and_answers_503(make_server, block):
    server = new_server(make_server)
    blocker = block(server)
    server.start()

    status, data = server.queue_prompt(workflow())
    assert status == 200, data
    for path in ("/nodes-stats/packages", "/nodes-stats/models", "/nodes-stats/usage", "/nodes-stats/status"):
        status, data, headers = server.request("GET", path)
        assert status == 503, (path, status, data)
        assert "could not be opened" in data["error"]
        assert headers["Content-Type"].startswith("application/json")
    status, data, _ = server.request("POST", "/nodes-stats/reset", {"confirm": True})
    assert status == 503 and "error" in data

    assert len(usage_lines(server, "could not be opened")) == 1
    assert not usage_lines(server, "moved it aside")
    assert blocker.exists() and not list(blocker.parent.glob("*.corrupt-*"))  # the user's file is untouched


# --------------------------------------------------------------------------- 6, 7, 8 share one server


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """One server with a model and a pack whose names are HTML, and a few recorded prompts."""
    server = ComfyServer(tmp_path_factory.mktemp("hostile"), env={"USAGE_STATS_ALLOWED_HOSTS": "stats.example:8188"})
    place_file(server.models / "checkpoints" / CHECKPOINT)
    place_file(server.models / "checkpoints" / HTML_MODEL)
    place_file(server.models / "vae" / HTML_MODEL)
    pack = server.custom_nodes / HTML_PACK
    pack.mkdir()
    (pack / "__init__.py").write_text(
        "class EvilNode:\n"
        "    CATEGORY = 'test'\n"
        "    RETURN_TYPES = ()\n"
        "    OUTPUT_NODE = True\n"
        "    FUNCTION = 'run'\n"
        "    @classmethod\n"
        "    def INPUT_TYPES(cls):\n"
        "        return {'required': {}}\n"
        "    def run(self):\n"
        "        return ()\n"
        f"NODE_CLASS_MAPPINGS = {{{HTML_NODE!r}: EvilNode}}\n"
    )
    server.start()
    yield server
    server.stop()


HTML_MODEL = "<img src=x onerror=alert(1)>.safetensors"
HTML_PACK = "<img src=x onerror=alert(1)> pack"
HTML_NODE = "<script>alert('node')</script>"


def test_html_names_come_back_intact(hostile_server):
    server = hostile_server
    before = server.get("/nodes-stats/status")["prompts_recorded"]
    assert server.queue_prompt(workflow(HTML_MODEL))[0] == 200
    assert server.queue_prompt({"1": {"class_type": HTML_NODE, "inputs": {}}})[0] == 200
    server.wait_recorded(before + 2)

    model = server.model("checkpoints", HTML_MODEL)
    assert model is not None and model["count"] >= 1 and model["installed"]
    assert server.model("vae", HTML_MODEL) is not None  # listed, with its name as on disk
    pack = server.package(HTML_PACK)
    assert pack is not None and pack["total_executions"] >= 1 and pack["installed"]
    assert [n["class_type"] for n in pack["nodes"]] == [HTML_NODE]
    usage = server.get("/nodes-stats/usage?package=" + urllib_quote(HTML_PACK))
    assert [n["class_type"] for n in usage] == [HTML_NODE]
    # Served as JSON text, never as HTML: the markup is data, the UI renders it as text.
    status, raw, headers = server.request("GET", "/nodes-stats/models?q=" + urllib_quote("<img"))
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert {m["model_name"] for s in raw for m in s["models"]} == {HTML_MODEL}


def urllib_quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def test_reset_is_refused_from_another_origin_or_without_confirmation(hostile_server):
    server = hostile_server
    before = server.get("/nodes-stats/status")["prompts_recorded"] + 1
    assert server.queue_prompt(workflow(seed=7))[0] == 200
    server.wait_recorded(before)
    server.flush()
    assert server.get("/nodes-stats/status")["prompts_recorded"] == before
    usage_before = server.get("/nodes-stats/usage")
    same_origin = {"Origin": server.url}

    refused = [
        ({"confirm": True}, {"Origin": "http://evil.example"}, 403),
        ({"confirm": True}, {"Origin": "null"}, 403),
        ({"confirm": True}, {"Origin": f"http://127.0.0.1:{server.port + 1}"}, 403),
        ({}, same_origin, 400),
        ({"confirm": "true"}, same_origin, 400),
        ({"confirm": 1}, same_origin, 400),
        ([True], same_origin, 400),
        (None, same_origin, 415),
    ]
    for body, headers, expected in refused:
        status, data, _ = server.request("POST", "/nodes-stats/reset", body, headers)
        assert status == expected, (body, headers, status, data)
        if data or expected != 403:  # ComfyUI's own loopback origin check answers an empty 403 first
            assert isinstance(data, dict) and data.get("error"), data
    # Behind a proxy whose name the user allowed (a non-loopback Host) ComfyUI checks nothing: our origin check refuses.
    proxied = {"Host": "stats.example:8188"}
    for origin in ("http://evil.example", "http://stats.example:8189", "null"):
        status, data, _ = server.request("POST", "/nodes-stats/reset", {"confirm": True}, {**proxied, "Origin": origin})
        assert status == 403 and "another site" in data["error"], (origin, status, data)
    status, data, _ = server.request(
        "POST", "/nodes-stats/reset", b"confirm=true", {"Content-Type": "application/x-www-form-urlencoded", **same_origin}
    )
    assert status == 415, data
    assert server.get("/nodes-stats/status")["prompts_recorded"] == before
    assert server.get("/nodes-stats/usage") == usage_before

    # The control: the same request, confirmed and from the page's own origin, does clear.
    status, data, _ = server.request("POST", "/nodes-stats/reset", {"confirm": True}, same_origin)
    assert status == 200, data
    assert server.get("/nodes-stats/status")["prompts_recorded"] == 0
    assert server.get("/nodes-stats/usage") == []


ENDPOINT_CASES = [
    ("GET", "/nodes-stats/models?limit=0", None, {}),
    ("GET", "/nodes-stats/models?limit=-1", None, {}),
    ("GET", "/nodes-stats/models?offset=99999999999", None, {}),
    ("GET", "/nodes-stats/models?type=%00", None, {}),
    ("GET", "/nodes-stats/models?type=nope", None, {}),
    ("GET", "/nodes-stats/models?status=used,,,", None, {}),
    ("GET", "/nodes-stats/models?q=" + "x" * 5000, None, {}),
    ("GET", "/nodes-stats/models?q=%ff%fe", None, {}),
    ("GET", "/nodes-stats/models?q=%F0%9F%98%80&status=used&status=uninstalled", None, {}),
    ("GET", "/nodes-stats/packages?status=" + "a" * 300, None, {}),
    ("GET", "/nodes-stats/packages?bogus=1", None, {}),
    ("GET", "/nodes-stats/usage?package=%3Cscript%3E", None, {}),
    ("GET", "/nodes-stats/status?x", None, {}),
    ("POST", "/nodes-stats/reset", b"{", {"Content-Type": "application/json"}),
    ("POST", "/nodes-stats/reset", b"\xff\xfe", {"Content-Type": "application/json"}),
    ("POST", "/nodes-stats/reset", b"[" * 60_000, {"Content-Type": "application/json"}),
    ("POST", "/nodes-stats/reset", b"[" * 2_000_000, {"Content-Type": "application/json"}),
    ("POST", "/nodes-stats/reset", b'{"confirm": 1}', {"Content-Type": "application/json", "Origin": "\u00e9"}),
    ("POST", "/nodes-stats/reset?confirm=true", b"", {"Content-Type": "application/json"}),
]


@pytest.mark.parametrize("method,path,body,headers", ENDPOINT_CASES)
def test_bad_requests_get_a_json_4xx_never_a_500(hostile_server, method, path, body, headers):
    status, data, response_headers = hostile_server.request(method, path, body, headers)
    assert 200 <= status < 500, (status, data)
    if status >= 400:
        assert isinstance(data, dict) and isinstance(data.get("error"), str), data
        assert response_headers["Content-Type"].startswith("application/json")
