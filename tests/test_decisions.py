"""Issue 7's pure rules, on real files: sizes and what each tier frees, saved-workflow references, the keep
list, and the quarantine's safety checks (against tests/fake_comfyui's faithful folder_paths)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from contextlib import closing
from functools import partial
from pathlib import Path

import pytest
from api_app import AppClient
from comfyui import place_file
from usage_stats.actions.decisions import Decisions
from usage_stats.actions.moves import ActionRefused
from usage_stats.actions.quarantine import registered_folders
from usage_stats.api import access
from usage_stats.domain.values import DAY, InstalledPackage
from usage_stats.evidence import source as evidence
from usage_stats.evidence import workflows
from usage_stats.mapper import ModelMapper, PackageMapper
from usage_stats.recording.writer import Writer
from usage_stats.reports import disk
from usage_stats.reports.models import model_report
from usage_stats.reports.packages import package_report
from usage_stats.tracker import UsageStore

NOW = 1_800_000_000


# --------------------------------------------------------------------------- sizes


def listed(fake_comfy):
    fp = fake_comfy.folder_paths
    return {t: [n.replace("\\", "/") for n in fp.get_filename_list(t)] for t in ("checkpoints", "vae")}


def test_hard_links_count_once_and_symlinks_are_shown_as_links_that_free_nothing(fake_comfy, tmp_path):
    ckpt = fake_comfy.models / "checkpoints"
    place_file(ckpt / "big model ü.safetensors", b"a" * 1000)
    os.link(ckpt / "big model ü.safetensors", ckpt / "hardlink.safetensors")
    outside = place_file(tmp_path / "elsewhere" / "target.safetensors", b"b" * 300)
    (ckpt / "link.safetensors").symlink_to(outside)
    installed = listed(fake_comfy)
    infos = disk.stat_listing(installed, fake_comfy.folder_paths.get_full_path)
    first = {("checkpoints", n): NOW - 90 * DAY for n in installed["checkpoints"]}
    report = model_report([], installed, first, NOW, disk.identities(infos))
    disk.attach_sizes(report, infos)
    rows = {r["model_name"]: r for r in report[0]["models"]}
    assert rows["big model ü.safetensors"]["size"] == rows["hardlink.safetensors"]["size"] == 1000
    assert sorted(r["counted_bytes"] for r in rows.values()) == [0, 0, 1000]
    assert rows["link.safetensors"]["link"] == str(outside) and rows["link.safetensors"]["counted_bytes"] == 0
    assert disk.totals(report)["tiers"]["safe_to_remove"] == {"bytes": 1000, "files": 3}


def test_a_used_name_makes_every_other_name_of_the_same_file_used(fake_comfy):
    ckpt = fake_comfy.models / "checkpoints"
    place_file(ckpt / "a.safetensors", b"a" * 10)
    os.link(ckpt / "a.safetensors", ckpt / "b.safetensors")
    installed = listed(fake_comfy)
    infos = disk.stat_listing(installed, fake_comfy.folder_paths.get_full_path)
    first = {("checkpoints", n): NOW - 90 * DAY for n in installed["checkpoints"]}
    rows = [("checkpoints", "a.safetensors", 1, NOW - DAY, NOW - DAY)]
    report = model_report(rows, installed, first, NOW, disk.identities(infos))
    assert {r["model_name"]: r["status"] for r in report[0]["models"]} == {"a.safetensors": "used", "b.safetensors": "used"}


def test_bytes_of_a_shared_file_go_to_its_name_nearest_to_used(fake_comfy):
    place_file(fake_comfy.models / "checkpoints" / "shared.safetensors", b"x" * 50)
    (fake_comfy.models / "vae").mkdir()
    os.link(fake_comfy.models / "checkpoints" / "shared.safetensors", fake_comfy.models / "vae" / "shared.safetensors")
    installed = listed(fake_comfy)
    infos = disk.stat_listing(installed, fake_comfy.folder_paths.get_full_path)
    report = [
        {"model_type": t, "models": [{"model_name": "shared.safetensors", "status": status, "installed": True}]}
        for t, status in (("checkpoints", "safe_to_remove"), ("vae", "used"))
    ]
    disk.attach_sizes(report, infos)
    totals = disk.totals(report)["tiers"]
    assert totals["safe_to_remove"]["bytes"] == 0 and totals["used"]["bytes"] == 50
    assert report[0]["models"][0]["same_file_as"] == "vae/shared.safetensors"


# --------------------------------------------------------------------------- saved workflows and the keep list

UI_WORKFLOW = {
    "nodes": [{"id": 1, "type": "CheckpointLoaderSimple", "widgets_values": ["portrait.safetensors"]}],
    "definitions": {"subgraphs": [
        {"nodes": [{"id": 2, "type": "PackNode", "widgets_values": ["sub\\in subgraph.safetensors", 7]}]},
    ]},
}


def save_workflow(base, name, data, user="default"):
    path = base / "user" / user / "workflows" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_saved_workflows_name_models_and_node_types_in_subgraphs_and_in_the_api_format(fake_comfy):
    save_workflow(fake_comfy.base, "portrait.json", UI_WORKFLOW)
    save_workflow(fake_comfy.base, "folder/api.json", {"5": {"class_type": "VAELoader", "inputs": {"vae_name": "v.safetensors"}}})
    save_workflow(fake_comfy.base, "broken.json", "{not json")
    save_workflow(fake_comfy.base, "deep.json", "[" * 100_000 + "]" * 100_000)
    save_workflow(fake_comfy.base, "theirs.json", UI_WORKFLOW, user="alice")
    found = workflows.SavedWorkflows().scan()
    assert set(found) == {"portrait.json", "folder/api.json", "broken.json", "deep.json", "alice: theirs.json"}
    assert found["portrait.json"].node_types == {"CheckpointLoaderSimple", "PackNode"}
    assert "sub/in subgraph.safetensors" in found["portrait.json"].values
    installed = {"checkpoints": ["portrait.safetensors", "sub/in subgraph.safetensors"], "vae": ["v.safetensors"]}
    references = workflows.model_references(found, installed)
    assert sorted(references[("checkpoints", "portrait.safetensors")]) == ["alice: theirs.json", "portrait.json"]
    assert references[("vae", "v.safetensors")] == ["folder/api.json"]
    assert workflows.package_references(found, {"PackNode": "Pack"}) == {"Pack": ["alice: theirs.json", "portrait.json"]}


def test_the_scan_version_changes_only_when_a_workflow_changes(fake_comfy):
    saved = workflows.SavedWorkflows()
    path = save_workflow(fake_comfy.base, "a.json", UI_WORKFLOW)
    saved.scan()
    version = saved.version
    saved.scan()
    assert saved.version == version
    path.write_text(json.dumps({"nodes": []}) + " " * 10)
    saved.scan()
    assert saved.version == version + 1


def test_a_model_in_a_saved_workflow_is_never_safe_to_remove_and_says_which_workflows():
    installed = {"checkpoints": ["old.safetensors", "other.safetensors"]}
    first = {("checkpoints", n): NOW - 400 * DAY for n in installed["checkpoints"]}
    refs = {("checkpoints", "old.safetensors"): ["portrait.json", "upscale.json"]}
    report = model_report([], installed, first, NOW, evidence=evidence.combine(refs, set()))
    rows = {r["model_name"]: r for r in report[0]["models"]}
    assert rows["old.safetensors"]["status"] == "consider_removing"
    assert rows["old.safetensors"]["reasons"] == [
        "never used since 2025-12-11", "used by 2 saved workflows: portrait.json, upscale.json"
    ]
    assert rows["other.safetensors"]["status"] == "safe_to_remove"
    assert rows["other.safetensors"]["reasons"] == ["never used since 2025-12-11"]


def test_a_kept_item_is_never_suggested_for_removal():
    kept = evidence.combine({}, {("checkpoints", "pinned.safetensors")})
    report = model_report([("checkpoints", "pinned.safetensors", 1, NOW - 300 * DAY, NOW - 300 * DAY)],
                          {"checkpoints": ["pinned.safetensors"]}, {}, NOW, evidence=kept)
    row = report[0]["models"][0]
    assert row["status"] == "unused_new" and row["reasons"][0].startswith("last used ") and "kept" in row["reasons"][1]
    packs = package_report([], [InstalledPackage("Pack", ["N"])], {"N": "Pack"}, {"Pack": NOW - 300 * DAY}, NOW,
                           evidence=evidence.combine({"Pack": ["a.json"]}, {"Pack"}))
    assert packs[0]["status"] == "unused_new" and len(packs[0]["reasons"]) == 3


def test_every_status_but_used_has_a_reason():
    rows = [("checkpoints", "gone.safetensors", 2, NOW - 10 * DAY, NOW - 10 * DAY),
            ("checkpoints", "fresh.safetensors", 1, NOW - DAY, NOW - DAY)]
    installed = {"checkpoints": ["fresh.safetensors", "new.safetensors", "idle.safetensors"]}
    first = {("checkpoints", "idle.safetensors"): NOW - 45 * DAY}
    for row in model_report(rows, installed, first, NOW)[0]["models"]:
        assert bool(row["reasons"]) == (row["status"] != "used"), row


# --------------------------------------------------------------------------- quarantine safety


@pytest.fixture
def decisions(fake_comfy):
    """The decisions of a fake ComfyUI whose own pack is named "us", journalled in its user folder."""
    return Decisions(str(fake_comfy.base / "user" / "__nodes_stats"), PackageMapper(own_pack="us").is_protected)


@pytest.fixture
def quarantine_setup(fake_comfy, decisions):
    place_file(fake_comfy.models / "checkpoints" / "sub dir" / "ünïcode model.safetensors", b"m" * 64)
    place_file(fake_comfy.models / "vae" / "keep.safetensors", b"v")
    place_file(fake_comfy.base / "secret.safetensors", b"s")
    return fake_comfy, decisions, listed(fake_comfy)


def tree(base):
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


def test_quarantine_moves_the_file_outside_every_registered_folder_and_restore_puts_it_back(quarantine_setup):
    fake_comfy, decisions, installed = quarantine_setup
    name = "sub dir/ünïcode model.safetensors"
    moved = decisions.quarantine("checkpoints", name, installed, by="127.0.0.1")
    quarantine = fake_comfy.models / ".usage-stats-quarantine"
    assert moved["to"] == str(quarantine / "checkpoints" / "sub dir" / "ünïcode model.safetensors")
    assert name not in fake_comfy.folder_paths.get_filename_list("checkpoints")
    assert not any(moved["to"].startswith(f + os.sep) for f in registered_folders())
    [entry] = decisions.quarantined()
    decisions.restore(entry["id"], by="127.0.0.1")
    assert (fake_comfy.models / "checkpoints" / name).read_bytes() == b"m" * 64
    assert decisions.quarantined() == [] and [a["action"] for a in decisions.actions()] == ["restore", "quarantine"]


@pytest.mark.parametrize("model_type, name", [
    ("checkpoints", "../../secret.safetensors"),
    ("checkpoints", "/etc/passwd"),
    ("checkpoints", "sub dir/../../vae/keep.safetensors"),
    ("checkpoints", "missing.safetensors"),
    ("nonexistent", "keep.safetensors"),
])
def test_refused_quarantines_change_nothing_on_disk(quarantine_setup, model_type, name):
    fake_comfy, decisions, installed = quarantine_setup
    before = tree(fake_comfy.base)
    with pytest.raises(ActionRefused):
        decisions.quarantine(model_type, name, installed, by="test")
    assert tree(fake_comfy.base) == before and decisions.actions() == []


def test_a_quarantine_folder_inside_a_registered_folder_is_never_used(quarantine_setup):
    fake_comfy, decisions, installed = quarantine_setup
    fake_comfy.folder_paths.add_model_folder_path("everything", str(fake_comfy.models))
    moved = decisions.quarantine("vae", "keep.safetensors", installed, by="test")
    assert moved["to"] == str(fake_comfy.base / ".usage-stats-quarantine" / "vae" / "keep.safetensors")


def test_restore_never_overwrites_a_file_that_came_back(quarantine_setup):
    fake_comfy, decisions, installed = quarantine_setup
    decisions.quarantine("vae", "keep.safetensors", installed, by="test")
    place_file(fake_comfy.models / "vae" / "keep.safetensors", b"new")
    with pytest.raises(ActionRefused, match="exists again"):
        decisions.restore(decisions.quarantined()[0]["id"], by="test")
    assert (fake_comfy.models / "vae" / "keep.safetensors").read_bytes() == b"new"


def test_empty_deletes_only_after_the_exact_size_is_confirmed(quarantine_setup):
    fake_comfy, decisions, installed = quarantine_setup
    decisions.quarantine("checkpoints", "sub dir/ünïcode model.safetensors", installed, by="test")
    with pytest.raises(ActionRefused, match="holds 64 bytes in 1 files"):
        decisions.empty(63, by="test")
    assert len(decisions.quarantined()) == 1
    assert decisions.empty(64, by="test") == {"deleted": 1, "bytes": 64}
    assert not list((fake_comfy.models / ".usage-stats-quarantine").rglob("*.safetensors"))


def test_packs_move_to_and_from_the_disabled_folder_but_never_the_manager_or_us(fake_comfy, decisions):
    (fake_comfy.base / "custom_nodes" / "SomePack").mkdir(parents=True)
    (fake_comfy.base / "custom_nodes" / "ComfyUI-Manager").mkdir()
    zipped = fake_comfy.base / "custom_nodes" / "ComfyUI-Manager-main"  # as a GitHub zip extracts it
    zipped.mkdir()
    (zipped / "pyproject.toml").write_text('[project]\nname = "comfyui-manager"\n')
    decisions.disable_pack("SomePack", by="test")
    assert (fake_comfy.base / "custom_nodes" / ".disabled" / "SomePack").is_dir()
    decisions.enable_pack("SomePack", by="test")
    assert (fake_comfy.base / "custom_nodes" / "SomePack").is_dir()
    for name in ("ComfyUI-Manager", "ComfyUI-Manager-main", "us", "../x", ".disabled"):
        with pytest.raises(ActionRefused):
            decisions.disable_pack(name, by="test")
    assert zipped.is_dir() and (fake_comfy.base / "custom_nodes" / "ComfyUI-Manager").is_dir()


@pytest.mark.parametrize("listen, beyond", [
    (None, False), ("127.0.0.1", False), ("localhost,::1", False), ("0.0.0.0", True), ("127.0.0.1,192.168.1.5", True),
    ("0.0.0.0,::", True), ("myhost", True),
])
def test_which_listen_addresses_are_beyond_loopback(listen, beyond):
    assert access.listens_beyond_loopback(listen) is beyond


# --------------------------------------------------------------------------- who may act, over HTTP


def answer(tmp_path, listen: str, allow: bool, path: str = "/nodes-stats/quarantine") -> tuple[int, dict]:
    """POST an action to a real aiohttp app holding our routes, with ComfyUI said to listen on `listen`."""
    from usage_stats.recording.settings import CONFIG_FIELDS, Config

    writer = Writer(lambda: UsageStore(str(tmp_path / "usage.db")), PackageMapper(own_pack="us"), ModelMapper())
    writer.config = Config(CONFIG_FIELDS, {"allow_remote_actions": allow})  # as restored at start; never started
    app = AppClient(writer, str(tmp_path / "decisions"), listen=listen)
    try:
        return app.json("POST", path, {"models": []})
    finally:
        app.close()


def test_actions_are_refused_while_comfyui_listens_beyond_loopback_unless_the_setting_allows(tmp_path):
    status, data = answer(tmp_path, "0.0.0.0", allow=False)
    assert status == 403 and "allow_remote_actions" in data["error"]
    status, data = answer(tmp_path, "0.0.0.0", allow=True)
    assert status == 400 and "confirm" in data["error"]  # past the check, stopped by the missing confirmation
    assert answer(tmp_path, "127.0.0.1", allow=False)[0] == 400


# --------------------------------------------------------------------------- duplicates


def test_duplicates_are_files_of_equal_content_not_equal_size_nor_other_names_of_one_file(fake_comfy, store):
    from usage_stats.reports.duplicates import find_duplicates
    from usage_stats.support.jobs import Job

    ckpt, vae = fake_comfy.models / "checkpoints", fake_comfy.models / "vae"
    place_file(ckpt / "copy one ü.safetensors", b"D" * 3000)
    place_file(vae / "copy two with spaces.safetensors", b"D" * 3000)
    place_file(ckpt / "same size other content.safetensors", b"E" * 3000)
    os.link(ckpt / "copy one ü.safetensors", ckpt / "hard link.safetensors")
    (ckpt / "symlink.safetensors").symlink_to(ckpt / "copy one ü.safetensors")
    place_file(ckpt / "unique.safetensors", b"U" * 10)
    installed = listed(fake_comfy)
    saved = []

    def run(cached):
        job = Job("test")
        full_path = fake_comfy.folder_paths.get_full_path
        job.start(lambda progress: find_duplicates(installed, full_path, cached, lambda h, _: saved.extend(h), progress))
        job.wait(10)
        assert job.state == "done", job.status()
        return job.result

    result = run({})
    [group] = result["groups"]
    names = sorted(sorted(f["model_name"] for f in copy) for copy in group["files"])
    one_file = ["copy one ü.safetensors", "hard link.safetensors", "symlink.safetensors"]
    assert names == [one_file, ["copy two with spaces.safetensors"]]
    assert group["wasted_bytes"] == result["wasted_bytes"] == 3000
    assert result["files_hashed"] == 3  # the three 3000-byte files; the 10-byte one shares its size with nothing
    store.save_hashes(saved)
    again = run(store.cached_hashes())
    assert again["files_hashed"] == 0 and again["groups"] == result["groups"]


def test_the_search_remembers_each_name_s_hash_and_hashes_lone_sizes_only_when_asked(fake_comfy, store):
    """Names of one hash are what a shared store matches machines' files by (a file of a size nothing
    else has is hashed only for a shared store: alone here, it may be another machine's file by another name)."""
    from usage_stats.reports.duplicates import find_duplicates
    from usage_stats.support.jobs import Progress

    ckpt = fake_comfy.models / "checkpoints"
    place_file(ckpt / "a.safetensors", b"D" * 3000)
    place_file(ckpt / "b.safetensors", b"D" * 3000)
    place_file(ckpt / "lone.safetensors", b"L" * 10)
    search = partial(find_duplicates, listed(fake_comfy), fake_comfy.folder_paths.get_full_path)

    search(store.cached_hashes(), store.save_hashes, Progress(threading.Event()))
    assert _digests(store) == {("checkpoints", "a.safetensors"), ("checkpoints", "b.safetensors")}
    result = search(store.cached_hashes(), store.save_hashes, Progress(threading.Event()), every_file=True)
    assert result["files_hashed"] == 1 and len(result["groups"]) == 1  # only the lone file was new
    assert ("checkpoints", "lone.safetensors") in _digests(store)


