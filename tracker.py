"""SQLite storage, aggregation and classification of usage: the only module that touches the database.

Why one module owns all of it: the writer thread, the routes and the tests must agree on one schema,
one transaction shape and one definition of each tier. Nothing here imports ComfyUI; callers pass in
plain data (what is installed, what a prompt used), so every rule is testable on its own.

Times are stored as integer Unix seconds (compact, cheap to compare) and served as ISO 8601 UTC strings,
the format the Node Stats API always used.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Callable, Iterable, Iterator

from .logs import log

BUILTIN_PACKAGE = "__builtin__"
"""Package name of core ComfyUI, comfy_extras and API nodes (the Node Stats name, kept for old data)."""
UNKNOWN_PACKAGE = "__unknown__"
"""Package name of a class_type that no loaded pack provides (a missing or removed pack)."""

DAY = 86_400
PROMPT_DETAIL_DAYS = 180
"""Prompt-log rows older than this fold into per-day counts (prompt_days); every total stays the same."""
ROLL_UP_BATCH = 5_000
"""Rows folded per transaction, so the write lock is held only briefly."""
TIERS = ("used", "unused_new", "consider_removing", "safe_to_remove", "uninstalled")
REMOVAL_ORDER = ("used", "unused_new", "consider_removing", "safe_to_remove")
"""Installed tiers from 'keep' to 'remove'; a cap keeps an item at or before a given tier."""


# --------------------------------------------------------------------------- schema and migrations


def _execute_statements(db: sqlite3.Connection, script: str) -> None:
    """Run DDL statement by statement: executescript() would COMMIT the migration's open transaction."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _migration_1_initial(db: sqlite3.Connection) -> None:
    """The design's three tables, plus when each installed item was first seen (for honest aging)."""
    _execute_statements(
        db,
        """
        CREATE TABLE node_usage (
            class_type TEXT PRIMARY KEY,
            package    TEXT NOT NULL,
            count      INTEGER NOT NULL DEFAULT 0,
            first_seen INTEGER NOT NULL,
            last_seen  INTEGER NOT NULL
        );
        CREATE INDEX idx_node_usage_package ON node_usage(package);

        -- One row per recorded prompt. The rowid orders them, so no index on ts is needed.
        CREATE TABLE prompt_log (
            id INTEGER PRIMARY KEY,
            ts INTEGER NOT NULL
        );

        -- Keyed by (type, name): two folder types may hold two different files of the same name.
        CREATE TABLE model_usage (
            model_type TEXT NOT NULL,
            model_name TEXT NOT NULL,
            count      INTEGER NOT NULL DEFAULT 0,
            first_seen INTEGER NOT NULL,
            last_seen  INTEGER NOT NULL,
            PRIMARY KEY (model_type, model_name)
        ) WITHOUT ROWID;

        -- When the tracker first saw each item installed: a never-used item ages from here.
        CREATE TABLE package_inventory (
            package         TEXT PRIMARY KEY,
            first_installed INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE model_inventory (
            model_type      TEXT NOT NULL,
            model_name      TEXT NOT NULL,
            first_installed INTEGER NOT NULL,
            PRIMARY KEY (model_type, model_name)
        ) WITHOUT ROWID;

        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
        """
    )


def _migration_2_prompt_days(db: sqlite3.Connection) -> None:
    """Prompts per UTC day, for prompt-log rows rolled up after PROMPT_DETAIL_DAYS: bounded growth."""
    db.execute("CREATE TABLE prompt_days (day INTEGER PRIMARY KEY, prompts INTEGER NOT NULL)")


