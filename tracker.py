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
import re
import sqlite3
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache
from typing import Callable, Iterable, Iterator, Mapping

from .logs import log

BUILTIN_PACKAGE = "__builtin__"
"""Package name of core ComfyUI, comfy_extras and API nodes (the Node Stats name, kept for old data)."""
UNKNOWN_PACKAGE = "__unknown__"
"""Package name of a class_type that no loaded pack provides (a missing or removed pack)."""

DAY = 86_400
PRUNE_BATCH = 5_000
"""Prompt-log rows deleted per transaction by retention, so the write lock is held only briefly."""
DEFAULT_USER = "default"
"""The user of every prompt when ComfyUI runs without --multi-user (ComfyUI's own name for it)."""
RESULTS = ("success", "error", "interrupted")
"""How an accepted prompt ended, as ComfyUI's execution messages say."""
KINDS = ("prompt", "node", "package", "model")
"""What a daily row counts: whole prompts (item ''), node types, packs, models ('<type>/<name>')."""
TIERS = ("used", "unused_new", "consider_removing", "safe_to_remove", "uninstalled")
REMOVAL_ORDER = ("used", "unused_new", "consider_removing", "safe_to_remove")
"""Installed tiers from 'keep' to 'remove'; a cap keeps an item at or before a given tier."""


# --------------------------------------------------------------------------- schema and migrations


def _execute_statements(db: sqlite3.Connection, script: str) -> None:
    """Run DDL statement by statement: executescript() would COMMIT the migration's open transaction.

    Comments go first, so a semicolon in one cannot split a statement (our DDL has no '--' in a string).
    """
    for statement in re.sub(r"--[^\n]*", "", script).split(";"):
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
    """Prompts per UTC day, for prompt-log rows rolled up after 180 days (v3 folds them into `daily`)."""
    db.execute("CREATE TABLE prompt_days (day INTEGER PRIMARY KEY, prompts INTEGER NOT NULL)")


def _migration_3_outcomes_and_daily(db: sqlite3.Connection) -> None:
    """Each prompt's user and outcome, and the daily rollup per item and user that every total comes from.

    Counts written before this version could not tell accepted prompts from rejected ones; they are kept as
    they are. Prompt totals move from prompt_days and the log into `daily` (kind 'prompt'), so retention can
    delete detail without touching a total.
    """
    _execute_statements(
        db,
        """
        ALTER TABLE prompt_log ADD COLUMN user TEXT NOT NULL DEFAULT 'default';
        -- 'queued' (accepted, not finished), 'success', 'error', 'interrupted', 'rejected', or NULL before v3.
        ALTER TABLE prompt_log ADD COLUMN outcome TEXT;
        ALTER TABLE prompt_log ADD COLUMN exec_ms INTEGER;
        ALTER TABLE prompt_log ADD COLUMN cached_nodes INTEGER;

        CREATE TABLE daily (
            day         INTEGER NOT NULL,  -- UTC day number: ts / 86400
            kind        TEXT NOT NULL,     -- prompt | node | package | model
            item        TEXT NOT NULL,
            user        TEXT NOT NULL,
            prompts     INTEGER NOT NULL DEFAULT 0,  -- accepted prompts
            successes   INTEGER NOT NULL DEFAULT 0,
            failures    INTEGER NOT NULL DEFAULT 0,
            interrupted INTEGER NOT NULL DEFAULT 0,
            rejected    INTEGER NOT NULL DEFAULT 0,  -- refused by ComfyUI's validation: never "use"
            exec_ms     INTEGER NOT NULL DEFAULT 0,  -- summed over finished prompts
            first_ts    INTEGER,                     -- first and last accepted prompt of the day
            last_ts     INTEGER,
            PRIMARY KEY (kind, day, item, user)  -- views are day ranges, so day leads the key
        ) WITHOUT ROWID;

        INSERT INTO daily (day, kind, item, user, prompts, first_ts, last_ts)
            SELECT ts / 86400, 'prompt', '', 'default', COUNT(*), MIN(ts), MAX(ts) FROM prompt_log GROUP BY ts / 86400;
        INSERT INTO daily (day, kind, item, user, prompts)
            SELECT day, 'prompt', '', 'default', prompts FROM prompt_days WHERE true
            ON CONFLICT (kind, day, item, user) DO UPDATE SET prompts = prompts + excluded.prompts;
        DROP TABLE prompt_days;
        """
    )


