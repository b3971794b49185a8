"""From numbers to decisions inside a real ComfyUI: sizes, saved-workflow references, the keep list,
quarantine and restore, pack disable and enable, and refused actions that change nothing on disk.

One server serves the module (the pack test restarts a server of its own). Its database is seeded so the
models were first seen installed 90 days ago: without other evidence, they are safe_to_remove.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from comfyui import ComfyServer, copy_pack, place_file, prompt_using
from usage_stats.domain.values import DAY
from usage_stats.tracker import UsageStore

pytestmark = pytest.mark.comfyui

PACKS = Path(__file__).parent / "packs"
NOW = int(time.time())
UNUSED = "sub dir/unused ü model.safetensors"
IN_WORKFLOW = "in workflow.safetensors"
HARDLINK = "hardlink of unused.safetensors"
FROM_HISTORY = "from history ü.safetensors"

SAVED_WORKFLOW = {  # the UI format, with the model chosen inside a subgraph
    "nodes": [{"id": 1, "type": "a-subgraph-id", "widgets_values": []}],
    "definitions": {"subgraphs": [{"id": "a-subgraph-id", "nodes": [
        {"id": 5, "type": "CheckpointLoaderSimple", "widgets_values": [IN_WORKFLOW]},
    ]}]},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    comfy = ComfyServer(tmp_path_factory.mktemp("decisions"))
    checkpoints = comfy.models / "checkpoints"
    place_file(checkpoints / UNUSED, b"u" * 4096)
    os.link(checkpoints / UNUSED, checkpoints / HARDLINK)
    place_file(checkpoints / IN_WORKFLOW, b"w" * 1000)
    place_file(checkpoints / "same size a.safetensors", b"a" * 100)
    place_file(checkpoints / "same size b.safetensors", b"b" * 100)
    place_file(checkpoints / "dup one.safetensors", b"d" * 2048)
    place_file(checkpoints / FROM_HISTORY, b"h" * 10)
    place_file(comfy.models / "vae" / "dup twö.safetensors", b"d" * 2048)
    workflow = comfy.base / "user" / "default" / "workflows" / "portrait.json"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(json.dumps(SAVED_WORKFLOW))
    comfy.database.parent.mkdir(parents=True)
    store = UsageStore(str(comfy.database), clock=lambda: NOW - 90 * DAY)
    store.note_installed(models=[("checkpoints", n) for n in (UNUSED, IN_WORKFLOW, HARDLINK, "same size a.safetensors")])
    store.close()
    with comfy:
        yield comfy


def same_origin(server: ComfyServer) -> dict:
    return {"Origin": server.url}


def post(server: ComfyServer, path: str, body, headers=None):
    return server.request("POST", path, body, headers if headers is not None else same_origin(server))


def checkpoint_choices(server: ComfyServer) -> list[str]:
    info = server.get("/object_info/CheckpointLoaderSimple")
    return info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]


def checkpoint(name: str) -> dict:
    return {"model_type": "checkpoints", "model_name": name}


def files_under(base: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(base)), p.lstat().st_size) for p in base.rglob("*") if p.is_file() or p.is_symlink())


def test_rows_carry_their_size_and_the_tier_totals_count_a_hard_link_once(server):
    unused, hardlink = server.model("checkpoints", UNUSED), server.model("checkpoints", HARDLINK)
    assert unused["size"] == hardlink["size"] == 4096
    assert sorted([unused["counted_bytes"], hardlink["counted_bytes"]]) == [0, 4096]
    totals = server.get("/nodes-stats/disk")
    assert totals["tiers"]["safe_to_remove"]["bytes"] == 4096 + 100  # the hard link once; b is newly seen
    assert totals["types"]["checkpoints"]["consider_removing"] == {"bytes": 1000, "files": 1}


def test_a_model_a_saved_workflow_uses_is_never_safe_to_remove(server):
    model = server.model("checkpoints", IN_WORKFLOW)
    assert model["status"] == "consider_removing"
    assert model["workflows"] == ["portrait.json"]
    assert "used by 1 saved workflow: portrait.json" in model["reasons"]
    assert any(r.startswith("never used since ") for r in server.model("checkpoints", UNUSED)["reasons"])
    references = server.get("/nodes-stats/references")
    assert {"model_type": "checkpoints", "model_name": IN_WORKFLOW, "workflows": ["portrait.json"]} in references["models"]
    assert {"class_type": "CheckpointLoaderSimple", "workflows": ["portrait.json"]} in references["node_types"]


def test_a_kept_model_is_never_suggested_for_removal_until_unpinned(server):
    name = "same size a.safetensors"
    assert server.model("checkpoints", name)["status"] == "safe_to_remove"
    keep = {"kind": "model", "model_type": "checkpoints", "name": name}
    assert post(server, "/nodes-stats/keep", {**keep, "keep": True})[0] == 200
    kept = server.model("checkpoints", name)
    assert (kept["status"], kept["kept"]) == ("unused_new", True)
    assert post(server, "/nodes-stats/keep", {**keep, "keep": False})[0] == 200
    assert server.model("checkpoints", name)["status"] == "safe_to_remove"


def test_quarantine_hides_a_model_from_comfyui_and_restore_brings_it_back_usable(server):
    assert UNUSED in checkpoint_choices(server)
    status, moved, _ = post(server, "/nodes-stats/quarantine",
                            {"confirm": True, "models": [{"model_type": "checkpoints", "model_name": UNUSED}]})
    assert status == 200 and moved["refused"] == [], moved
    assert not (server.models / "checkpoints" / UNUSED).exists()
    assert Path(moved["moved"][0]["to"]).read_bytes() == b"u" * 4096
    assert UNUSED not in checkpoint_choices(server)
    assert server.model("checkpoints", UNUSED) is None
    quarantine = server.get("/nodes-stats/quarantine")
    assert (quarantine["files"], quarantine["bytes"]) == (1, 4096)

    entry_id = quarantine["items"][0]["id"]
    status, restored, _ = post(server, "/nodes-stats/quarantine/restore", {"confirm": True, "ids": [entry_id]})
    assert status == 200, restored
    assert (server.models / "checkpoints" / UNUSED).read_bytes() == b"u" * 4096
    assert UNUSED in checkpoint_choices(server)
    assert server.model("checkpoints", UNUSED)["size"] == 4096
    assert server.queue_prompt(prompt_using(UNUSED))[0] == 200
    log = server.get("/nodes-stats/actions")
    assert [entry["action"] for entry in log[:2]] == ["restore", "quarantine"]
    assert log[1]["target"] == f"checkpoints/{UNUSED}" and log[1]["from"].endswith(UNUSED)


def test_empty_quarantine_deletes_only_the_confirmed_bytes(server):
    name = "same size b.safetensors"
    assert post(server, "/nodes-stats/quarantine", {"confirm": True, "models": [checkpoint(name)]})[0] == 200
    held = server.get("/nodes-stats/quarantine")["bytes"]
    status, data, _ = post(server, "/nodes-stats/quarantine/empty", {"confirm": True, "confirm_bytes": held - 1})
    assert status == 409 and f"holds {held} bytes" in data["error"]
    assert server.get("/nodes-stats/quarantine")["files"] == 1
    status, data, _ = post(server, "/nodes-stats/quarantine/empty", {"confirm": True, "confirm_bytes": held})
    assert status == 200 and data == {"ok": True, "deleted": 1, "bytes": held}
    assert server.get("/nodes-stats/quarantine")["files"] == 0
    assert not list((server.models / ".usage-stats-quarantine").rglob("*.safetensors"))


def test_the_duplicate_search_finds_equal_content_only(server):
    status, started, _ = post(server, "/nodes-stats/duplicates/scan", {})
    assert status == 200 and started["state"] in ("running", "done"), started
    found = server.wait_job("/nodes-stats/duplicates")
    assert found["state"] == "done", found
    [group] = found["result"]["groups"]
    assert sorted(copy[0]["model_name"] for copy in group["files"]) == ["dup one.safetensors", "dup twö.safetensors"]
    assert group["wasted_bytes"] == found["result"]["wasted_bytes"] == 2048


def test_refused_actions_change_nothing_on_disk(server):
    (server.base / "outside.safetensors").write_bytes(b"o")
    outside = server.base / "outside.safetensors"
    before = files_under(server.base / "models"), files_under(server.base / "custom_nodes"), outside.exists()
    model = checkpoint(IN_WORKFLOW)
    proxied_foreign = {"Host": "proxy.example", "Origin": "http://evil.example"}
    refused = [
        ("/nodes-stats/quarantine", {"confirm": True, "models": [model]}, {"Origin": "http://evil.example"}, 403),
        ("/nodes-stats/quarantine", {"confirm": True, "models": [model]}, proxied_foreign, 403),
        ("/nodes-stats/quarantine", {"models": [model]}, None, 400),
        ("/nodes-stats/quarantine", {"confirm": "yes", "models": [model]}, None, 400),
        ("/nodes-stats/quarantine", {"confirm": True, "models": [checkpoint("../../outside.safetensors")]}, None, 400),
        ("/nodes-stats/quarantine", {"confirm": True, "models": [checkpoint("sub dir/../../../outside.safetensors")]}, None, 400),
        ("/nodes-stats/quarantine", {"confirm": True, "models": [checkpoint(str(outside))]}, None, 400),
        ("/nodes-stats/quarantine", {"confirm": True, "models": [checkpoint("nope.safetensors")]}, None, 404),
        ("/nodes-stats/quarantine", {"confirm": True, "models": [{"model_type": "loras", "model_name": IN_WORKFLOW}]}, None, 404),
        ("/nodes-stats/quarantine/restore", {"confirm": True, "ids": [999]}, None, 404),
        ("/nodes-stats/quarantine/empty", {"confirm": True}, None, 400),
        ("/nodes-stats/packages/disable", {"confirm": True, "package": "comfyui-usage-stats"}, None, 403),
        ("/nodes-stats/packages/disable", {"confirm": True, "package": "../models"}, None, 400),
        ("/nodes-stats/packages/disable", {"package": "anything"}, None, 400),
    ]
    for path, body, headers, expected in refused:
        headers = {**same_origin(server), **(headers or {})}
        status, data, _ = post(server, path, body, headers)
        assert status == expected, (path, body, status, data)
        if data or expected != 403:  # ComfyUI's own loopback origin check answers an empty 403 first
            assert data["error"], data
    after = files_under(server.base / "models"), files_under(server.base / "custom_nodes"), outside.exists()
    assert after == before


def test_a_disabled_pack_is_gone_after_a_restart_and_back_once_enabled(make_server):
    server = make_server()
    copy_pack(PACKS / "V1Pack", server.custom_nodes)
    server.start()
    assert "V1PackLoader" in server.get("/object_info")
    status, data, _ = post(server, "/nodes-stats/packages/disable", {"confirm": True, "package": "V1Pack"})
    assert status == 200 and data["restart_required"] is True, data
    server.restart()
    assert "V1PackLoader" not in server.get("/object_info")
    assert server.package("V1Pack")["disabled"] is True
    status, data, _ = post(server, "/nodes-stats/packages/enable", {"confirm": True, "package": "V1Pack"})
    assert status == 200, data
    server.restart()
    assert "V1PackLoader" in server.get("/object_info")
    assert [e["action"] for e in server.get("/nodes-stats/actions")[:2]] == ["enable", "disable"]


def wait_job(server: ComfyServer, path: str) -> dict:
    status = server.wait_job(path)
    assert status["state"] == "done", status
    return status["result"]


def test_history_import_from_past_outputs_counts_their_models_once(server):
    from test_decisions import save_png

    old = NOW - 120 * DAY
    prompt = json.dumps(prompt_using(FROM_HISTORY))
    save_png(server.base / "output" / "ComfyUI_00001_.png", prompt, mtime=old)
    save_png(server.base / "output" / "ComfyUI_00002_.png", prompt, mtime=old)  # one prompt, two images
    save_png(server.base / "output" / "sub" / "hostile.png", '{"1": {"class_type": ' * 20_000, mtime=old)
    whole = (server.base / "output" / "ComfyUI_00001_.png").read_bytes()
    (server.base / "output" / "truncated.png").write_bytes(whole[: whole.index(b"tEXtprompt") + 40])
    os.utime(server.base / "output" / "truncated.png", (old, old))
    assert server.model("checkpoints", FROM_HISTORY)["count"] == 0

    assert post(server, "/nodes-stats/history-import", {})[0] == 400  # opt-in: it must be confirmed
    for expected_new in (1, 0):  # the second run finds the same prompt and adds nothing
        status, data, _ = post(server, "/nodes-stats/history-import", {"confirm": True})
        assert status == 200, data
        result = wait_job(server, "/nodes-stats/history-import")
        assert (result["images"], result["with_prompt"], result["imported"]) == (4, 2, expected_new), result
    model = server.model("checkpoints", FROM_HISTORY)
    assert model["count"] == 1 and model["last_seen"].startswith(time.strftime("%Y-%m-%d", time.gmtime(old)))


def race_restore_with_a_new_file(server: ComfyServer, entry_id: int, path: Path, content: bytes) -> tuple[int, bool]:
    """Start a restore and, at the same moment, create a file at its original place as a user or a download
    would (exclusively); returns the restore's status and whether the new file was written."""
    from concurrent.futures import ThreadPoolExecutor

    start = threading.Barrier(2)

    def restore() -> int:
        start.wait()
        return post(server, "/nodes-stats/quarantine/restore", {"confirm": True, "ids": [entry_id]})[0]

    def create() -> bool:
        start.wait()
        try:
            with open(path, "xb") as file:
                file.write(content)
            return True
        except FileExistsError:
            return False

    with ThreadPoolExecutor(2) as pool:
        restored, created = pool.submit(restore), pool.submit(create)
        return restored.result(30), created.result(30)


def test_a_file_created_at_the_original_place_during_a_restore_is_never_replaced(server):
    """Restore and a new file race for one path: whichever wins, both files survive, whole."""
    original = server.models / "checkpoints" / "race.safetensors"
    for attempt in range(15):
        place_file(original, b"quarantined" * 100)
        status, moved, _ = post(server, "/nodes-stats/quarantine", {"confirm": True, "models": [checkpoint("race.safetensors")]})
        assert status == 200 and moved["moved"], moved
        entry_id = moved["moved"][0]["id"]
        status, created = race_restore_with_a_new_file(server, entry_id, original, b"new %d" % attempt)
        held = [e for e in server.get("/nodes-stats/quarantine")["items"] if e["id"] == entry_id]
        if created:  # the new file came first: it is intact, and the restore was refused
            assert status == 409 and original.read_bytes() == b"new %d" % attempt
            assert Path(held[0]["quarantined"]).read_bytes() == b"quarantined" * 100
            original.unlink()
            assert post(server, "/nodes-stats/quarantine/restore", {"confirm": True, "ids": [entry_id]})[0] == 200
        else:  # the restore came first: the new file was never written over it
            assert status == 200 and held == [] and original.read_bytes() == b"quarantined" * 100
        original.unlink()
