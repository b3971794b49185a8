"""The store's front door: `UsageStore`, every read and write of the usage database.

Why one class: the writer thread, the reports and the tests must agree on one schema and one transaction
shape. Only the writer thread writes through it; reports read. The schema, opening the file and the SQL
shapes of rows live below it in store/; nothing here imports ComfyUI.

Times are stored as integer Unix seconds (compact, cheap to compare) and served as ISO 8601 UTC strings,
the format the Node Stats API always used.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from typing import Callable, Iterable

from .domain.values import EVERYTHING, KINDS, Outcome, PromptUse, Totals, View, storable
from .store.database import connect_readonly, open_database
from .store import outbox
from .store.legacy import import_legacy_tables
from .store.rows import (
    DAILY_UPSERT,
    REFERENCE_UPSERT,
    BatchCounts,
    daily_results,
    int64,
    record_loaded,
    uint64,
    view_filter,
    with_loaded,
)
from .store.schema import LEGACY_DECISION_TABLES, atomic
from .support.logs import log

PRUNE_BATCH = 5_000
"""Prompt-log rows deleted per transaction by retention, so the write lock is held only briefly."""
OUTBOX_LIMIT = 50_000
"""Outbox rows kept for an unreachable shared store; beyond this they are folded into one snapshot of the
usage tables (the machine's whole evidence), so the outbox stays bounded and loses nothing."""


class UsageStore:
    """Reads and writes usage. Writes go through one connection, used by one thread (the writer)."""

    def __init__(self, path: str, clock: Callable[[], float] = time.time, machine: str | None = None):
        self.path = path
        self.clock = clock
        self._db = open_database(path, clock)
        self._local = threading.local()
        self.version = 0
        """Bumped after every committed write (all writes come through this object): a cache key for reports."""
        self.machine = machine
        """The id this machine reports under into a shared store, or None (no shared store). With one, every
        write also owes it an outbox row (store/outbox.py), and a view of another machine is empty here."""
        if machine is not None and self._meta("outbox_stream") is None:
            self._owe_snapshot()  # what was recorded before this machine joined the shared store

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
        batch = BatchCounts(uses)
        log_rows = json.dumps([[u.ts, u.user, "queued" if u.accepted else "rejected"] for u in uses])
        node_rows = [(ct, batch.packages[ct], *entry) for ct, entry in batch.usage("node").items()]
        model_rows = [(*item.split("/", 1), *entry) for item, entry in batch.usage("model").items()]
        daily_rows = batch.daily_rows()
        referenced_rows = [(t, n, *entry) for (t, n), entry in batch.referenced.items()]
        with atomic(self._db) as db:
            # One statement for the whole batch: executemany would release and retake the GIL once per row.
            db.execute(
                """INSERT INTO prompt_log (ts, user, outcome)
                   SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]')
                   FROM json_each(?)""",
                (log_rows,),
            )
            last_id = db.execute("SELECT last_insert_rowid()").fetchone()[0]
            db.executemany(
                """INSERT INTO node_usage (class_type, package, count, first_seen, last_seen)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (class_type) DO UPDATE SET
                       count = count + excluded.count, package = excluded.package,
                       first_seen = MIN(first_seen, excluded.first_seen),
                       last_seen = MAX(last_seen, excluded.last_seen)""",
                node_rows,
            )
            db.executemany(
                """INSERT INTO model_usage (model_type, model_name, count, first_seen, last_seen, in_prompt)
                   VALUES (?, ?, ?, ?, ?, ?3)
                   ON CONFLICT (model_type, model_name) DO UPDATE SET
                       count = count + excluded.count, in_prompt = in_prompt + excluded.count,
                       first_seen = MIN(first_seen, excluded.first_seen),
                       last_seen = MAX(last_seen, excluded.last_seen)""",
                model_rows,
            )
            db.executemany(DAILY_UPSERT, daily_rows)
            db.executemany(REFERENCE_UPSERT, referenced_rows)
            row_ids = list(range(last_id - len(uses) + 1, last_id + 1))
            self._owe(db, outbox.RECORD, lambda: outbox.record_body(
                row_ids[0] if row_ids else 0, log_rows, node_rows, model_rows, daily_rows, referenced_rows
            ))
        self.version += 1
        return row_ids

    def record_outcomes(self, outcomes: Iterable[Outcome]) -> None:
        """Apply how prompts ended to their log rows and to the daily rows of every item they used.

        The files ComfyUI loaded while a prompt ran are the second witness: each counts as used by that
        prompt (once, whether or not its inputs named it), and loaded wins over switched off.
        """
        outcomes = list(outcomes)
        with atomic(self._db) as db:
            record_loaded(db, [o for o in outcomes if o.loaded])
            applied = [with_loaded(o) for o in outcomes]
            db.executemany(
                "UPDATE prompt_log SET outcome = ?, exec_ms = ?, cached_nodes = ? WHERE id = ?",
                [(o.result, o.exec_ms, o.cached_nodes, o.row_id) for o in applied],
            )
            db.executemany(DAILY_UPSERT, daily_results(applied))
            self._owe(db, outbox.OUTCOMES, lambda: outbox.outcomes_body(outcomes))
        self.version += 1

    def note_installed(self, packages: Iterable[str] = (), models: Iterable[tuple[str, str]] = ()) -> None:
        """Remember when each item was first seen installed; later sightings change nothing (not even the version)."""
        now, packages, models = self.now(), list(packages), list(models)
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
                self._owe(db, outbox.INSTALLED, lambda: outbox.installed_body(now, packages, models))
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
            self._owe(db, outbox.RESET, lambda: "{}")
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
                counts = import_legacy_tables(db)
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

    # ---- what a shared store is owed (recording/shared.py delivers it)

    def _owe(self, db: sqlite3.Connection, op: str, body: Callable[[], str]) -> None:
        """Owe the shared store this write, in the write's own transaction (nothing without a shared store)."""
        if self.machine is None:
            return
        db.execute("INSERT INTO outbox (op, body) VALUES (?, ?)", (op, body()))
        oldest, newest = db.execute("SELECT MIN(seq), MAX(seq) FROM outbox").fetchone()
        if newest - oldest >= OUTBOX_LIMIT:
            self._owe_snapshot()

    def _owe_snapshot(self) -> None:
        """Replace what is owed by one snapshot of every total: bounded, and a superset of what it replaces."""
        with atomic(self._db) as db:
            db.execute("DELETE FROM outbox")
            body = {table: db.execute(f"SELECT {columns} FROM {table}").fetchall()
                    for table, columns in outbox.SNAPSHOT_TABLES.items()}
            db.execute("INSERT INTO outbox (op, body) VALUES (?, ?)", (outbox.SNAPSHOT, json.dumps(body)))
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('outbox_stream', ?)", (str(uuid.uuid4()),))

    @property
    def outbox_stream(self) -> str | None:
        """The id of this database's outbox: a replaced database starts a new stream (its seqs restart)."""
        row = self._reader().execute("SELECT value FROM meta WHERE key = 'outbox_stream'").fetchone()
        return row[0] if row else None

    def owe_action(self, at: int, action: str, target: str, by: str) -> None:
        """Tell the shared store of a file action taken here (nothing without one): on a shared volume, every
        machine's users should see who moved what (writer thread)."""
        with atomic(self._db) as db:
            self._owe(db, outbox.ACTION, lambda: outbox.action_body(at, action, target, by))

    def owed(self, limit: int) -> list[tuple[int, str, str]]:
        """The oldest `limit` outbox rows (seq, op, body), in order (any thread)."""
        return self._reader().execute("SELECT seq, op, body FROM outbox ORDER BY seq LIMIT ?", (limit,)).fetchall()

    def owed_count(self) -> int:
        return self._reader().execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def delivered(self, up_to_seq: int) -> None:
        """The shared store applied every outbox row up to `up_to_seq`: they are owed no more (writer thread)."""
        with atomic(self._db) as db:
            db.execute("DELETE FROM outbox WHERE seq <= ?", (up_to_seq,))

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
        where, args = view_filter(view, self.machine)
        rows = self._reader().execute(
            f"""SELECT item, SUM(prompts), SUM(successes), SUM(failures), SUM(interrupted), SUM(rejected),
                       SUM(exec_ms), MIN(first_ts), MAX(last_ts)
                FROM daily WHERE kind = ? {where} GROUP BY item""",
            (kind, *args),
        )
        return {item: Totals(*values) for item, *values in rows}

    def daily_series(self, kind: str, item: str, view: View = EVERYTHING) -> dict[int, Totals]:
        """day -> one item's totals that day, for the days it has rows."""
        where, args = view_filter(view, self.machine)
        rows = self._reader().execute(
            f"""SELECT day, SUM(prompts), SUM(successes), SUM(failures), SUM(interrupted), SUM(rejected),
                       SUM(exec_ms), MIN(first_ts), MAX(last_ts)
                FROM daily WHERE kind = ? AND item = ? {where} GROUP BY day ORDER BY day""",
            (kind, item, *args),
        )
        return {day: Totals(*values) for day, *values in rows}

    def daily_rows(self, view: View = EVERYTHING) -> list[tuple]:
        """Every daily row of `view`: (day, kind, item, user, prompts, successes, failures, interrupted, rejected, exec_ms)."""
        where, args = view_filter(view, self.machine)
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


    # ---- model loads and unload overrides (memory/ is their only user)

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
            self._owe(db, outbox.LOAD, lambda: outbox.load_body(storable(model_type), storable(model_name), ms, at))
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

    def save_hashes(self, hashes: Iterable[tuple[tuple[int, int, int, int], str]],
                    names: Iterable[tuple[str, str, str]] = ()) -> None:
        """Remember content hashes by (device, inode, size, mtime), where a newer stamp of one inode replaces
        the old, and by listed name (type, name, digest): what a shared store is owed, only what changed."""
        with atomic(self._db) as db:
            db.executemany(
                "INSERT OR REPLACE INTO hash_cache (device, inode, size, mtime_ns, digest) VALUES (?, ?, ?, ?, ?)",
                [(*map(int64, stamp), digest) for stamp, digest in hashes],
            )
            changed = [
                (t, n, digest) for t, n, digest in ((storable(t), storable(n), d) for t, n, d in names)
                if db.execute("""INSERT INTO model_digests (model_type, model_name, digest) VALUES (?, ?, ?)
                                 ON CONFLICT (model_type, model_name) DO UPDATE SET digest = excluded.digest
                                 WHERE digest != excluded.digest""",
                              (t, n, digest)).rowcount
            ]
            if changed:
                self._owe(db, outbox.DIGESTS, lambda: json.dumps(changed))

    def cached_hashes(self) -> dict[tuple[int, int, int, int], str]:
        rows = self._reader().execute("SELECT device, inode, size, mtime_ns, digest FROM hash_cache")
        return {(uint64(d), uint64(i), s, m): digest for d, i, s, m, digest in rows}