def _migration_4_decisions(db: sqlite3.Connection) -> None:
    """What the user decided and did: the keep list, the quarantine manifest and the log of every action."""
    _execute_statements(
        db,
        """
        -- kind is 'model' (model_type set) or 'package' (model_type = '').
        CREATE TABLE keep_list (
            kind       TEXT NOT NULL,
            model_type TEXT NOT NULL,
            name       TEXT NOT NULL,
            since      INTEGER NOT NULL,
            PRIMARY KEY (kind, model_type, name)
        ) WITHOUT ROWID;

        -- One row per file in quarantine: enough to put it back exactly where it was.
        CREATE TABLE quarantine (
            id          INTEGER PRIMARY KEY,
            model_type  TEXT NOT NULL,
            model_name  TEXT NOT NULL,
            original    TEXT NOT NULL,
            quarantined TEXT NOT NULL UNIQUE,
            size        INTEGER NOT NULL,
            at          INTEGER NOT NULL
        );

        CREATE TABLE actions_log (
            id          INTEGER PRIMARY KEY,
            at          INTEGER NOT NULL,
            action      TEXT NOT NULL,
            target      TEXT NOT NULL,
            source      TEXT,
            destination TEXT,
            requested_by TEXT
        );

        -- Content hashes of model files, valid while (device, inode, size, mtime) are unchanged.
        CREATE TABLE hash_cache (
            device   INTEGER NOT NULL,
            inode    INTEGER NOT NULL,
            size     INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            digest   TEXT NOT NULL,
            PRIMARY KEY (device, inode)
        ) WITHOUT ROWID;

        -- Prompts imported from past outputs, by a digest of their JSON: each is counted once, ever.
        CREATE TABLE imported_prompts (
            digest TEXT PRIMARY KEY,
            ts     INTEGER NOT NULL
        ) WITHOUT ROWID;
        """
    )


def _migration_5_model_loads(db: sqlite3.Connection) -> None:
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


def _migration_6_decisions_leave_the_database(db: sqlite3.Connection) -> None:
    """The keep list, the quarantine manifest and the actions log move to journals beside the files they
    describe (actions/), so a corrupt database can no longer strand a quarantined file or forget a pin. Their
    tables wait under legacy_ names until the journals have taken them over (`legacy_decisions`)."""
    for table in LEGACY_DECISION_TABLES:
        db.execute(f"ALTER TABLE {table} RENAME TO legacy_{table}")


LEGACY_DECISION_TABLES = ("keep_list", "quarantine", "actions_log")

