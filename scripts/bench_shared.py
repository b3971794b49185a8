"""Benchmarks of the shared store (PostgreSQL): what the outbox costs SQLite, ingest into PostgreSQL from one
machine and from four at once, and /models at 20,000 files fleet-wide: the store's reads behind it, and the
route end to end over HTTP from a real ComfyUI, beside the same machine on SQLite alone.

Run through `scripts/bench --only shared` (a section of scripts/bench.py). Starts its own PostgreSQL
(tests/postgres.py) in a temporary directory; the figures go into the same table as every other section.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from pathlib import Path

from bench import (
    FIVE_MODELS,
    HEAVY_CLIENTS,
    PACK_NAME,
    fake_comfy,
    five_model_prompt,
    get_times,
    latency_text,
    loop_latency,
    model_listing,
    models_server,
    ms,
    pct,
    row,
    size,
)
from comfyui import until
from postgres import PostgresServer

MACHINES = 4
FLEET_FILES = 20_000


def bench_shared(quick: bool, workdir: Path) -> None:
    """Every benchmark of the shared store, each in a folder of its own under `workdir` (scripts/bench removes it)."""
    bench_core_against_sqlite3(quick, workdir / "core")
    server = PostgresServer().start()
    try:
        bench_outbox_cost(quick, workdir / "outbox")
        bench_one_machine(quick, server.create_database(), workdir / "one-machine")
        bench_four_machines(quick, server.create_database(), workdir / "four-machines")
        url = server.create_database()
        databases = deliver_fleet(quick, url, workdir / "fleet")
        bench_fleet_reads(quick, url, databases[-1])
        bench_fleet_http(quick, url, databases[0], workdir / "fleet-http")
    finally:
        server.remove()


def bench_core_against_sqlite3(quick: bool, base: Path) -> None:
    """The choice the shared store made: one implementation over SQLAlchemy Core (which ComfyUI ships), or the
    local store's own sqlite3 SQL beside a PostgreSQL one. Measured on the hottest write, the daily upsert."""
    import sqlite3

    import sqlalchemy

    from usage_stats.store.rows import DAILY_UPSERT
    from usage_stats.store.schema import migrate

    rows = [("model", 20_000 + i % 30, f"checkpoints/m{i % 500}.safetensors", "default", 1, 0, 0, 0, 0, 0, i, i)
            for i in range(20_000 if quick else 100_000)]
    base.mkdir(parents=True)
    rates = {}
    for label in ("sqlite3", "SQLAlchemy Core"):
        path = base / f"{label}.db"
        db = sqlite3.connect(path, isolation_level=None)
        migrate(db)
        db.close()
        start = time.perf_counter()
        if label == "sqlite3":
            db = sqlite3.connect(path, isolation_level=None)
            db.execute("BEGIN")
            db.executemany(DAILY_UPSERT, rows)
            db.execute("COMMIT")
            db.close()
        else:
            named = sqlalchemy.text(_named(DAILY_UPSERT, 12))
            with sqlalchemy.create_engine(f"sqlite:///{path}").begin() as connection:
                connection.execute(named, [{f"p{i}": value for i, value in enumerate(row)} for row in rows])
        rates[label] = len(rows) / (time.perf_counter() - start)
    row("8 shared store", f"daily upsert, {len(rows):,} rows into SQLite: sqlite3 / SQLAlchemy Core",
        f"{rates['sqlite3']:,.0f} / {rates['SQLAlchemy Core']:,.0f} rows/s", "the local store stays on sqlite3")


def _named(sql: str, count: int) -> str:
    """`sql` with its `?` placeholders as :p0 … :p<count-1> (SQLAlchemy's text() takes named ones)."""
    for i in range(count):
        sql = sql.replace("?", f":p{i}", 1)
    return sql


def _writer(base: Path, machine: str | None, queue_size: int):
    from usage_stats.mapper import ModelMapper, PackageMapper
    from usage_stats.recording.writer import Writer
    from usage_stats.tracker import UsageStore

    path = str(base / f"{machine or 'alone'}.db")
    return Writer(lambda: UsageStore(path, machine=machine), PackageMapper(own_pack=PACK_NAME), ModelMapper(),
                  queue_size=queue_size)


def _ingest(writer, count: int, seed: int) -> float:
    """Prompts per second from the hook to the local database."""
    bodies = [{"prompt": five_model_prompt(seed + i)} for i in range(count)]
    start = time.perf_counter()
    for body in bodies:
        writer.on_prompt(body)
    writer.flush(600)
    return count / (time.perf_counter() - start)