def _migration_3_model_loads(db: sqlite3.Connection) -> None:
    """What loading each model file into memory costs, and per-model idle-unload timeouts (memory.py)."""
    _execute_statements(
        db,
        """
        CREATE TABLE model_loads (
            model_type  TEXT NOT NULL,
            model_name  TEXT NOT NULL,
            load_count  INTEGER NOT NULL DEFAULT 0,
            total_ms    INTEGER NOT NULL DEFAULT 0,
            last_ms     INTEGER NOT NULL,
            last_loaded INTEGER NOT NULL,
            PRIMARY KEY (model_type, model_name)
        ) WITHOUT ROWID;

        -- A user's choice, like a setting: a reset of the statistics keeps it.
        CREATE TABLE unload_overrides (
            model_type      TEXT NOT NULL,
            model_name      TEXT NOT NULL,
            timeout_seconds INTEGER NOT NULL,
            PRIMARY KEY (model_type, model_name)
        ) WITHOUT ROWID;
        """,
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _migration_1_initial,
    _migration_2_prompt_days,
    _migration_3_model_loads,
]
"""MIGRATIONS[i] takes a database from user_version i to i + 1. Append only; never edit a released one."""


def migrate(db: sqlite3.Connection) -> int:
    """Apply every pending migration, each in one transaction together with its user_version bump.

    A migration that raises rolls back whole and stays pending, so a rerun never applies one twice.
    Returns the schema version the database is at afterwards.
    """
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise sqlite3.DatabaseError(f"database schema v{version} is newer than this extension (v{len(MIGRATIONS)})")
    for number in range(version, len(MIGRATIONS)):
        with atomic(db):
            MIGRATIONS[number](db)
            db.execute(f"PRAGMA user_version = {number + 1}")
    return len(MIGRATIONS)


