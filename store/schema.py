"""The database schema as numbered migrations, and the one transaction shape every write uses."""

from __future__ import annotations

import re
import sqlite3
from contextlib import contextmanager
from typing import Callable, Iterator


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
    """What loading each model file into memory costs, and per-model idle-unload timeouts (memory/)."""
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
    resolved or read it (memory/); a file only the run saw still counts in `count`. Counts from before
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


def _migration_8_outbox(db: sqlite3.Connection) -> None:
    """What this machine owes a shared store (store/outbox.py): written with each write it describes, in
    the same transaction, and deleted once the shared store has applied it. Empty without a shared store.
    AUTOINCREMENT: a sequence number is never used twice, even after every row was delivered and deleted,
    since the shared store skips numbers it has applied."""
    db.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL, body TEXT NOT NULL)")


def _migration_9_model_digests(db: sqlite3.Connection) -> None:
    """The content hash the duplicate search found for each listed model name.

    `hash_cache` knows a hash by the file's stamp, which means nothing on another machine; a shared store
    needs it by name, so machines that list one file under different names (another mount point, another
    folder layout) know it is one file (store/postgres.py, `content_twins`).
    """
    _execute_statements(
        db,
        """
        CREATE TABLE model_digests (
            model_type TEXT NOT NULL,
            model_name TEXT NOT NULL,
            digest     TEXT NOT NULL,
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
    _migration_8_outbox,
    _migration_9_model_digests,
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