def bench_outbox_cost(quick: bool, base: Path) -> None:
    """The same ingest into SQLite without and with a shared store configured (every write owes an outbox row)."""
    base.mkdir(parents=True)
    fake_comfy(base)
    count = 10_000 if quick else 50_000
    rates = {}
    for label, machine in (("SQLite only", None), ("SQLite + outbox", "bench")):
        writer = _writer(base, machine, count + 10)
        writer.start()
        writer.wait_ready(30)
        _ingest(writer, 100, -1000)  # warm
        rates[label] = _ingest(writer, count, 0)
        writer.stop()
    row("8 shared store", f"ingest, {count:,} prompts × 5 models: SQLite only / with the outbox",
        f"{rates['SQLite only']:,.0f} / {rates['SQLite + outbox']:,.0f} prompts/s "
        f"({(rates['SQLite + outbox'] / rates['SQLite only'] - 1) * 100:+.0f} %)", "outbox off: SQLite unchanged")


def bench_one_machine(quick: bool, url: str, base: Path) -> None:
    """Hook → local database → outbox → PostgreSQL, on one machine, until every prompt is in the shared store."""
    from usage_stats.recording.shared import SharedSettings, Shipper
    from usage_stats.store.postgres import FleetStore

    base.mkdir(parents=True)
    fake_comfy(base)
    count = 10_000 if quick else 50_000
    writer = _writer(base, "one", count + 10)
    shipper = Shipper(writer, SharedSettings(url, "one", "one"), FleetStore)
    writer.start()
    writer.wait_ready(30)
    shipper.start()
    fleet = FleetStore(url)
    start = time.perf_counter()
    _ingest(writer, count, 0)
    while fleet.prompt_count() < count:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    shipper.stop()
    writer.stop()
    fleet.close()
    row("8 shared store", f"one machine: {count:,} prompts, hook → PostgreSQL", f"{count / elapsed:,.0f} prompts/s", "")