def _migration_7_witnesses(db: sqlite3.Connection) -> None:
    """Which witness saw each model used, and the prompts that named a model but switched it off.

    `in_prompt` counts prompts whose inputs select the file; `loaded` counts prompts during which ComfyUI
    resolved or read it (memory.py); a file only the run saw still counts in `count`. Counts from before
    this version came from the prompts alone. `model_references` is never a use: it only keeps a file
    out of safe_to_remove.
    """
    _execute_statements(
        db,
        """
        ALTER TABLE model_usage ADD COLUMN in_prompt INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE model_usage ADD COLUMN loaded INTEGER NOT NULL DEFAULT 0;
        UPDATE model_usage SET in_prompt = count;

        CREATE TABLE model_references (
            model_type TEXT NOT NULL,
            model_name TEXT NOT NULL,
            count      INTEGER NOT NULL DEFAULT 0,  -- accepted prompts naming it switched off, not loaded
            first_seen INTEGER NOT NULL,
            last_seen  INTEGER NOT NULL,
            PRIMARY KEY (model_type, model_name)
        ) WITHOUT ROWID;
        """,
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _migration_1_initial,
    _migration_2_prompt_days,
    _migration_3_outcomes_and_daily,
    _migration_4_decisions,
    _migration_5_model_loads,
    _migration_6_decisions_leave_the_database,
    _migration_7_witnesses,
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
    """One write transaction (BEGIN IMMEDIATE: take the write lock up front, fail fast if it is held).

    Inside another one it is a savepoint, so a write method can be part of a larger transaction.
    """
    if db.in_transaction:
        db.execute("SAVEPOINT nested")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK TO nested")
            db.execute("RELEASE nested")
            raise
        db.execute("RELEASE nested")
        return
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
    """Everything one prompt used, each item once, as the writer extracted it, and ComfyUI's verdict on it."""

    ts: int
    nodes: dict[str, str]  # class_type -> package
    models: frozenset[tuple[str, str]] = frozenset()  # (model_type, model_name)
    user: str = DEFAULT_USER
    accepted: bool = True  # False: ComfyUI's validation refused it (HTTP 400), so nothing in it was used
    referenced: frozenset[tuple[str, str]] = frozenset()  # named but switched off: never a use

    def daily_keys(self) -> list[tuple[str, int, str, str]]:
        """(kind, day, item, user): the key of every daily row this prompt counts in, each once."""
        day, user = self.ts // DAY, self.user
        return [
            ("prompt", day, "", user),
            *[("node", day, class_type, user) for class_type in self.nodes],
            *[("package", day, package, user) for package in set(self.nodes.values())],
            *[("model", day, model_key(t, n), user) for t, n in self.models],
        ]


@dataclass(frozen=True)
class Outcome:
    """How an accepted prompt ended: applied to its log row and to every daily row it counted in."""

    use: PromptUse
    row_id: int
    result: str  # one of RESULTS
    exec_ms: int | None = None
    cached_nodes: int | None = None
    loaded: frozenset[tuple[str, str]] = frozenset()  # model files ComfyUI resolved or read while it ran


def model_key(model_type: str, model_name: str) -> str:
    """A model's item name in daily rows and in /history: '<type>/<name>' (types never contain '/')."""
    return f"{model_type}/{model_name}"


@dataclass(frozen=True)
class Totals:
    """Summed daily rows of one item over a view (a window of days, one user or everyone)."""

    prompts: int = 0
    successes: int = 0
    failures: int = 0
    interrupted: int = 0
    rejected: int = 0
    exec_ms: int = 0
    first_ts: int | None = None
    last_ts: int | None = None

    def outcomes(self) -> dict:
        finished = self.successes + self.failures + self.interrupted
        return {
            "successes": self.successes,
            "failures": self.failures,
            "interrupted": self.interrupted,
            "rejected_count": self.rejected,
            "avg_ms": round(self.exec_ms / finished) if finished else None,
        }


NO_TOTALS = Totals()


@dataclass(frozen=True)
class View:
    """Which prompts a report counts: every day and every user, or a window of days and/or one user.

    Tiers never depend on the view: a model alice has not used this week may be bob's daily driver.
    """

    since_day: int | None = None
    user: str | None = None

    @property
    def windowed(self) -> bool:
        return self.since_day is not None or self.user is not None


EVERYTHING = View()
"""Every day and every user: the view of the usage tables themselves."""


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

    def record(self, uses: Iterable[PromptUse]) -> list[int]:
        """Write a batch of prompts in one transaction; returns their prompt-log row ids, in order.

        Usage is summed per item and day within the batch first, so a burst of 10,000 prompts costs one upsert
        per distinct node type, model and day, not one per prompt and item (the same totals, several times faster).
        Rejected prompts are logged and counted per day as rejected, never as use.
        """
        uses = list(uses)
        batch = _BatchCounts(uses)
        nodes, models = batch.usage("node"), batch.usage("model")
        with atomic(self._db) as db:
            # One statement for the whole batch: executemany would release and retake the GIL once per row.
            db.execute(
                """INSERT INTO prompt_log (ts, user, outcome)
                   SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]')
                   FROM json_each(?)""",
                (json.dumps([[u.ts, u.user, "queued" if u.accepted else "rejected"] for u in uses]),),
            )
            last_id = db.execute("SELECT last_insert_rowid()").fetchone()[0]
            db.executemany(
                """INSERT INTO node_usage (class_type, package, count, first_seen, last_seen)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (class_type) DO UPDATE SET
                       count = count + excluded.count, package = excluded.package,
                       first_seen = MIN(first_seen, excluded.first_seen),
                       last_seen = MAX(last_seen, excluded.last_seen)""",
                [(ct, batch.packages[ct], *entry) for ct, entry in nodes.items()],
            )
            db.executemany(
                """INSERT INTO model_usage (model_type, model_name, count, first_seen, last_seen, in_prompt)
                   VALUES (?, ?, ?, ?, ?, ?3)
                   ON CONFLICT (model_type, model_name) DO UPDATE SET
                       count = count + excluded.count, in_prompt = in_prompt + excluded.count,
                       first_seen = MIN(first_seen, excluded.first_seen),
                       last_seen = MAX(last_seen, excluded.last_seen)""",
                [(*item.split("/", 1), *entry) for item, entry in models.items()],
            )
            db.executemany(_DAILY_UPSERT, batch.daily_rows())
            if batch.referenced:
                db.executemany(_REFERENCE_UPSERT, [(t, n, *entry) for (t, n), entry in batch.referenced.items()])
        self.version += 1
        return list(range(last_id - len(uses) + 1, last_id + 1))

    def record_outcomes(self, outcomes: Iterable[Outcome]) -> None:
        """Apply how prompts ended to their log rows and to the daily rows of every item they used.

        The files ComfyUI loaded while a prompt ran are the second witness: each counts as used by that
        prompt (once, whether or not its inputs named it), and loaded wins over switched off.
        """
        outcomes = list(outcomes)
        with atomic(self._db) as db:
            _record_loaded(db, [o for o in outcomes if o.loaded])
            outcomes = [_with_loaded(o) for o in outcomes]
            db.executemany(
                "UPDATE prompt_log SET outcome = ?, exec_ms = ?, cached_nodes = ? WHERE id = ?",
                [(o.result, o.exec_ms, o.cached_nodes, o.row_id) for o in outcomes],
            )
            db.executemany(_DAILY_UPSERT, _daily_results(outcomes))
        self.version += 1

    def note_installed(self, packages: Iterable[str] = (), models: Iterable[tuple[str, str]] = ()) -> None:
        """Remember when each item was first seen installed; later sightings change nothing (not even the version)."""
        now = self.now()
        changes = self._db.total_changes
        with atomic(self._db) as db:
            db.executemany(
                "INSERT OR IGNORE INTO package_inventory (package, first_installed) VALUES (?, ?)",
                [(p, now) for p in packages],
            )
            db.executemany(
                "INSERT OR IGNORE INTO model_inventory (model_type, model_name, first_installed) VALUES (?, ?, ?)",
                [(t, n, now) for t, n in models],
            )
        if self._db.total_changes != changes:
            self.version += 1

    def reset(self) -> None:
        """Forget everything: usage, the prompt log, models and first sightings (the clock restarts)."""
        with atomic(self._db) as db:
            for table in ("node_usage", "prompt_log", "daily", "model_usage", "package_inventory", "model_inventory",
                          "imported_prompts", "model_loads", "model_references"):
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM meta WHERE key = 'legacy_import'")
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('legacy_import', 'skipped after reset')")
        self.version += 1

    def prune_detail(self, older_than: int, batch: int = PRUNE_BATCH) -> int:
        """Delete up to `batch` of the oldest prompt-log rows before `older_than`; returns how many.

        Every total, first_seen and last_seen lives in the usage tables and the daily rollup, written with the
        prompt itself, so pruning detail changes none of them. Oldest first and in small transactions: call
        again until it returns 0.
        """
        with atomic(self._db) as db:
            deleted = db.execute(
                "DELETE FROM prompt_log WHERE id IN (SELECT id FROM prompt_log WHERE ts < ? ORDER BY id LIMIT ?)",
                (older_than, batch),
            ).rowcount
        if deleted:
            self.version += 1
        return deleted

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
        """Store one group of settings (e.g. "config") as JSON; a reset keeps them. Saving the same values
        again changes nothing, not even the version (so cached reports stay)."""
        changes = self._db.total_changes
        with atomic(self._db) as db:
            db.execute(
                """INSERT INTO meta (key, value) VALUES (?, ?)
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE value IS NOT excluded.value""",
                (f"settings:{group}", json.dumps(values)),
            )
        if self._db.total_changes != changes:
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

    def witness_rows(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(type, name) -> (prompts whose inputs selected it, prompts during which ComfyUI loaded it)."""
        rows = self._reader().execute("SELECT model_type, model_name, in_prompt, loaded FROM model_usage")
        return {(t, n): (in_prompt, loaded) for t, n, in_prompt, loaded in rows}

    def reference_rows(self) -> dict[tuple[str, str], tuple[int, int, bool]]:
        """(type, name) -> (prompts naming it switched off, the last of them, whether it was ever used)."""
        rows = self._reader().execute(
            """SELECT r.model_type, r.model_name, r.count, r.last_seen, u.count IS NOT NULL AND u.count > 0
               FROM model_references r LEFT JOIN model_usage u USING (model_type, model_name) WHERE r.count > 0"""
        )
        return {(t, n): (count, last, bool(used)) for t, n, count, last, used in rows}

    def package_first_installed(self) -> dict[str, int]:
        return dict(self._reader().execute("SELECT package, first_installed FROM package_inventory"))

    def model_first_installed(self) -> dict[tuple[str, str], int]:
        rows = self._reader().execute("SELECT model_type, model_name, first_installed FROM model_inventory")
        return {(t, n): ts for t, n, ts in rows}

    def prompt_count(self) -> int:
        """Every accepted prompt ever recorded (the daily rollup holds them all, detail pruned or not)."""
        return self._reader().execute(
            "SELECT COALESCE(SUM(prompts), 0) FROM daily WHERE kind = 'prompt'"
        ).fetchone()[0]

    def totals(self, kind: str, view: View = EVERYTHING) -> dict[str, Totals]:
        """item -> its summed daily rows in `view`."""
        where, args = _view_filter(view)
        rows = self._reader().execute(
            f"""SELECT item, SUM(prompts), SUM(successes), SUM(failures), SUM(interrupted), SUM(rejected),
                       SUM(exec_ms), MIN(first_ts), MAX(last_ts)
                FROM daily WHERE kind = ? {where} GROUP BY item""",
            (kind, *args),
        )
        return {item: Totals(*values) for item, *values in rows}

    def daily_series(self, kind: str, item: str, view: View = EVERYTHING) -> dict[int, Totals]:
        """day -> one item's totals that day, for the days it has rows."""
        where, args = _view_filter(view)
        rows = self._reader().execute(
            f"""SELECT day, SUM(prompts), SUM(successes), SUM(failures), SUM(interrupted), SUM(rejected),
                       SUM(exec_ms), MIN(first_ts), MAX(last_ts)
                FROM daily WHERE kind = ? AND item = ? {where} GROUP BY day ORDER BY day""",
            (kind, item, *args),
        )
        return {day: Totals(*values) for day, *values in rows}

    def daily_rows(self, view: View = EVERYTHING) -> list[tuple]:
        """Every daily row of `view`: (day, kind, item, user, prompts, successes, failures, interrupted, rejected, exec_ms)."""
        where, args = _view_filter(view)
        return self._reader().execute(
            f"""SELECT day, kind, item, user, prompts, successes, failures, interrupted, rejected, exec_ms
                FROM daily WHERE kind IN ({", ".join("?" * len(KINDS))}) {where} ORDER BY day, kind, item, user""",
            (*KINDS, *args),
        ).fetchall()

    def first_day(self) -> int | None:
        return self._reader().execute("SELECT MIN(day) FROM daily WHERE kind = 'prompt'").fetchone()[0]

    def execution_times(self, since_ts: int | None = None, user: str | None = None) -> list[int]:
        """Execution times (ms) of finished prompts still in the detail log, shortest first."""
        rows = self._reader().execute(
            """SELECT exec_ms FROM prompt_log
               WHERE exec_ms IS NOT NULL AND ts >= ? AND (? IS NULL OR user = ?) ORDER BY exec_ms""",
            (since_ts or 0, user, user),
        )
        return [ms for (ms,) in rows]

    def cached_nodes(self, since_ts: int | None = None, user: str | None = None) -> tuple[int, int]:
        """(nodes served from ComfyUI's cache, finished prompts) over the detail log."""
        return self._reader().execute(
            """SELECT COALESCE(SUM(cached_nodes), 0), COUNT(cached_nodes) FROM prompt_log
               WHERE ts >= ? AND (? IS NULL OR user = ?)""",
            (since_ts or 0, user, user),
        ).fetchone()

    def outcomes_since(self, since_ts: int) -> dict[str, int]:
        """outcome -> prompts submitted since `since_ts` ('queued' = accepted and not finished yet)."""
        return dict(self._reader().execute(
            "SELECT COALESCE(outcome, 'unknown'), COUNT(*) FROM prompt_log WHERE ts >= ? GROUP BY 1", (since_ts,)
        ))

    def models_used_since(self, since_ts: int) -> list[tuple[str, str, int, int]]:
        """(type, name, count, last_seen) of models last used at or after `since_ts`, latest first."""
        return self._reader().execute(
            """SELECT model_type, model_name, count, last_seen FROM model_usage
               WHERE last_seen >= ? ORDER BY last_seen DESC""",
            (since_ts,),
        ).fetchall()

    def users(self) -> list[str]:
        """Every user who has submitted a prompt."""
        return [u for (u,) in self._reader().execute("SELECT DISTINCT user FROM daily WHERE kind = 'prompt' ORDER BY user")]


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

    # ---- decisions kept here before version 6 (now in actions/ journals)

    def legacy_decisions(self) -> dict[str, list[tuple]] | None:
        """The rows of the legacy_ decision tables, or None once they were taken over."""
        reader = self._reader()
        names = {row[0] for row in reader.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {f"legacy_{t}" for t in LEGACY_DECISION_TABLES} <= names:
            return None
        return {
            "keep_list": reader.execute("SELECT kind, model_type, name, since FROM legacy_keep_list").fetchall(),
            "quarantine": reader.execute(
                "SELECT id, model_type, model_name, original, quarantined, size, at FROM legacy_quarantine ORDER BY id"
            ).fetchall(),
            "actions_log": reader.execute(
                "SELECT at, action, target, source, destination, requested_by FROM legacy_actions_log ORDER BY id"
            ).fetchall(),
        }

    def drop_legacy_decisions(self) -> None:
        """Called once the journals hold what the legacy_ tables held."""
        with atomic(self._db) as db:
            for table in LEGACY_DECISION_TABLES:
                db.execute(f"DROP TABLE IF EXISTS legacy_{table}")

    def record_imported(self, batch: list[tuple[str, PromptUse]]) -> int:
        """Record the prompts of `batch` [(digest, use)] not imported before, marking them in the same
        transaction; returns how many were new."""
        with atomic(self._db) as db:
            fresh = [
                use for digest, use in batch
                if db.execute("INSERT OR IGNORE INTO imported_prompts (digest, ts) VALUES (?, ?)", (digest, use.ts)).rowcount
            ]
            if fresh:
                self.record(fresh)
        self.version += 1
        return len(fresh)

    def tracking_since(self) -> int | None:
        """When the tracker first saw the install (its first inventory), or None if never.

        Not the oldest prompt: imported prompts carry their images' old times, and must not move this back.
        """
        return self._reader().execute(
            """SELECT MIN(ts) FROM (SELECT MIN(first_installed) AS ts FROM package_inventory
                                    UNION ALL SELECT MIN(first_installed) FROM model_inventory)"""
        ).fetchone()[0]

    def save_hashes(self, rows: Iterable[tuple[tuple[int, int, int, int], str]]) -> None:
        """Remember content hashes by (device, inode, size, mtime); a newer stamp of one inode replaces the old."""
        with atomic(self._db) as db:
            db.executemany(
                "INSERT OR REPLACE INTO hash_cache (device, inode, size, mtime_ns, digest) VALUES (?, ?, ?, ?, ?)",
                [(*map(_int64, stamp), digest) for stamp, digest in rows],
            )

    def cached_hashes(self) -> dict[tuple[int, int, int, int], str]:
        rows = self._reader().execute("SELECT device, inode, size, mtime_ns, digest FROM hash_cache")
        return {(_uint64(d), _uint64(i), s, m): digest for d, i, s, m, digest in rows}


_DAILY_UPSERT = """
    INSERT INTO daily (kind, day, item, user, prompts, successes, failures, interrupted, rejected, exec_ms, first_ts, last_ts)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (kind, day, item, user) DO UPDATE SET
        prompts = prompts + excluded.prompts,
        successes = successes + excluded.successes,
        failures = failures + excluded.failures,
        interrupted = interrupted + excluded.interrupted,
        rejected = rejected + excluded.rejected,
        exec_ms = exec_ms + excluded.exec_ms,
        first_ts = COALESCE(MIN(first_ts, excluded.first_ts), first_ts, excluded.first_ts),
        last_ts = COALESCE(MAX(last_ts, excluded.last_ts), last_ts, excluded.last_ts)
"""
"""Adds one batch's counts to a daily row (NULL times are 'none yet', so MIN/MAX skip them)."""

_REFERENCE_UPSERT = """
    INSERT INTO model_references (model_type, model_name, count, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (model_type, model_name) DO UPDATE SET
        count = count + excluded.count,
        first_seen = MIN(first_seen, excluded.first_seen),
        last_seen = MAX(last_seen, excluded.last_seen)
"""


def _with_loaded(outcome: Outcome) -> Outcome:
    """The outcome with the files ComfyUI loaded counted among the prompt's models (its daily rows included)."""
    if not outcome.loaded <= outcome.use.models:
        return replace(outcome, use=replace(outcome.use, models=outcome.use.models | outcome.loaded))
    return outcome


def _record_loaded(db: sqlite3.Connection, outcomes: list[Outcome]) -> None:
    """The runtime witness of prompts already written: files only the run saw become uses of that prompt,
    every loaded file gains a `loaded` prompt, and one switched off in the prompt is no longer referenced by it.
    """
    for outcome in outcomes:
        use = outcome.use
        new = outcome.loaded - use.models
        day = use.ts // DAY
        db.executemany(
            """INSERT INTO model_usage (model_type, model_name, count, first_seen, last_seen) VALUES (?, ?, 1, ?, ?)
               ON CONFLICT (model_type, model_name) DO UPDATE SET count = count + 1,
                   first_seen = MIN(first_seen, excluded.first_seen), last_seen = MAX(last_seen, excluded.last_seen)""",
            [(t, n, use.ts, use.ts) for t, n in new],
        )
        db.executemany(_DAILY_UPSERT, [("model", day, model_key(t, n), use.user, 1, 0, 0, 0, 0, 0, use.ts, use.ts)
                                       for t, n in new])
        db.executemany("UPDATE model_usage SET loaded = loaded + 1 WHERE model_type = ? AND model_name = ?",
                       list(outcome.loaded))
        db.executemany("UPDATE model_references SET count = count - 1 WHERE model_type = ? AND model_name = ?",
                       list(outcome.loaded & use.referenced))


class _BatchCounts:
    """A batch of prompts summed per daily key (kind, day, item, user): the daily rows, and from them the
    usage tables' rows, so each prompt's items are walked once.

    Counted with Counter and dict.update over each prompt's keys (loops in C): this runs for every prompt
    the writer stores, so it must not cost a Python step per item. In time order, the last update of a key
    leaves its latest time, and a pass in reverse order leaves its earliest.
    """

    def __init__(self, uses: list[PromptUse]):
        ordered = sorted(uses, key=lambda use: use.ts)
        self.prompts, self.rejected, self.first, self.last = Counter(), Counter(), {}, {}
        self.packages: dict[str, str] = {}  # class_type -> its pack in the latest prompt, as row by row
        self.referenced: dict[tuple[str, str], list[int]] = {}  # (type, name) -> [prompts, first ts, last ts]
        accepted = []
        for use in ordered:
            keys = use.daily_keys()
            if use.accepted:
                self.prompts.update(keys)
                self.last.update(dict.fromkeys(keys, use.ts))
                self.packages.update(use.nodes)
                accepted.append((use.ts, keys))
                for key in use.referenced:  # rare: only prompts that switch a named file off
                    entry = self.referenced.setdefault(key, [0, use.ts, use.ts])
                    entry[0], entry[2] = entry[0] + 1, use.ts
            else:
                self.rejected.update(keys)
        for ts, keys in reversed(accepted):
            self.first.update(dict.fromkeys(keys, ts))

    def daily_rows(self) -> list[tuple]:
        """Increments for _DAILY_UPSERT: accepted prompts as prompts, the others as rejected."""
        return [
            (*key, self.prompts[key], 0, 0, 0, self.rejected[key], 0, self.first.get(key), self.last.get(key))
            for key in self.prompts.keys() | self.rejected.keys()
        ]

    def usage(self, kind: str) -> dict[str, list]:
        """item -> [accepted prompts, first ts, last ts] over every day and user of the batch."""
        items: dict[str, list] = {}
        for key, count in self.prompts.items():
            if key[0] != kind:
                continue
            entry = items.get(key[2])
            if entry is None:
                items[key[2]] = [count, self.first[key], self.last[key]]
            else:
                entry[0] += count
                entry[1] = min(entry[1], self.first[key])
                entry[2] = max(entry[2], self.last[key])
        return items


def _daily_results(outcomes: list[Outcome]) -> list[tuple]:
    """Daily-row increments for how a batch of prompts ended, on the day each was submitted."""
    rows: dict[tuple, list] = {}
    for outcome in outcomes:
        column = RESULTS.index(outcome.result)
        for key in outcome.use.daily_keys():
            row = rows.setdefault(key, [0, 0, 0, 0])
            row[column] += 1
            row[3] += outcome.exec_ms or 0
    return [(*key, 0, s, f, i, 0, ms, None, None) for key, (s, f, i, ms) in rows.items()]


def _view_filter(view: View) -> tuple[str, tuple]:
    """The SQL condition (after WHERE kind = ?) and its arguments for a view of the daily rollup."""
    where, args = "", ()
    if view.since_day is not None:
        where, args = where + " AND day >= ?", (*args, view.since_day)
    if view.user is not None:
        where, args = where + " AND user = ?", (*args, view.user)
    return where, args


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
        db.execute("UPDATE model_usage SET in_prompt = count")  # a new database: Node Stats read prompts alone
    if "prompt_log" in tables:
        stamps = [_parse_iso(r[0]) for r in db.execute("SELECT timestamp FROM legacy.prompt_log ORDER BY id")]
        stamps = [ts for ts in stamps if ts is not None]
        db.executemany("INSERT INTO prompt_log (ts) VALUES (?)", [(ts,) for ts in stamps])
        db.executemany(_DAILY_UPSERT, _BatchCounts([PromptUse(ts, {}) for ts in stamps]).daily_rows())
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
    """Days without use after which an item is worth a look, and after which it is safe to remove.

    `watched_since` is when tracking last resumed after a pause (None: never paused). Nothing ages from
    before it: a prompt run while tracking was off left no trace, so silence then is not evidence.
    """

    consider_days: int = 30
    safe_days: int = 60
    watched_since: int | None = None


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
    (unknown = now: when the evidence is missing, keep the item), and neither from before tracking last
    resumed. `cap` is the furthest tier toward
    removal this item may reach, for items whose use cannot be fully observed.
    """
    if not installed:
        return "uninstalled"
    since = last_used if last_used is not None else (first_installed if first_installed is not None else now)
    if thresholds.watched_since is not None:
        since = max(since, thresholds.watched_since)
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
    view: View = EVERYTHING,
    totals: dict[str, Totals] | None = None,
    evidence: Mapping[str, Evidence] | None = None,
) -> list[dict]:
    """Per-pack usage joined with what is installed, classified. Core nodes are not a removable pack.

    `current_package` maps each loaded class_type to its pack today, so history recorded while a pack
    was missing is credited to it once it is installed again. Counts follow `view` (with the node types'
    daily `totals`); tiers always follow every prompt of every user. `evidence` maps a pack to a further
    cap and its reasons (kept, used by saved workflows).
    """
    packs = {p.name: p for p in installed}
    entries: dict[str, dict] = {}
    last_used: dict[str, int] = {}
    for class_type, recorded, count, first, last in node_rows:
        package = current_package.get(class_type, recorded)
        if package == BUILTIN_PACKAGE:
            continue
        last_used[package] = max(last_used.get(package, 0), last)
        count, first, last, summed = _counted(class_type, count, first, last, view, totals)
        entry = entries.setdefault(package, _empty_package(package))
        entry["total_executions"] += count
        entry["used_nodes"] += count > 0
        if last is not None:
            entry["last_seen"] = max(entry["last_seen"] or 0, last)
        entry["nodes"].append(_node_dict(class_type, package, count, first, last, summed))
    for name in packs:
        entries.setdefault(name, _empty_package(name))
    for name, entry in entries.items():
        pack = packs.get(name)
        cap, reasons = merge_evidence(_package_cap(pack), (evidence or {}).get(name))
        status = classify(
            last_used.get(name), first_installed.get(name, now), now,
            installed=pack is not None, cap=cap, thresholds=thresholds,
        )
        entry.update(
            total_nodes=len(pack.node_types) if pack else len(entry["nodes"]),
            installed=pack is not None and not pack.disabled,
            disabled=bool(pack and pack.disabled),
            import_failed=bool(pack and pack.import_failed),
            frontend_only=bool(pack and pack.frontend_only),
            protected=bool(pack and pack.protected),
            first_installed=iso(first_installed.get(name)),
            status=status,
            reasons=[*status_reasons(status, last_used.get(name), first_installed.get(name)), *reasons],
        )
        entry["last_seen"] = iso(entry["last_seen"])
    return sorted(entries.values(), key=lambda e: (TIERS.index(e["status"]), e["package"].lower()))


def _empty_package(name: str) -> dict:
    return {"package": name, "total_executions": 0, "used_nodes": 0, "total_nodes": 0, "last_seen": None, "nodes": []}


def _node_dict(class_type: str, package: str, count: int, first, last, summed: Totals) -> dict:
    return {"class_type": class_type, "package": package, **_count_fields(count, first, last, summed)}


def _count_fields(count: int, first: int | None, last: int | None, summed: Totals) -> dict:
    return {"count": count, "first_seen": iso(first), "last_seen": iso(last), **summed.outcomes()}


def _counted(item: str, count: int, first: int | None, last: int | None, view: View, totals) -> tuple:
    """(count, first, last, daily totals) of an item as `view` sees it.

    With every day and every user the count is the usage table's, which also holds history from before
    per-day rows existed; a window or a user counts from the daily rows alone.
    """
    summed = (totals or {}).get(item, NO_TOTALS)
    if view.windowed:
        return summed.prompts, summed.first_ts, summed.last_ts, summed
    return count, first, last, summed


def usage_report(
    node_rows: Iterable[tuple[str, str, int, int, int]],
    current_package: dict[str, str],
    view: View = EVERYTHING,
    totals: dict[str, Totals] | None = None,
) -> list[dict]:
    """Per-node usage, core nodes included, credited to each node's pack as it is today; most used first."""
    nodes = [_node_dict(ct, current_package.get(ct, pkg), *_counted(ct, count, first, last, view, totals))
             for ct, pkg, count, first, last in node_rows]
    return [n for n in sorted(nodes, key=lambda n: (-n["count"], n["class_type"])) if n["count"] or not view.windowed]


IMPLICIT_USE = {"vae_approx": "ComfyUI loads these for latent previews without a node naming them"}
"""Model types whose files ComfyUI may load without any prompt naming them: never aged past unused_new."""


def model_report(
    model_rows: Iterable[tuple[str, str, int, int, int]],
    installed: dict[str, list[str]],
    first_installed: dict[tuple[str, str], int],
    now: int,
    same_file: dict[tuple[str, str], str] | None = None,
    thresholds: Thresholds = Thresholds(),
    view: View = EVERYTHING,
    totals: dict[str, Totals] | None = None,
    evidence: Mapping[tuple[str, str], Evidence] | None = None,
) -> list[dict]:
    """Per model type, every installed model and every used one, classified; types in name order.

    `same_file` maps (type, name) to the real path of the file, for folder types that share a directory:
    the same file listed under two types is used when either name is, so neither looks removable.
    Counts follow `view` (with the models' daily `totals`, keyed by model_key); tiers never do.
    `evidence` maps (type, name) to a further cap and its reasons (kept, used by saved workflows).
    """
    usage = {(t, n): (count, first, last) for t, n, count, first, last in model_rows}
    _share_usage_between_names(usage, same_file or {})
    keys = {(t, n) for t, names in installed.items() for n in names} | set(usage)
    installed_keys = {(t, n) for t, names in installed.items() for n in names}
    by_type: dict[str, list[dict]] = {}
    for model_type, name in keys:
        count, first, last = usage.get((model_type, name), (0, None, None))
        is_installed = (model_type, name) in installed_keys
        implicit = (("unused_new", [IMPLICIT_USE[model_type]]) if model_type in IMPLICIT_USE and is_installed else (None, []))
        cap, reasons = merge_evidence(implicit, (evidence or {}).get((model_type, name)) if is_installed else None)
        status = classify(
            last, first_installed.get((model_type, name), now), now, installed=is_installed, cap=cap, thresholds=thresholds
        )
        row = {
            "model_name": name,
            **_count_fields(*_counted(model_key(model_type, name), count, first, last, view, totals)),
            "first_installed": iso(first_installed.get((model_type, name))),
            "installed": is_installed,
            "status": status,
            "reasons": [*status_reasons(status, last, first_installed.get((model_type, name))), *reasons],
        }
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


# --------------------------------------------------------------------------- usage over time

TOP_ITEMS = 10


def daily_series_report(store: UsageStore, kind: str, item: str, view: View) -> list[dict]:
    """One row per day of the view (every day since the first prompt for 'all'), days without use as zeros."""
    rows = store.daily_series(kind, item, view)
    today = store.now() // DAY
    first = view.since_day if view.since_day is not None else min([*rows, store.first_day() or today, today])
    return [_day_dict(day, rows.get(day)) for day in range(first, today + 1)]


def _day_dict(day: int, totals: Totals | None) -> dict:
    totals = totals or NO_TOTALS
    return {"day": iso(day * DAY)[:10], "prompts": totals.prompts, **totals.outcomes()}


def summary_report(store: UsageStore, view: View) -> dict:
    """The dashboard: prompts, outcomes and timings of the view, its top nodes and models, prompts per day."""
    prompts = store.totals("prompt", view).get("", NO_TOTALS)
    finished = prompts.successes + prompts.failures + prompts.interrupted
    since_ts = None if view.since_day is None else view.since_day * DAY
    times = store.execution_times(since_ts, view.user)
    cached, finished_in_detail = store.cached_nodes(since_ts, view.user)
    return {
        "prompts": prompts.prompts,
        "successes": prompts.successes,
        "failures": prompts.failures,
        "interrupted": prompts.interrupted,
        "rejected": prompts.rejected,
        "success_rate": round(prompts.successes / finished, 4) if finished else None,
        "avg_ms": prompts.outcomes()["avg_ms"],
        "p95_ms": times[min(len(times) - 1, int(len(times) * 0.95))] if times else None,
        "cached_nodes_per_prompt": round(cached / finished_in_detail, 2) if finished_in_detail else None,
        "top_nodes": _top(store.totals("node", view), "class_type"),
        "top_models": _top(store.totals("model", view), "model"),
        "per_day": daily_series_report(store, "prompt", "", view),
    }


def _top(totals: dict, name: str) -> list[dict]:
    ranked = sorted(totals.items(), key=lambda entry: (-entry[1].prompts, entry[0]))
    return [{name: item, "count": t.prompts} for item, t in ranked[:TOP_ITEMS] if t.prompts]
# --------------------------------------------------------------------------- evidence and reasons (issue 7)

Evidence = tuple[str | None, list[str]]
"""(cap, reasons): how far toward removal an item may go given what else we know of it, and why."""


def merge_evidence(base: Evidence, extra: Evidence | None) -> Evidence:
    """The stricter of two caps (the one nearer to 'used'), with the reasons of both."""
    if extra is None:
        return base
    caps = [c for c in (base[0], extra[0]) if c is not None]
    cap = min(caps, key=REMOVAL_ORDER.index) if caps else None
    return cap, [*base[1], *extra[1]]


def day(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d")


def status_reasons(status: str, last_used: int | None, first_installed: int | None) -> list[str]:
    """Why an item is not 'used', in words the UI shows as they are: the dates its tier comes from."""
    if status == "used":
        return []
    if last_used is not None:
        return [f"last used {day(last_used)}"] + (["no longer installed"] if status == "uninstalled" else [])
    if status == "uninstalled":
        return ["no longer installed; never used while tracked"]
    return [f"never used since {day(first_installed)}" if first_installed is not None else "never used"]


def _int64(value: int) -> int:
    """An unsigned 64-bit number (an inode on some filesystems) as the signed integer SQLite stores."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _uint64(value: int) -> int:
    return value + (1 << 64) if value < 0 else value