@contextmanager
def atomic(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (BEGIN IMMEDIATE: take the write lock up front, fail fast if it is held)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


# --------------------------------------------------------------------------- opening the file


def open_database(path: str, clock: Callable[[], float] = time.time) -> sqlite3.Connection:
    """Open (or create) the database for writing, in WAL mode, migrated to the current schema.

    A file SQLite cannot read as a database is moved aside as `<path>.corrupt-<timestamp>`, logged once,
    and a fresh database is created: the old bytes are kept for the user, never overwritten.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        return _connect_and_migrate(path)
    except sqlite3.DatabaseError as error:
        if not _is_corrupt(error) or not os.path.isfile(path):
            raise  # e.g. SQLITE_CANTOPEN on a path we may not use: not the file's fault, never move it
        aside = f"{path}.corrupt-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(clock()))}"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.replace(path + suffix, aside + suffix)
        log.warning("[usage-stats] the database could not be read (%s); moved it aside to %s", error, aside)
        return _connect_and_migrate(path)


CORRUPT_ERRORS = frozenset({"SQLITE_NOTADB", "SQLITE_CORRUPT"})


def _is_corrupt(error: sqlite3.DatabaseError) -> bool:
    """Only a file SQLite read and rejected is corrupt; OperationalError (cannot open, locked, I/O) is not."""
    name = getattr(error, "sqlite_errorname", None)
    if name is not None:
        return name.startswith(tuple(CORRUPT_ERRORS))
    return type(error) is sqlite3.DatabaseError and "newer than this extension" not in str(error)


def _connect_and_migrate(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=1.0)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a crash loses at most the last commits
        db.execute("PRAGMA quick_check").fetchone()
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def connect_readonly(path: str) -> sqlite3.Connection:
    """A read-only connection: readers can never write, whatever a bug in a route does."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=5.0)
    db.execute("PRAGMA query_only = ON")
    return db


# --------------------------------------------------------------------------- what one prompt used


@dataclass(frozen=True)
class PromptUse:
    """Everything one prompt used, each item once, as the writer extracted it."""

    ts: int
    nodes: dict[str, str]  # class_type -> package
    models: frozenset[tuple[str, str]] = frozenset()  # (model_type, model_name)


# --------------------------------------------------------------------------- the store


class UsageStore:
    """Reads and writes usage. Writes go through one connection, used by one thread (the writer)."""

    def __init__(self, path: str, clock: Callable[[], float] = time.time):
        self.path = path
        self.clock = clock
        self._db = open_database(path, clock)
        self._local = threading.local()
        self.version = 0
        """Bumped after every committed write (all writes come through this object): a cache key for reports."""

    def close(self) -> None:
        self._db.close()

    def now(self) -> int:
        return int(self.clock())

    # ---- writes (writer thread only)

    def record(self, uses: Iterable[PromptUse]) -> int:
        """Write a batch of prompts in one transaction; returns how many prompts it held.

        Usage is summed per item within the batch first, so a burst of 10,000 prompts costs one upsert per
        distinct node type and model, not one per prompt and item (the same totals, several times faster).
        """
        uses = list(uses)
        nodes, models, packages = _Tally(), _Tally(), {}
        for use in uses:
            for class_type, package in use.nodes.items():
                nodes.add(class_type, use.ts)
                packages[class_type] = package  # the latest prompt's pack wins, as row by row
            for key in use.models:
                models.add(key, use.ts)
        with atomic(self._db) as db:
            # One statement for the whole batch: executemany would release and retake the GIL once per row.
            db.execute("INSERT INTO prompt_log (ts) SELECT value FROM json_each(?)", (json.dumps([u.ts for u in uses]),))
            db.executemany(
                """INSERT INTO node_usage (class_type, package, count, first_seen, last_seen)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (class_type) DO UPDATE SET
                       count = count + excluded.count, package = excluded.package,
                       first_seen = MIN(first_seen, excluded.first_seen),
                       last_seen = MAX(last_seen, excluded.last_seen)""",
                [(ct, packages[ct], *entry) for ct, entry in nodes.items()],
            )
            db.executemany(
                """INSERT INTO model_usage (model_type, model_name, count, first_seen, last_seen)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (model_type, model_name) DO UPDATE SET
                       count = count + excluded.count,
                       first_seen = MIN(first_seen, excluded.first_seen),
                       last_seen = MAX(last_seen, excluded.last_seen)""",
                [(mt, name, *entry) for (mt, name), entry in models.items()],
            )
        self.version += 1
        return len(uses)

    def note_installed(self, packages: Iterable[str] = (), models: Iterable[tuple[str, str]] = ()) -> None:
        """Remember when each item was first seen installed; later sightings change nothing."""
        now = self.now()
        with atomic(self._db) as db:
            db.executemany(
                "INSERT OR IGNORE INTO package_inventory (package, first_installed) VALUES (?, ?)",
                [(p, now) for p in packages],
            )
            db.executemany(
                "INSERT OR IGNORE INTO model_inventory (model_type, model_name, first_installed) VALUES (?, ?, ?)",
                [(t, n, now) for t, n in models],
            )
        self.version += 1

    def reset(self) -> None:
        """Forget everything: usage, the prompt log, models and first sightings (the clock restarts)."""
        with atomic(self._db) as db:
            for table in ("node_usage", "prompt_log", "prompt_days", "model_usage", "package_inventory", "model_inventory",
                          "model_loads"):
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM meta WHERE key = 'legacy_import'")
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('legacy_import', 'skipped after reset')")
        self.version += 1

    def roll_up_prompt_log(self, older_than: int, batch: int = ROLL_UP_BATCH) -> int:
        """Fold up to `batch` of the oldest prompt-log rows before `older_than` into prompt_days; returns how many.

        Oldest first and in small transactions: call again until it returns 0. The prompt count is unchanged.
        """
        with atomic(self._db) as db:
            last_id = db.execute(
                "SELECT MAX(id) FROM (SELECT id FROM prompt_log WHERE ts < ? ORDER BY id LIMIT ?)", (older_than, batch)
            ).fetchone()[0]
            if last_id is None:
                return 0
            db.execute(
                """INSERT INTO prompt_days (day, prompts)
                   SELECT ts / 86400, COUNT(*) FROM prompt_log WHERE id <= ? AND ts < ? GROUP BY ts / 86400
                   ON CONFLICT (day) DO UPDATE SET prompts = prompts + excluded.prompts""",
                (last_id, older_than),
            )
            folded = db.execute("DELETE FROM prompt_log WHERE id <= ? AND ts < ?", (last_id, older_than)).rowcount
        self.version += 1
        return folded

    def import_legacy(self, legacy_path: str) -> bool:
        """Import, once, the history of an older Node Stats database; returns True if it imported now."""
        if self._meta("legacy_import") is not None:
            return False
        # SQLite refuses ATTACH and DETACH inside a transaction, so they wrap it.
        self._db.execute("ATTACH DATABASE ? AS legacy", (f"file:{legacy_path}?mode=ro",))
        try:
            with atomic(self._db) as db:
                counts = _import_legacy_tables(db)
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('legacy_import', ?)",
                    (json.dumps({"from": legacy_path, "at": self.now(), **counts}),),
                )
        finally:
            self._db.execute("DETACH DATABASE legacy")
            self.version += 1
        log.info("[usage-stats] imported the history of %s: %s", legacy_path, counts)
        return True

    def save_settings(self, group: str, values: dict) -> None:
        """Store one group of settings (e.g. "config") as JSON; a reset keeps them."""
        with atomic(self._db) as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (f"settings:{group}", json.dumps(values)),
            )
        self.version += 1

    def load_settings(self, group: str) -> dict:
        """The stored settings of `group`, or {} if none were saved (or the row is not a JSON object)."""
        try:
            values = json.loads(self._meta(f"settings:{group}") or "{}")
        except ValueError:
            return {}
        return values if isinstance(values, dict) else {}

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    # ---- reads (any thread; each thread gets its own read-only connection)

    def _reader(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect_readonly(self.path)
        return db

    def node_rows(self) -> list[tuple[str, str, int, int, int]]:
        """(class_type, package, count, first_seen, last_seen), most used first."""
        return self._reader().execute(
            "SELECT class_type, package, count, first_seen, last_seen FROM node_usage ORDER BY count DESC, class_type"
        ).fetchall()

    def model_rows(self) -> list[tuple[str, str, int, int, int]]:
        """(model_type, model_name, count, first_seen, last_seen)."""
        return self._reader().execute(
            "SELECT model_type, model_name, count, first_seen, last_seen FROM model_usage"
        ).fetchall()

    def package_first_installed(self) -> dict[str, int]:
        return dict(self._reader().execute("SELECT package, first_installed FROM package_inventory"))

    def model_first_installed(self) -> dict[tuple[str, str], int]:
        rows = self._reader().execute("SELECT model_type, model_name, first_installed FROM model_inventory")
        return {(t, n): ts for t, n, ts in rows}

    def prompt_count(self) -> int:
        """Every prompt ever recorded: the detailed ones and those rolled up into days."""
        return self._reader().execute(
            "SELECT (SELECT COUNT(*) FROM prompt_log) + (SELECT COALESCE(SUM(prompts), 0) FROM prompt_days)"
        ).fetchone()[0]

    # ---- model loads and unload overrides (memory.py is their only user)

    def record_load(self, model_type: str, model_name: str, seconds: float, at: int) -> None:
        """One load of a model file into memory, and how long it took (writer thread)."""
        ms = max(0, round(seconds * 1000))
        with atomic(self._db) as db:
            db.execute(
                """INSERT INTO model_loads (model_type, model_name, load_count, total_ms, last_ms, last_loaded)
                   VALUES (?, ?, 1, ?, ?, ?)
                   ON CONFLICT (model_type, model_name) DO UPDATE SET
                       load_count = load_count + 1, total_ms = total_ms + excluded.total_ms,
                       last_ms = excluded.last_ms, last_loaded = MAX(last_loaded, excluded.last_loaded)""",
                (storable(model_type), storable(model_name), ms, ms, at),
            )
        self.version += 1

    def set_unload_override(self, model_type: str, model_name: str, timeout_seconds: int | None) -> None:
        """A model's own idle timeout; None removes it (the model follows its type's timeout again)."""
        with atomic(self._db) as db:
            if timeout_seconds is None:
                db.execute("DELETE FROM unload_overrides WHERE model_type = ? AND model_name = ?", (model_type, model_name))
            else:
                db.execute(
                    """INSERT INTO unload_overrides (model_type, model_name, timeout_seconds) VALUES (?, ?, ?)
                       ON CONFLICT (model_type, model_name) DO UPDATE SET timeout_seconds = excluded.timeout_seconds""",
                    (model_type, model_name, timeout_seconds),
                )
        self.version += 1

    def load_rows(self) -> dict[tuple[str, str], tuple[int, int, int, int]]:
        """(type, name) -> (load_count, total_ms, last_ms, last_loaded)."""
        rows = self._reader().execute(
            "SELECT model_type, model_name, load_count, total_ms, last_ms, last_loaded FROM model_loads"
        )
        return {(t, n): tuple(rest) for t, n, *rest in rows}

    def unload_overrides(self) -> dict[tuple[str, str], int]:
        rows = self._reader().execute("SELECT model_type, model_name, timeout_seconds FROM unload_overrides")
        return {(t, n): seconds for t, n, seconds in rows}


class _Tally(dict):
    """key -> [count, first ts, last ts] over one batch, so each item costs one upsert however often it was used."""

    def add(self, key, ts: int) -> None:
        entry = self.get(key)
        if entry is None:
            self[key] = [1, ts, ts]
        else:
            entry[0] += 1
            entry[1] = min(entry[1], ts)
            entry[2] = max(entry[2], ts)


def storable(text: str) -> str:
    """`text` as SQLite can store it, always spelled the same way.

    Python keeps the bytes of a file name that is not valid UTF-8 as lone surrogates, which SQLite refuses;
    such a name is written with backslash escapes instead, so it is still one stable key and still shown.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _import_legacy_tables(db: sqlite3.Connection) -> dict[str, int]:
    """Merge the attached Node Stats database `legacy` (ISO text times) into ours, in the caller's transaction."""
    tables = {r[0] for r in db.execute("SELECT name FROM legacy.sqlite_master WHERE type = 'table'")}
    counts = {"nodes": 0, "models": 0, "prompts": 0}
    if "node_usage" in tables:
        rows = db.execute("SELECT class_type, package, count, first_seen, last_seen FROM legacy.node_usage").fetchall()
        counts["nodes"] = _merge_usage(db, "node_usage", ("class_type", "package"), rows, key_size=1)
    if "model_usage" in tables:
        rows = db.execute("SELECT model_type, model_name, count, first_seen, last_seen FROM legacy.model_usage").fetchall()
        counts["models"] = _merge_usage(db, "model_usage", ("model_type", "model_name"), rows, key_size=2)
    if "prompt_log" in tables:
        stamps = [_parse_iso(r[0]) for r in db.execute("SELECT timestamp FROM legacy.prompt_log ORDER BY id")]
        db.executemany("INSERT INTO prompt_log (ts) VALUES (?)", [(ts,) for ts in stamps if ts is not None])
        counts["prompts"] = len(stamps)
    return counts


def _merge_usage(db, table: str, key: tuple[str, str], rows, key_size: int) -> int:
    """Add legacy counts to `table`, keeping the earliest first_seen and the latest last_seen."""
    key_columns = key[:key_size]
    sql = f"""INSERT INTO {table} ({key[0]}, {key[1]}, count, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
              ON CONFLICT ({", ".join(key_columns)}) DO UPDATE SET
                  count = count + excluded.count,
                  first_seen = MIN(first_seen, excluded.first_seen),
                  last_seen = MAX(last_seen, excluded.last_seen)"""
    merged = 0
    for a, b, count, first, last in rows:
        first_ts, last_ts = _parse_iso(first), _parse_iso(last)
        if a is None or b is None or first_ts is None or last_ts is None:
            continue
        db.execute(sql, (a, b, int(count or 0), first_ts, last_ts))
        merged += 1
    return merged


def _parse_iso(text) -> int | None:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


@lru_cache(maxsize=65_536)
def iso(ts: int | None) -> str | None:
    """Unix seconds as the ISO 8601 UTC text the API serves (None stays None).

    Memoised: a report formats tens of thousands of times, most of them the same few (every model first
    seen installed at one start-up shares one first_installed), and formatting dominated /models.
    """
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat()


# --------------------------------------------------------------------------- classification


@dataclass(frozen=True)
class Thresholds:
    """Days without use after which an item is worth a look, and after which it is safe to remove."""

    consider_days: int = 30
    safe_days: int = 60


def classify(
    last_used: int | None,
    first_installed: int | None,
    now: int,
    *,
    installed: bool = True,
    cap: str | None = None,
    thresholds: Thresholds = Thresholds(),
) -> str:
    """The one place that decides a tier.

    A used item ages from its last use; a never-used one from when the tracker first saw it installed
    (unknown = now: when the evidence is missing, keep the item). `cap` is the furthest tier toward
    removal this item may reach, for items whose use cannot be fully observed.
    """
    if not installed:
        return "uninstalled"
    since = last_used if last_used is not None else (first_installed if first_installed is not None else now)
    idle_days = (now - since) / DAY
    if idle_days > thresholds.safe_days:
        tier = "safe_to_remove"
    elif idle_days > thresholds.consider_days:
        tier = "consider_removing"
    else:
        tier = "used" if last_used is not None else "unused_new"
    if cap is not None and REMOVAL_ORDER.index(tier) > REMOVAL_ORDER.index(cap):
        return cap
    return tier


# --------------------------------------------------------------------------- reports


@dataclass
class InstalledPackage:
    """A custom-node pack as found on disk and in ComfyUI's loader state."""

    name: str
    node_types: list[str] = field(default_factory=list)
    disabled: bool = False
    import_failed: bool = False
    protected: bool = False  # ComfyUI-Manager and this extension: never suggested for removal

    @property
    def frontend_only(self) -> bool:
        return not self.node_types and not self.disabled and not self.import_failed


def _package_cap(pack: InstalledPackage | None) -> tuple[str | None, list[str]]:
    """How far toward removal a pack may go, and why: packs whose use we cannot observe stay put."""
    if pack is None:
        return None, []
    if pack.protected:
        return "unused_new", ["needed to manage or observe your install; never suggested for removal"]
    if pack.frontend_only:
        return "unused_new", ["has no nodes (front-end only), so its use cannot be observed"]
    if pack.disabled:
        return "consider_removing", ["disabled: its nodes cannot be used until it is enabled"]
    if pack.import_failed:
        return "consider_removing", ["failed to import: its nodes cannot be used until it is fixed"]
    return None, []


def package_report(
    node_rows: Iterable[tuple[str, str, int, int, int]],
    installed: Iterable[InstalledPackage],
    current_package: dict[str, str],
    first_installed: dict[str, int],
    now: int,
    thresholds: Thresholds = Thresholds(),
) -> list[dict]:
    """Per-pack usage joined with what is installed, classified. Core nodes are not a removable pack.

    `current_package` maps each loaded class_type to its pack today, so history recorded while a pack
    was missing is credited to it once it is installed again.
    """
    packs = {p.name: p for p in installed}
    entries: dict[str, dict] = {}
    for class_type, recorded, count, first, last in node_rows:
        package = current_package.get(class_type, recorded)
        if package == BUILTIN_PACKAGE:
            continue
        entry = entries.setdefault(package, _empty_package(package))
        entry["total_executions"] += count
        entry["used_nodes"] += 1
        entry["last_seen"] = max(entry["last_seen"] or 0, last)
        entry["nodes"].append(_node_dict(class_type, package, count, first, last))
    for name in packs:
        entries.setdefault(name, _empty_package(name))
    for name, entry in entries.items():
        pack = packs.get(name)
        cap, reasons = _package_cap(pack)
        entry.update(
            total_nodes=len(pack.node_types) if pack else entry["used_nodes"],
            installed=pack is not None and not pack.disabled,
            disabled=bool(pack and pack.disabled),
            import_failed=bool(pack and pack.import_failed),
            frontend_only=bool(pack and pack.frontend_only),
            protected=bool(pack and pack.protected),
            first_installed=iso(first_installed.get(name)),
            status=classify(
                entry["last_seen"], first_installed.get(name, now), now,
                installed=pack is not None, cap=cap, thresholds=thresholds,
            ),
            reasons=reasons,
        )
        entry["last_seen"] = iso(entry["last_seen"])
    return sorted(entries.values(), key=lambda e: (TIERS.index(e["status"]), e["package"].lower()))


def _empty_package(name: str) -> dict:
    return {"package": name, "total_executions": 0, "used_nodes": 0, "total_nodes": 0, "last_seen": None, "nodes": []}


def _node_dict(class_type: str, package: str, count: int, first: int, last: int) -> dict:
    return {"class_type": class_type, "package": package, "count": count, "first_seen": iso(first), "last_seen": iso(last)}


def usage_report(node_rows: Iterable[tuple[str, str, int, int, int]], current_package: dict[str, str]) -> list[dict]:
    """Raw per-node usage, core nodes included, credited to each node's pack as it is today."""
    return [_node_dict(ct, current_package.get(ct, pkg), count, first, last) for ct, pkg, count, first, last in node_rows]


IMPLICIT_USE = {"vae_approx": "ComfyUI loads these for latent previews without a node naming them"}
"""Model types whose files ComfyUI may load without any prompt naming them: never aged past unused_new."""


def model_report(
    model_rows: Iterable[tuple[str, str, int, int, int]],
    installed: dict[str, list[str]],
    first_installed: dict[tuple[str, str], int],
    now: int,
    same_file: dict[tuple[str, str], str] | None = None,
    thresholds: Thresholds = Thresholds(),
) -> list[dict]:
    """Per model type, every installed model and every used one, classified; types in name order.

    `same_file` maps (type, name) to the real path of the file, for folder types that share a directory:
    the same file listed under two types is used when either name is, so neither looks removable.
    """
    usage = {(t, n): (count, first, last) for t, n, count, first, last in model_rows}
    _share_usage_between_names(usage, same_file or {})
    keys = {(t, n) for t, names in installed.items() for n in names} | set(usage)
    installed_keys = {(t, n) for t, names in installed.items() for n in names}
    by_type: dict[str, list[dict]] = {}
    for model_type, name in keys:
        count, first, last = usage.get((model_type, name), (0, None, None))
        is_installed = (model_type, name) in installed_keys
        cap = "unused_new" if model_type in IMPLICIT_USE else None
        row = {
            "model_name": name,
            "count": count,
            "first_seen": iso(first),
            "last_seen": iso(last),
            "first_installed": iso(first_installed.get((model_type, name))),
            "installed": is_installed,
            "status": classify(
                last, first_installed.get((model_type, name), now), now,
                installed=is_installed, cap=cap, thresholds=thresholds,
            ),
        }
        if cap and is_installed:
            row["reasons"] = [IMPLICIT_USE[model_type]]
        by_type.setdefault(model_type, []).append(row)
    return [
        {"model_type": t, "models": sorted(rows, key=lambda r: (TIERS.index(r["status"]), r["model_name"].lower()))}
        for t, rows in sorted(by_type.items())
    ]


def _share_usage_between_names(usage: dict, same_file: dict[tuple[str, str], str]) -> None:
    """Give every name of one physical file the most recent usage recorded under any of its names."""
    names_by_file: dict[str, list[tuple[str, str]]] = {}
    for key, real_path in same_file.items():
        names_by_file.setdefault(real_path, []).append(key)
    for names in names_by_file.values():
        recorded = [usage[k] for k in names if k in usage]
        if recorded:
            latest = max(recorded, key=lambda u: u[2])
            for key in names:
                usage.setdefault(key, latest)