def _digests(store) -> set[tuple[str, str]]:
    with closing(sqlite3.connect(store.path)) as db:
        return set(db.execute("SELECT model_type, model_name FROM model_digests"))


def test_a_cancelled_job_stops_and_says_so():
    from usage_stats.support.jobs import Job

    job = Job("test")

    def forever(progress):
        while True:
            progress.step()

    assert job.start(forever) and not job.start(forever)
    assert job.cancel()
    job.wait(5)
    assert job.status()["state"] == "cancelled"


def test_inodes_beyond_the_signed_64_bit_range_are_cached(store):
    stamp = ((1 << 64) - 5, (1 << 63) + 7, 10, 123)
    store.save_hashes([(stamp, "abc")])
    assert store.cached_hashes() == {stamp: "abc"}


# --------------------------------------------------------------------------- history from past outputs

PAST_PROMPT = {"3": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "past.safetensors"}},
               "9": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "ComfyUI"}}}


def save_png(path, prompt_text=None, workflow=None, mtime=NOW - 200 * DAY):
    """An image written the way ComfyUI's SaveImage writes it: PIL with PngInfo text chunks."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    metadata = PngInfo()
    if prompt_text is not None:
        metadata.add_text("prompt", prompt_text)
    metadata.add_text("workflow", json.dumps(workflow or {"nodes": []}))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), (200, 10, 10)).save(path, pnginfo=metadata, compress_level=4)
    os.utime(path, (mtime, mtime))
    return path


def test_png_text_reads_savimage_chunks_and_survives_truncated_and_hostile_files(tmp_path):
    import zlib

    from usage_stats.evidence.outputs import png_text, prompt_of

    whole = save_png(tmp_path / "ok.png", json.dumps(PAST_PROMPT))
    assert json.loads(png_text(str(whole))["prompt"]) == PAST_PROMPT
    data = whole.read_bytes()
    cut = data.index(b"tEXtprompt") + 20
    (tmp_path / "truncated.png").write_bytes(data[:cut])
    assert png_text(str(tmp_path / "truncated.png")) == {}
    (tmp_path / "not a png.png").write_bytes(b"hello")
    assert png_text(str(tmp_path / "not a png.png")) == {}
    bomb = b"prompt\0\0" + zlib.compress(b"0" * (40 * 1024 * 1024))
    chunk = len(bomb).to_bytes(4, "big") + b"zTXt" + bomb + b"\0\0\0\0"
    (tmp_path / "bomb.png").write_bytes(data[:8] + chunk + data[8:])
    assert "prompt" in png_text(str(tmp_path / "bomb.png"))  # the bomb is skipped; the real chunk after it is read
    for hostile in ("[" * 100_000, '{"1": "x"}', "not json", '"a string"', '{"1": {"class_type": 7}}'):
        assert prompt_of(hostile) is None


def test_history_import_counts_each_past_prompt_once_even_when_run_twice(tmp_path, store):
    from usage_stats.domain.values import PromptUse
    from usage_stats.evidence.outputs import import_history
    from usage_stats.support.jobs import Job

    output = tmp_path / "output"
    save_png(output / "ComfyUI_00001_.png", json.dumps(PAST_PROMPT))
    save_png(output / "ComfyUI_00002_.png", json.dumps(PAST_PROMPT))  # a batch of two images: one prompt
    save_png(output / "sub" / "hostile.png", '{"1": {"class_type": "X", "inputs": ' * 5000)
    save_png(output / "recent.png", json.dumps(PAST_PROMPT).replace("past", "recent"), mtime=NOW + 10)
    whole = save_png(tmp_path / "x.png", json.dumps(PAST_PROMPT).replace("past", "cut")).read_bytes()
    (output / "truncated.png").write_bytes(whole[: whole.index(b"tEXtprompt") + 30])  # cut inside the prompt chunk

    def extract(ts, prompt):
        models = {("checkpoints", n["inputs"]["ckpt_name"]) for n in prompt.values() if "ckpt_name" in n.get("inputs", {})}
        return PromptUse(int(ts), {n["class_type"]: "__builtin__" for n in prompt.values()}, frozenset(models))

    def run():
        job = Job("test")
        job.start(lambda progress: import_history(str(output), NOW, extract, store.record_imported, progress))
        job.wait(10)
        assert job.state == "done", job.status()
        return job.result

    first = run()
    assert (first["images"], first["imported"], first["already_imported"], first["newer_than_tracking"]) == (5, 1, 1, 1)
    second = run()
    assert (second["imported"], second["already_imported"]) == (0, 2)
    assert store.model_rows() == [("checkpoints", "past.safetensors", 1, NOW - 200 * DAY, NOW - 200 * DAY)]
    assert store.prompt_count() == 1


@pytest.fixture
def other_filesystem(tmp_path):
    """A folder on another filesystem than tmp_path (the tmpfs at /dev/shm), removed afterwards."""
    import shutil
    import tempfile

    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a filesystem of its own")
    folder = tempfile.mkdtemp(dir="/dev/shm", prefix="usage-stats-test-")
    yield Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


def test_a_model_folder_linked_to_another_disk_quarantines_beside_its_real_files(fake_comfy, decisions, other_filesystem):
    real = other_filesystem / "checkpoints"
    place_file(real / "far.safetensors", b"f" * 8)
    fake_comfy.models.mkdir(exist_ok=True)
    (fake_comfy.models / "checkpoints").symlink_to(real, target_is_directory=True)
    moved = decisions.quarantine("checkpoints", "far.safetensors", listed(fake_comfy), by="test")
    assert moved["to"] == str(other_filesystem / ".usage-stats-quarantine" / "checkpoints" / "far.safetensors")
    assert not (real / "far.safetensors").exists()


def test_without_a_quarantine_on_the_same_filesystem_nothing_moves(fake_comfy, decisions, other_filesystem):
    real = other_filesystem / "checkpoints"
    place_file(real / "far.safetensors", b"f" * 8)
    fake_comfy.models.mkdir(exist_ok=True)
    (fake_comfy.models / "checkpoints").symlink_to(real, target_is_directory=True)
    fake_comfy.folder_paths.add_model_folder_path("whole_tmpfs", "/dev/shm")  # every same-disk place is now listed
    with pytest.raises(ActionRefused, match="same filesystem"):
        decisions.quarantine("checkpoints", "far.safetensors", listed(fake_comfy), by="test")
    assert (real / "far.safetensors").read_bytes() == b"f" * 8 and decisions.quarantined() == []


# --------------------------------------------------------------------------- files that are not files


def make_fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def make_socket(path: Path):
    """A listening Unix socket at `path` (short names only: sun_path holds ~100 bytes); close it when done."""
    import socket

    path.parent.mkdir(parents=True, exist_ok=True)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    return server


def finishes(work, timeout: float = 10.0):
    """Run `work()` on a thread; fail instead of hanging the suite if it blocks."""
    import threading

    outcome = {}

    def run():
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed to the test below
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "blocked on a file that is not a regular file"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_a_fifo_swapped_in_after_the_check_is_refused_without_waiting(tmp_path, monkeypatch):
    from usage_stats.support import files

    fifo = make_fifo(tmp_path / "image.png")
    with pytest.raises(files.SkippedFile, match="not a regular file"):
        finishes(lambda: files.open_regular(str(fifo)))
    monkeypatch.setattr(files, "regular_stat", lambda path: os.stat(tmp_path))  # it was regular when checked
    with pytest.raises(files.SkippedFile, match="not a regular file"):
        finishes(lambda: files.open_regular(str(fifo)))


def test_history_import_reports_fifos_sockets_and_empty_images_and_reads_the_rest(tmp_path, store):
    from usage_stats.domain.values import PromptUse
    from usage_stats.evidence.outputs import import_history
    from usage_stats.support.jobs import Job

    output = tmp_path / "o"
    save_png(output / "good.png", json.dumps(PAST_PROMPT))
    make_fifo(output / "fifo.png")
    listening = make_socket(output / "s.png")
    place_file(output / "empty.png", b"")
    job = Job("test")
    try:
        job.start(lambda progress: import_history(str(output), NOW, lambda ts, p: PromptUse(int(ts), {}, frozenset()),
                                                  store.record_imported, progress))
        job.wait(10)
    finally:
        listening.close()
    status = job.status()
    assert status["state"] == "done", status
    assert (status["result"]["images"], status["result"]["imported"]) == (4, 1)
    assert sorted((Path(s["path"]).name, s["reason"]) for s in status["skipped"]) == [
        ("empty.png", "empty file"), ("fifo.png", "not a regular file"), ("s.png", "not a regular file")]
    assert status["skipped_count"] == 3


def test_a_cancelled_history_import_keeps_what_it_read_and_can_start_again(tmp_path, store):
    import threading

    from usage_stats.domain.values import PromptUse
    from usage_stats.evidence.outputs import import_history
    from usage_stats.support.jobs import Job

    output = tmp_path / "output"
    for number in range(10):
        save_png(output / f"{number:02}.png", json.dumps(PAST_PROMPT).replace("past", f"past {number}"))
    reached, release = threading.Event(), threading.Event()
    calls = []

    def slow_extract(ts, prompt):
        """Stands for a slow disk: the fifth image is still being read when the user cancels."""
        calls.append(prompt)
        if len(calls) == 5:
            reached.set()
            release.wait(10)
        return PromptUse(int(ts), {}, frozenset({("checkpoints", prompt["3"]["inputs"]["ckpt_name"])}))

    job = Job("history import")
    assert job.start(lambda progress: import_history(str(output), NOW, slow_extract, store.record_imported, progress))
    assert reached.wait(10)
    assert job.cancel()
    release.set()
    job.wait(10)
    assert job.status()["state"] == "cancelled"
    assert store.prompt_count() == 5  # the five prompts read before the cancel are recorded
    assert job.start(lambda progress: import_history(str(output), NOW, slow_extract, store.record_imported, progress))
    job.wait(10)
    assert job.status()["state"] == "done" and job.result["imported"] == 5 and job.result["already_imported"] == 5
    assert store.prompt_count() == 10


def test_a_cancel_is_heard_inside_a_huge_text_chunk(tmp_path):
    from usage_stats.evidence.outputs import MAX_TEXT_BYTES, READ_BYTES, png_text
    from usage_stats.support.jobs import Cancelled

    data = save_png(tmp_path / "ok.png", json.dumps(PAST_PROMPT)).read_bytes()
    text = b"comment\0" + b"x" * (MAX_TEXT_BYTES - 8)
    chunk = len(text).to_bytes(4, "big") + b"tEXt" + text + b"\0\0\0\0"
    (tmp_path / "huge.png").write_bytes(data[:8] + chunk + data[8:])
    pieces = []

    def cancel_after_two_pieces():
        pieces.append(1)
        if len(pieces) > 2:
            raise Cancelled()

    with pytest.raises(Cancelled):
        png_text(str(tmp_path / "huge.png"), check=cancel_after_two_pieces)
    assert len(pieces) == 3 < MAX_TEXT_BYTES // READ_BYTES


def test_duplicate_search_and_sizes_pass_over_a_fifo_listed_as_a_model(fake_comfy, store):
    from usage_stats.reports.duplicates import find_duplicates
    from usage_stats.support.jobs import Job

    ckpt = fake_comfy.models / "checkpoints"
    place_file(ckpt / "one.safetensors", b"D" * 3000)
    place_file(ckpt / "two.safetensors", b"D" * 3000)
    make_fifo(ckpt / "pipe.safetensors")
    installed = {"checkpoints": sorted(os.listdir(ckpt))}
    assert "pipe.safetensors" in installed["checkpoints"]  # listed the way ComfyUI lists it, by name

    def on_disk(model_type, name):  # resolves without ComfyUI's isfile() check, as a race would
        return str(fake_comfy.models / model_type / name)

    job = Job("duplicate search")
    job.start(lambda progress: find_duplicates(installed, on_disk, {}, lambda hashes, names: None, progress))
    job.wait(10)
    status = job.status()
    assert status["state"] == "done", status
    assert [[f["model_name"] for [f] in group["files"]] for group in status["result"]["groups"]] == [
        ["one.safetensors", "two.safetensors"]]
    assert status["skipped"] == [{"path": on_disk("checkpoints", "pipe.safetensors"), "reason": "not a regular file"}]
    infos = finishes(lambda: disk.stat_listing(installed, on_disk))
    assert set(infos) == {("checkpoints", "one.safetensors"), ("checkpoints", "two.safetensors")}


def test_a_cancelled_duplicate_search_keeps_the_hashes_it_finished(fake_comfy):
    import threading

    from usage_stats.reports.duplicates import find_duplicates
    from usage_stats.support.jobs import Cancelled, Progress

    for name in "abc":
        place_file(fake_comfy.models / "checkpoints" / f"{name}.safetensors", b"S" * 3000)
    cancel, saved = threading.Event(), []

    class CancelledAfterOneFile(Progress):
        """The user cancels once the first file is hashed."""

        def step(self, amount: int = 1) -> None:
            if self.done >= 3000:
                cancel.set()
            super().step(amount)

    with pytest.raises(Cancelled):
        find_duplicates(listed(fake_comfy), fake_comfy.folder_paths.get_full_path, {},
                        lambda hashes, names: saved.append((hashes, names)), CancelledAfterOneFile(cancel))
    [(hashes, names)] = saved
    assert len(hashes) == 1 and [name for _, name, _ in names] == ["a.safetensors"]