def _owe(path: str, machine: str, prompts: int) -> None:
    """A machine's database whose outbox holds `prompts` prompts, written in bursts of 50."""
    from usage_stats.domain.values import PromptUse
    from usage_stats.tracker import UsageStore

    store = UsageStore(path, machine=machine)
    now = int(time.time())
    burst = [PromptUse(now, {"CheckpointLoaderSimple": "__builtin__", "VAELoader": "__builtin__"}, frozenset(FIVE_MODELS))] * 50
    for _ in range(prompts // 50):
        store.record(burst)
    store.close()


def _deliver(path: str, machine: str, url: str, start_at: float, answer) -> None:
    """One machine's shipper loop, as fast as it goes: deliver, forget, until nothing is owed."""
    from usage_stats.recording.shared import SHIP_BATCH
    from usage_stats.store.postgres import FleetStore
    from usage_stats.tracker import UsageStore

    store, fleet = UsageStore(path, machine=machine), FleetStore(url)
    time.sleep(max(0.0, start_at - time.time()))
    begun = time.perf_counter()
    while rows := store.owed(SHIP_BATCH):
        store.delivered(fleet.deliver(machine, machine, store.outbox_stream, rows))
    answer.put(time.perf_counter() - begun)


def bench_four_machines(quick: bool, url: str, base: Path) -> None:
    """Four machines delivering their outboxes into one PostgreSQL at once (four processes)."""
    base.mkdir(parents=True)
    prompts = 5_000 if quick else 25_000
    paths = {f"m{i}": str(base / f"m{i}.db") for i in range(MACHINES)}
    for machine, path in paths.items():
        _owe(path, machine, prompts)
    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    start_at = time.time() + 2
    workers = [context.Process(target=_deliver, args=(path, machine, url, start_at, answers)) for machine, path in paths.items()]
    for worker in workers:
        worker.start()
    seconds = [answers.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    row("8 shared store", f"{MACHINES} machines at once, {prompts:,} prompts each (bursts of 50), outbox → PostgreSQL",
        f"{MACHINES * prompts / max(seconds):,.0f} prompts/s in all", "")


def deliver_fleet(quick: bool, url: str, base: Path) -> list[Path]:
    """MACHINES machines listing the same FLEET_FILES files (one shared volume), each using its own share of
    them, every outbox delivered into `url`; returns each machine's SQLite database (machine i: `m<i>`)."""
    from usage_stats.domain.values import PromptUse
    from usage_stats.store.postgres import FleetStore
    from usage_stats.tracker import UsageStore

    base.mkdir(parents=True)
    files = [(t, name) for t, names in model_listing(FLEET_FILES).items() for name in names]
    fleet = FleetStore(url)
    databases = []
    for m in range(MACHINES):
        databases.append(base / f"m{m}.db")
        local = UsageStore(str(databases[-1]), machine=f"m{m}")
        local.note_installed(models=files)
        now = int(time.time())
        local.record([PromptUse(now - i * 600, {"KSampler": "__builtin__"}, frozenset({files[(i * 7 + m) % FLEET_FILES]}))
                      for i in range(2_000 if quick else 10_000)])
        while rows := local.owed(500):
            local.delivered(fleet.deliver(f"m{m}", f"m{m}", local.outbox_stream, rows))
        local.close()
    fleet.close()
    return databases


def bench_fleet_reads(quick: bool, url: str, database: Path) -> None:
    """The store's part of /models at 20,000 files seen by four machines: fleet-wide against one machine's SQLite."""
    from usage_stats.store.postgres import FleetStore
    from usage_stats.tracker import UsageStore

    fleet, local = FleetStore(url), UsageStore(str(database))
    reads = ("model_rows", "model_first_installed", "witness_rows", "reference_rows", "load_rows")
    for label, store in (("fleet (PostgreSQL)", fleet), ("one machine (SQLite)", local)):
        samples = []
        for _ in range(5 if quick else 15):
            start = time.perf_counter()
            for read in reads:
                getattr(store, read)()
            store.totals("model")
            samples.append(time.perf_counter() - start)
        row("8 shared store", f"reads behind /models, {FLEET_FILES:,} files × {MACHINES} machines: {label}",
            f"median {ms(statistics.median(samples))}", "")
    fleet.close()
    local.close()


def bench_fleet_http(quick: bool, url: str, database: Path, workdir: Path) -> None:
    """GET /models and /disk over HTTP from real ComfyUI servers listing the fleet's FLEET_FILES files, each being
    machine m0 of the fleet (a copy of its database): one on SQLite alone, one reporting into the shared store
    and reading the fleet's, taking turns; then again once another machine fell silent (every file it lists is
    capped: the costliest fleet read)."""
    import psycopg

    from usage_stats.recording.shared import DEFAULT_STALE_HOURS, MACHINE_FILE, NAME_VARIABLE, URL_VARIABLE

    alone = models_server(workdir / "alone", FLEET_FILES, 30, database)
    fleet = models_server(workdir / "fleet", FLEET_FILES, 30, database, {URL_VARIABLE: url, NAME_VARIABLE: "m0"})
    servers = {"SQLite only, m0's own database": alone, f"fleet (PostgreSQL), {MACHINES} machines": fleet}
    try:
        for server in servers.values():
            (server.database.parent / MACHINE_FILE).write_text("m0")  # this machine is m0 of the fleet
            server.start(timeout=300)
        _wait_delivered(fleet)
        _http_rows(quick, servers)
        for label, server in servers.items():
            row("8 shared store", f"GET /features while {HEAVY_CLIENTS} client loops on /nodes-stats/models ({label})",
                latency_text(*loop_latency(server.url, 3 if quick else 8)), "loop never blocked > 5 ms")
        with psycopg.connect(url) as db:
            db.execute("UPDATE machines SET last_report = last_report - %s WHERE id = 'm3'", (2 * DEFAULT_STALE_HOURS * 3600,))
        _http_rows(quick, {f"fleet (PostgreSQL), {MACHINES} machines, m3 silent for 2 days": fleet}, reference=alone)
    finally:
        for server in servers.values():
            server.stop()


def _wait_delivered(server) -> None:
    """Reads go to the fleet once the shipper got through, and nothing left owed moves them on while timed."""
    until(lambda: (s := server.get("/nodes-stats/shared"))["reachable"] and s["owed"] == 0,
          timeout=120, what="the shipper to deliver all it owes", server=server)


def _http_rows(quick: bool, servers: dict, reference=None) -> None:
    """Rows of GET /models (its first answer after a change, then cached) and of /disk (the same report, summed),
    the servers taking turns; with a `reference` server, it takes its turns too and its figure is quoted."""
    urls = [server.url for server in servers.values()] + ([reference.url] if reference else [])
    samples = 15 if quick else 30
    models, disks = get_times(urls, "/nodes-stats/models", samples), get_times(urls, "/nodes-stats/disk", samples)
    beside = (f" (SQLite alone in the same turns: median {ms(statistics.median(models[-1][1]))}, /disk "
              f"{ms(statistics.median(disks[-1][1]))})") if reference else ""
    for label, (first, warm, body, wire), (_, disk, *_) in zip(servers, models, disks, strict=False):
        row("8 shared store", f"GET /nodes-stats/models end to end, {FLEET_FILES:,} files: {label}",
            f"first {ms(first)}; then median {ms(statistics.median(warm))}, p95 {ms(pct(warm, 95))}; "
            f"{size(body)} JSON, {size(wire)} on the wire (gzip){beside}", "≤ 30 ms warm")
        row("8 shared store", f"GET /nodes-stats/disk, {FLEET_FILES:,} files: {label}",
            f"median {ms(statistics.median(disk))}, p95 {ms(pct(disk, 95))}", "")
