"""Benchmarks of comfyui-usage-stats: hook cost, POST overhead, ingest, read latency, storage, start-up.

Run through `scripts/bench` (it sets up the real ComfyUI and its Python). `--quick` runs reduced sizes
(CI-like, a few minutes); the full run is what docs/benchmarks.md reports. Prints one Markdown table.
Real-server sections start real ComfyUI processes (tests/comfyui.py) in temporary directories.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import json
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
sys.path.insert(0, str(TESTS / "fake_comfyui"))
sys.path.insert(0, str(TESTS))
_package = types.ModuleType("usage_stats")  # the checkout as a package, without its ComfyUI wiring
_package.__path__ = [str(REPO)]
sys.modules.setdefault("usage_stats", _package)

from comfyui import PACK_NAME, ComfyServer, place_file, until  # noqa: E402
sys.modules.setdefault("bench", sys.modules[__name__])  # bench_shared's rows go into this ROWS when run as a script

ROWS: list[tuple[str, str, str, str]] = []  # (section, measure, figure, target)
HEAVY_CLIENTS = 1  # clients looping on /models while a cheap GET measures the event loop (2 would saturate 2 cores)


def row(section: str, measure: str, figure: str, target: str = "") -> None:
    ROWS.append((section, measure, figure, target))
    print(f"  {section} | {measure} | {figure} | {target}", flush=True)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def size(count: int) -> str:
    return f"{count:,} B" if count < 10_000 else f"{count / 1e3:,.0f} kB"


def ms(value: float) -> str:
    return f"{value * 1000:.2f} ms"


# --------------------------------------------------------------------------- prompts


def api_prompt(nodes: int, seed: int = 0, checkpoint: str = "bench.safetensors") -> dict:
    """A realistic API-format prompt of `nodes` nodes: a loader chain, samplers, and an output."""
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a photo of a cat, best quality", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "seed": seed,
            "steps": 1, "cfg": 1.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "bench"}},
    }
    for i in range(8, nodes + 1):  # extra text encodes hanging off the clip: still valid, still cheap
        prompt[str(i)] = {"class_type": "CLIPTextEncode", "inputs": {"text": f"extra {i}", "clip": ["1", 1]}}
    return prompt


FIVE_MODELS = [("checkpoints", "ckpt.safetensors"), ("vae", "vae.safetensors"), ("upscale_models", "up.pth"),
               ("text_encoders", "t5.safetensors"), ("text_encoders", "clip_l.safetensors")]


def five_model_prompt(seed: int) -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "ckpt.safetensors"}},
        "2": {"class_type": "VAELoader", "inputs": {"vae_name": "vae.safetensors"}},
        "3": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "up.pth"}},
        "4": {"class_type": "TripleCLIPLoader", "inputs": {"clip_name1": "t5.safetensors", "clip_name2": "clip_l.safetensors",
                                                           "clip_name3": "clip_l.safetensors"}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": f"prompt {seed}", "clip": ["4", 0]}},
        "6": {"class_type": "LoraLoader", "inputs": {"model": ["1", 0], "lora_name": "l.safetensors", "strength_model": 1.0}},
    }


# --------------------------------------------------------------------------- unit-level (fake ComfyUI)


def fake_comfy(base: Path):
    import folder_paths
    import nodes

    folder_paths.configure(base)
    nodes.reset()
    for model_type, name in FIVE_MODELS:
        place_file(base / "models" / model_type / name)
    return folder_paths


def new_writer(base: Path, queue_size: int):
    from usage_stats.mapper import ModelMapper, PackageMapper
    from usage_stats.recording.writer import Writer
    from usage_stats.tracker import UsageStore

    path = base / "user" / "__nodes_stats" / "usage_stats.db"
    return Writer(lambda: UsageStore(str(path)), PackageMapper(own_pack=PACK_NAME), ModelMapper(), queue_size=queue_size), path


def bench_hook(quick: bool) -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-hook-"))
    fake_comfy(base)
    samples = 20_000 if quick else 200_000
    writer, _ = new_writer(base, queue_size=samples + 10)  # not started: we time the hook alone
    for nodes in (10, 60):
        body = {"prompt": api_prompt(nodes), "client_id": "bench", "extra_data": {"extra_pnginfo": {"workflow": {}}}}
        timer = time.perf_counter_ns
        times = []
        for _ in range(samples):
            start = timer()
            writer.on_prompt(body)
            times.append(timer() - start)
        while not writer._queue.empty():
            writer._queue.get_nowait()
        times_us = [t / 1000 for t in times]
        row("1 hook", f"on_prompt, {nodes}-node prompt ({samples:,} calls)",
            f"median {statistics.median(times_us):.2f} µs, p95 {pct(times_us, 95):.2f} µs", "≤ 20 µs median")
    shutil.rmtree(base, ignore_errors=True)


def bench_wrapper(quick: bool) -> None:
    """What LoadWatch's wrapper of folder_paths.get_full_path adds to each call (the runtime witness)."""
    from usage_stats.memory.manager import LoadWatch, wrap

    base = Path(tempfile.mkdtemp(prefix="bench-wrapper-"))
    original = fake_comfy(base).get_full_path
    calls = 20_000 if quick else 200_000
    watch = LoadWatch()
    watch.on_used = lambda prompt_id, key: None
    executing = {"now": None}
    watch._executing = lambda: executing["now"]

    def per_call(function) -> float:
        start = time.perf_counter()
        for _ in range(calls // 10):
            function("checkpoints", "ckpt.safetensors")
        return (time.perf_counter() - start) / (calls // 10) * 1e6

    holder = types.SimpleNamespace(get_full_path=original)  # wrapped as LoadWatch.install wraps folder_paths
    wrap(holder, "get_full_path", None, watch._after_resolve)
    runs: dict[str, list[float]] = {"raw": [], "outside": [], "inside": []}
    try:
        for _ in range(10):  # interleaved, so load from other jobs falls on all three alike
            executing["now"] = None
            runs["raw"].append(per_call(original))
            runs["outside"].append(per_call(holder.get_full_path))
            executing["now"] = ("bench-prompt", "1")
            runs["inside"].append(per_call(holder.get_full_path))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    raw, outside, inside = (statistics.median(runs[name]) for name in ("raw", "outside", "inside"))
    row("1 hook", f"get_full_path wrapper, added per call ({calls:,} calls; the call itself {raw:.2f} µs)",
        f"{outside - raw:.2f} µs outside a prompt, {inside - raw:.2f} µs while a prompt runs", "no measurable cost")


def bench_ingest(quick: bool) -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    fake_comfy(base)
    count = 20_000 if quick else 100_000
    writer, _ = new_writer(base, queue_size=count + 10)
    writer.start()
    writer.wait_ready(30)
    writer.on_prompt({"prompt": five_model_prompt(-1)})
    writer.flush(60)  # warm: introspection and listings cached, as in a running ComfyUI
    prompts = [{"prompt": five_model_prompt(i)} for i in range(count)]
    start = time.perf_counter()
    for body in prompts:
        writer.on_prompt(body)
    writer.flush(600)
    elapsed = time.perf_counter() - start
    recorded = writer.store.prompt_count()
    models = {(t, n) for t, n, *_ in writer.store.model_rows()}
    writer.stop()
    assert recorded == count + 1 and set(FIVE_MODELS) <= models, (recorded, models)
    row("3 ingest", f"writer: {count:,} prompts × 5 models, hook → on disk", f"{count / elapsed:,.0f} prompts/s",
        "≥ 20,000/s")
    shutil.rmtree(base, ignore_errors=True)


def build_history(path: Path, prompts: int, packs: int, nodes_per_pack: int, models: dict[str, list[str]],
                  spacing: int = 5, working_set: int | None = None) -> float:
    """A database as after `prompts` recorded prompts, one every `spacing` seconds back from now, written
    through UsageStore.record; returns seconds taken. Each prompt picks its custom nodes and models at
    random among all of them, or with `working_set`, among that many that change every week (as a person
    works on a few workflows at a time)."""
    from usage_stats.domain.values import PromptUse
    from usage_stats.tracker import UsageStore

    path.parent.mkdir(parents=True, exist_ok=True)
    store = UsageStore(str(path))
    rng = random.Random(1)
    class_types = [(f"Pack{p}Node{n}", f"bench_pack_{p}") for p in range(packs) for n in range(nodes_per_pack)]
    core = [(c, "__builtin__") for c in ("CheckpointLoaderSimple", "CLIPTextEncode", "KSampler", "VAEDecode", "SaveImage",
                                         "EmptyLatentImage")]
    model_keys = [(t, n) for t, names in models.items() for n in names]
    used_models = model_keys[: max(1, len(model_keys) // 4)]  # a quarter of the files ever used
    now = int(time.time())
    start = time.perf_counter()
    batch = []
    for i in range(prompts):
        ts = now - (prompts - i) * spacing
        node_pool, model_pool = class_types, used_models
        if working_set:
            week = ts // (7 * 86_400)
            node_pool = _window(class_types, week * working_set, working_set)
            model_pool = _window(used_models, week * working_set // 4, working_set // 4)
        nodes = dict(core + [rng.choice(node_pool) for _ in range(4)])
        used = frozenset(rng.choice(model_pool) for _ in range(5))
        batch.append(PromptUse(ts, nodes, used))
        if len(batch) == 10_000:
            store.record(batch)
            batch.clear()
    if batch:
        store.record(batch)
    elapsed = time.perf_counter() - start
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return elapsed


def _window(items: list, start: int, size: int) -> list:
    """`size` consecutive items from `start`, wrapping around."""
    return [items[(start + i) % len(items)] for i in range(max(1, size))]


def bench_storage(quick: bool, workdir: Path) -> Path:
    prompts = 100_000 if quick else 1_000_000
    models = {"checkpoints": [f"ckpt_{i:05d}.safetensors" for i in range(2000)]}
    path = workdir / "history" / "usage_stats.db"
    elapsed = build_history(path, prompts, packs=300, nodes_per_pack=10, models=models)
    size = os.path.getsize(path)
    with sqlite3.connect(path) as db:
        tables = {name: db.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0]
                  for name in ("prompt_log", "daily", "node_usage", "model_usage")}
    row("5 storage", f"DB after {prompts:,} prompts (10 node types, 5 models each)",
        f"{size / 1e6:.1f} MB = {size / prompts:.1f} B/prompt", "≤ 60 B/prompt")
    row("5 storage", "rows", ", ".join(f"{k} {v:,}" for k, v in tables.items()))
    row("3 ingest", f"store.record, {prompts:,} prompts in 10k batches", f"{prompts / elapsed:,.0f} prompts/s")
    bench_storage_bound(prompts, workdir, models)
    return path


def bench_storage_bound(prompts: int, workdir: Path, models: dict[str, list[str]]) -> None:
    """The same prompts spread over two years, after the writer's retention pass: per-prompt detail is kept
    for the default retention window; every total lives in the daily rollup, which grows with the days and
    the distinct items used per day, not with the prompts. Shown for prompts that pick among all 3,000 node
    types (a stress case: thousands of distinct items every day) and among a weekly working set of 40."""
    for label, working_set in (("random among 3,000 node types", None), ("weekly working set of 40", 40)):
        bench_retention(prompts, workdir, models, label, working_set)


def bench_retention(prompts: int, workdir: Path, models: dict[str, list[str]], label: str, working_set: int | None) -> None:
    from usage_stats.domain.values import DAY
    from usage_stats.recording.settings import CONFIG_FIELDS, defaults
    from usage_stats.tracker import UsageStore

    retention_days = defaults(CONFIG_FIELDS)["retention_days"]
    path = workdir / f"history-2y-{working_set}" / "usage_stats.db"
    build_history(path, prompts, packs=300, nodes_per_pack=10, models=models, spacing=2 * 365 * DAY // prompts,
                  working_set=working_set)
    store = UsageStore(str(path))
    start = time.perf_counter()
    pruned = 0
    while (batch := store.prune_detail(int(time.time()) - retention_days * DAY)):
        pruned += batch
    elapsed = time.perf_counter() - start
    store._db.execute("VACUUM")
    daily_rows = store._db.execute("SELECT COUNT(*) FROM daily").fetchone()[0]
    store.close()
    size = os.path.getsize(path)
    row("5 storage", f"DB after {prompts:,} prompts over 2 years ({label}), {retention_days} days kept in detail",
        f"{size / 1e6:.1f} MB = {size / prompts:.1f} B/prompt; {prompts - pruned:,} detail rows + {daily_rows:,} daily rows",
        "bounded by days × items, not prompts")
    row("5 storage", "retention: older detail deleted (5,000 rows per transaction)", f"{pruned:,} rows in {elapsed:.2f} s")


def bench_import(quick: bool) -> None:
    """Import of the extension in a fresh interpreter, against the fake PromptServer (ComfyUI prints 0.1 s steps)."""
    code = (
        "import sys, time, types; sys.path.insert(0, %r)\n"
        "import folder_paths, server, aiohttp.web; folder_paths.configure(%r); server.PromptServer()\n"
        "p = types.ModuleType('usage_stats'); p.__path__ = [%r]; sys.modules['usage_stats'] = p\n"
        "t = time.perf_counter(); import importlib; importlib.import_module('usage_stats.__init__')\n"
        "print(time.perf_counter() - t)"
    )
    scratch = tempfile.mkdtemp(prefix="bench-import-")
    code = code % (str(TESTS / "fake_comfyui"), scratch, str(REPO))
    times = []
    for _ in range(5 if quick else 15):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=scratch,
                             env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        times.append(float(out.stdout.strip().splitlines()[-1]))
    shutil.rmtree(scratch, ignore_errors=True)
    row("6 start-up", "import of the extension (fresh interpreter, fake PromptServer)",
        f"median {ms(statistics.median(times))}, p95 {ms(pct(times, 95))}", "≤ 30 ms")


# --------------------------------------------------------------------------- real ComfyUI


def post(url: str, body: bytes, timeout: float = 60) -> tuple[int, float]:
    request = urllib.request.Request(url + "/prompt", data=body, method="POST", headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        error.read()
        status = error.code
    return status, time.perf_counter() - start


def threads_of(server: ComfyServer) -> int:
    return len(os.listdir(f"/proc/{server.process.pid}/task"))


def cpu_seconds(server: ComfyServer) -> float:
    """CPU time the server process used so far, every thread (user + system, /proc/<pid>/stat)."""
    stat = Path(f"/proc/{server.process.pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_real_server(base: Path, with_extension: bool) -> ComfyServer:
    server = ComfyServer(base)
    place_file(server.models / "checkpoints" / "bench.safetensors")
    if not with_extension:
        (server.custom_nodes / PACK_NAME).unlink()
    return server


POST_KINDS = {
    "accepted": "bench.safetensors",
    "rejected": "missing.safetensors",  # not in the checkpoint list: validation answers 400, nothing is queued
}


def run_posts(server: ComfyServer, kind: str, count: int, workers: int, seed0: int) -> list[float]:
    """POST `count` 10-node prompts from `workers` clients; each must get the answer its kind expects."""
    expected = 200 if kind == "accepted" else 400
    bodies = [json.dumps({"prompt": api_prompt(10, seed0 + i, POST_KINDS[kind])}).encode() for i in range(count)]

    def one(body):
        status, took = post(server.url, body)
        assert status == expected, (kind, status)
        return took

    if workers == 1:
        return [one(b) for b in bodies]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, bodies))


def settle(server: ComfyServer) -> None:
    """Wait until ComfyUI has run every queued prompt, so no round pays for the one before it."""
    until(lambda: not any(server.get("/queue").values()), timeout=120, what="the queue to empty", server=server)


def bench_post_overhead(quick: bool, workdir: Path) -> None:
    """POST /prompt with the extension against without, on two real servers, robust to a shared machine.

    For each kind of prompt, rounds of short turns: a few sequential POSTs to one server, then the same to
    the other, which one goes first alternating turn by turn; then one burst to each, in alternating order.
    Each server's queue is empty before its turn, so no turn pays for prompts queued by the one before. Each
    round gives one ratio with/without (of the sequential median, the burst median and the burst p95); the
    figure is the median of those ratios, so a round disturbed by other jobs moves it little, and their
    interquartile range says how much the rounds disagreed. The CPU time each server used over a kind's
    rounds, per POST, is our share without the scheduling noise of a busy machine.
    """
    from usage_stats.recording.writer import MAX_GATHER_SECONDS

    rounds = 8 if quick else 24
    turns, per_turn, burst, clients = (4, 5, 48, 16) if quick else (6, 5, 64, 16)
    sequential = turns * per_turn
    servers = {name: make_real_server(workdir / f"post-{name}", name == "with") for name in ("with", "without")}
    for server in servers.values():
        server.start()
    try:
        for server in servers.values():  # warm: first validation lists the models, first execution loads torch bits
            for kind in POST_KINDS:
                run_posts(server, kind, 20, 1, 10_000)
            settle(server)
        threads_before = {name: threads_of(s) for name, s in servers.items()}
        samples = {(name, kind, mode): [] for name in servers for kind in POST_KINDS for mode in ("seq", "burst")}
        ratios = {(kind, figure): [] for kind in POST_KINDS for figure in ("seq median", "burst median", "burst p95")}
        cpu: dict[tuple[str, str], float] = {}  # (server, kind) -> CPU seconds per POST
        seed = 0
        for kind in POST_KINDS:
            cpu_before = {name: cpu_seconds(s) for name, s in servers.items()}
            for r in range(rounds):
                seq: dict[str, list[float]] = {"with": [], "without": []}
                for turn in range(turns):
                    for name in ("with", "without") if (r + turn) % 2 == 0 else ("without", "with"):
                        settle(servers[name])
                        seq[name] += run_posts(servers[name], kind, per_turn, 1, seed)
                    seed += per_turn
                flood: dict[str, list[float]] = {}
                for name in ("with", "without") if r % 2 == 0 else ("without", "with"):
                    settle(servers[name])
                    flood[name] = run_posts(servers[name], kind, burst, clients, seed)
                seed += burst
                for name in servers:
                    samples[(name, kind, "seq")] += seq[name]
                    samples[(name, kind, "burst")] += flood[name]
                figures = {name: {"seq median": statistics.median(seq[name]), "burst median": statistics.median(flood[name]),
                                  "burst p95": pct(flood[name], 95)} for name in servers}
                for figure in figures["with"]:
                    ratios[(kind, figure)].append(figures["with"][figure] / figures["without"][figure])
            for server in servers.values():
                settle(server)
            time.sleep(2 * MAX_GATHER_SECONDS)  # the writer may still be gathering the last prompts: let it write them
            for name, server in servers.items():
                cpu[(name, kind)] = (cpu_seconds(server) - cpu_before[name]) / (sequential + burst) / rounds
        threads_after = {name: threads_of(s) for name, s in servers.items()}
        for kind in POST_KINDS:
            for mode, figure, label, target in (
                ("seq", "seq median", f"{sequential} sequential in turns of {per_turn}", "within 5 % (median)"),
                ("burst", "burst median", f"{burst} from {clients} clients at once", ""),
                ("burst", "burst p95", f"{burst} from {clients} clients at once", "within 10 % (p95)"),
            ):
                w, wo = samples[("with", kind, mode)], samples[("without", kind, mode)]
                of = statistics.median if figure.endswith("median") else (lambda values: pct(values, 95))
                quartiles = statistics.quantiles(ratios[(kind, figure)], n=4)
                row("2 POST /prompt", f"{kind} prompts, {label}, {figure.split()[-1]}: with / without extension "
                    f"({rounds} rounds)",
                    f"{ratio_text(statistics.median(ratios[(kind, figure)]))} (median of per-round ratios; "
                    f"IQR {ratio_text(quartiles[0])} … {ratio_text(quartiles[2])}); all samples "
                    f"{ms(of(w))} / {ms(of(wo))}", target)
            row("2 POST /prompt", f"{kind} prompts: server CPU per POST, all threads: with / without extension",
                f"{cpu[('with', kind)] * 1e6:,.0f} µs / {cpu[('without', kind)] * 1e6:,.0f} µs "
                f"({(cpu[('with', kind)] - cpu[('without', kind)]) * 1e6:+,.0f} µs)", "(our share; less noisy than latency)")
        row("2 POST /prompt", "threads in ComfyUI after the bursts: with / without",
            f"{threads_after['with']} / {threads_after['without']} (before: {threads_before['with']} / "
            f"{threads_before['without']})", "+1 (the writer)")

        # flood: 2,000 prompts as fast as 16 clients can send them; time from the last answer to all on disk
        server = servers["with"]
        recorded0 = server.get("/nodes-stats/status")["prompts_recorded"]
        flood = 500 if quick else 2000
        run_posts(server, "accepted", flood, 16, 900_000)
        last_answer = time.perf_counter()
        while server.get("/nodes-stats/status")["prompts_recorded"] < recorded0 + flood:
            assert time.perf_counter() - last_answer < 60, "the flood was not on disk within a minute"
            time.sleep(0.005)
        row("3 ingest", f"{flood:,}-prompt flood (16 clients): last POST answered → all on disk",
            ms(time.perf_counter() - last_answer), "≤ 1 s")
    finally:
        for server in servers.values():
            server.stop()


def ratio_text(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f} %"


def write_packs(custom_nodes: Path, packs: int, nodes_per_pack: int) -> None:
    for p in range(packs):
        folder = custom_nodes / f"bench_pack_{p}"
        folder.mkdir(parents=True, exist_ok=True)
        classes = "\n".join(
            f"class Pack{p}Node{n}:\n    CATEGORY = 'bench'\n    RETURN_TYPES = ()\n    FUNCTION = 'run'\n"
            f"    INPUT_TYPES = classmethod(lambda cls: {{'required': {{}}}})\n    def run(self): return ()"
            for n in range(nodes_per_pack))
        mapping = ", ".join(f"'Pack{p}Node{n}': Pack{p}Node{n}" for n in range(nodes_per_pack))
        (folder / "__init__.py").write_text(f"{classes}\nNODE_CLASS_MAPPINGS = {{{mapping}}}\n")


def timed_get(url: str, path: str, gzip_ok: bool = True) -> tuple[float, int, int]:
    """(seconds, bytes on the wire, bytes of JSON) for one GET."""
    headers = {"Accept-Encoding": "gzip"} if gzip_ok else {}
    request = urllib.request.Request(url + path, headers=headers)
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        raw = response.read()
        encoding = response.headers.get("Content-Encoding")
    took = time.perf_counter() - start
    body = gzip.decompress(raw) if encoding == "gzip" else raw
    return took, len(raw), len(body)


def model_listing(files: int) -> dict[str, list[str]]:
    """`files` model names as ComfyUI lists them: four types, twenty subfolders each (a large collection)."""
    per_type = {"checkpoints": files // 2, "loras": files // 4, "vae": files // 8}
    per_type["upscale_models"] = files - sum(per_type.values())
    return {t: [f"sub{i % 20}/{t}_{i:05d}.safetensors" for i in range(n)] for t, n in per_type.items()}


def models_server(base: Path, files: int, packs: int, database: Path, env: dict[str, str] | None = None) -> ComfyServer:
    """A real ComfyUI (not started) with `files` model files, `packs` packs of 10 nodes and a copy of `database`."""
    server = ComfyServer(base, env=env)
    place_file(server.models / "checkpoints" / "bench.safetensors")
    for model_type, names in model_listing(files).items():
        for name in names:
            place_file(server.models / model_type / name)
    write_packs(server.custom_nodes, packs, 10)
    server.database.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(database, server.database)
    return server


def get_times(urls: list[str], path: str, samples: int) -> list[tuple[float, list[float], int, int]]:
    """For each server of `urls`: (its first GET's seconds, the next `samples` GETs' seconds, bytes of JSON, bytes
    on the wire). Servers take turns GET by GET, so load from other jobs on the machine falls on each alike."""
    firsts = [timed_get(url, path)[0] for url in urls]
    runs: list[list[tuple[float, int, int]]] = [[] for _ in urls]
    for _ in range(samples):
        for url, taken in zip(urls, runs, strict=True):
            taken.append(timed_get(url, path))
    return [(first, [r[0] for r in taken], taken[-1][2], taken[-1][1]) for first, taken in zip(firsts, runs, strict=True)]


def loop_latency(url: str, seconds: float) -> tuple[list[float], list[float]]:
    """Seconds of a cheap GET every 2 ms while HEAVY_CLIENTS clients loop on /models, and of the same GET idle."""
    stop = threading.Event()
    cheap: list[float] = []

    def heavy() -> None:
        while not stop.is_set():
            timed_get(url, "/nodes-stats/models")

    workers = [threading.Thread(target=heavy) for _ in range(HEAVY_CLIENTS)]
    for w in workers:
        w.start()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        cheap.append(timed_get(url, "/features", gzip_ok=False)[0])
        time.sleep(0.002)
    stop.set()
    for w in workers:
        w.join()
    return cheap, [timed_get(url, "/features", gzip_ok=False)[0] for _ in range(200)]


def latency_text(cheap: list[float], idle: list[float]) -> str:
    return (f"median {ms(statistics.median(cheap))}, p95 {ms(pct(cheap, 95))}, max {ms(max(cheap))} "
            f"(idle: median {ms(statistics.median(idle))}, p95 {ms(pct(idle, 95))})")


def bench_reads(quick: bool, workdir: Path, history: Path) -> None:
    sizes = [5000] if quick else [5000, 20_000]
    packs = 30 if quick else 300
    for files in sizes:
        server = models_server(workdir / f"reads-{files}", files, packs, history)  # the history: 1M prompts (100k in --quick)
        with sqlite3.connect(server.database) as db:
            prompts = db.execute("SELECT COUNT(*) FROM prompt_log").fetchone()[0]
        start = time.perf_counter()
        server.start(timeout=300)
        started = time.perf_counter() - start
        try:
            import_line = next((line for line in server.log().splitlines()
                                if line.rstrip().endswith(PACK_NAME) and "seconds" in line), "?")
            if files == sizes[-1]:
                import_line = re.sub(r"\S*/custom_nodes/", "custom_nodes/", import_line.strip())
                row("6 start-up", "ComfyUI's 'Import times for custom nodes' line", import_line, "≤ 30 ms")
                t0 = time.perf_counter()
                status, took = post(server.url, json.dumps({"prompt": api_prompt(10)}).encode())
                while server.get("/nodes-stats/status")["prompts_recorded"] < prompts + 1:
                    time.sleep(0.005)
                row("6 start-up", f"first prompt after start, {files:,} model files: POST / on disk",
                    f"{ms(took)} / {ms(time.perf_counter() - t0)} (status {status})")
            label = f"{files:,} files, {packs} packs × 10, {prompts:,} prompts"
            for path in ("/nodes-stats/packages", "/nodes-stats/usage", "/nodes-stats/models",
                         "/nodes-stats/models?status=safe_to_remove,consider_removing&limit=100"):
                [(_, times, body, wire)] = get_times([server.url], path, 5 if quick else 15)  # the first: first report
                target = "≤ 30 ms warm" if path == "/nodes-stats/models" and files == 20_000 else ""
                row("4 reads", f"GET {path} ({label})",
                    f"median {ms(statistics.median(times))}, p95 {ms(pct(times, 95))}; {size(body)} JSON, "
                    f"{size(wire)} on the wire (gzip)", target)
            row("4 reads", f"GET /features while {HEAVY_CLIENTS} client loops on /nodes-stats/models ({files:,} files)",
                latency_text(*loop_latency(server.url, 3 if quick else 8)), "loop never blocked > 5 ms")
            row("6 start-up", f"ComfyUI start to first answer ({files:,} files, {packs} packs)", f"{started:.1f} s")
        finally:
            server.stop()


# --------------------------------------------------------------------------- main


def machine() -> str:
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()
    return (f"{os.cpu_count()} cores ({cpu}), CPU only, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            f"ComfyUI 0.3.75; load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
            f"(shared machine: other jobs were running, so figures carry noise)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="reduced sizes (CI-like, a few minutes)")
    parser.add_argument("--only", default="", help="comma-separated sections: "
                                                   "hook,wrapper,ingest,storage,import,post,reads,shared")
    parser.add_argument("--output", help="also write the table (Markdown) to this file")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    want = lambda name: not only or name in only  # noqa: E731
    workdir = Path(tempfile.mkdtemp(prefix="usage-stats-bench-"))
    started = time.perf_counter()
    try:
        if want("hook"):
            bench_hook(args.quick)
        if want("wrapper"):
            bench_wrapper(args.quick)
        if want("ingest"):
            bench_ingest(args.quick)
        history = bench_storage(args.quick, workdir) if want("storage") or want("reads") else None
        if want("import"):
            bench_import(args.quick)
        if want("post"):
            bench_post_overhead(args.quick, workdir)
        if want("reads"):
            bench_reads(args.quick, workdir, history)
        if want("shared"):
            from bench_shared import bench_shared

            bench_shared(args.quick, workdir / "shared")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    table = [
        f"Machine: {machine()}.",
        f"Run: `scripts/bench{' --quick' if args.quick else ''}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{time.perf_counter() - started:.0f} s. Latencies are median and p95 of every sample.",
        "",
        "| Section | Measure | Figure | Target |",
        "|---|---|---|---|",
        *(f"| {s} | {m} | {f} | {t} |" for s, m, f, t in ROWS),
    ]
    text = "\n".join(table) + "\n"
    print("\n" + text)
    if args.output:
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
