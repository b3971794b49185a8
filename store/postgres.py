"""The shared store: many ComfyUI machines' usage in one PostgreSQL database, read as one fleet.

Why a second implementation rather than one over SQLAlchemy Core: the local SQLite store is the hot path
(every prompt of every machine) and its SQL is tuned to SQLite (one statement per batch, `json_each`);
the shared store only ever applies what machines' outboxes deliver (store/outbox.py) and answers reads.
Its tables are the local ones with a `machine` column leading every key, so reads sum machines together
(or filter one), and a delivery applies each outbox row exactly once: the machine's row holds the last
sequence number applied, updated in the same transaction as the rows it applied.

psycopg (3) is imported only when a shared store is configured: SQLite needs nothing installed.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Callable, Iterable

from ..domain.values import DAY, EVERYTHING, KINDS, Totals, View, model_key
from .outbox import ACTION, DIGESTS, INSTALLED, LOAD, OUTCOMES, RECORD, RESET, SNAPSHOT, SNAPSHOT_TABLES, outcomes_of
from .rows import daily_results, with_loaded

CONNECT_TIMEOUT_SECONDS = 3
"""A shared store that does not answer within this is unreachable for now; the outbox keeps what is owed."""

MIGRATIONS = [
    """
    CREATE TABLE machines (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        stream      TEXT NOT NULL,               -- the outbox it delivers from (a new local database: a new one)
        last_seq    BIGINT NOT NULL DEFAULT 0,   -- the last outbox row applied: deliveries apply each row once
        applied     BIGINT NOT NULL DEFAULT 0,   -- rows applied ever (never goes back: the fleet's cache key)
        last_report BIGINT NOT NULL,             -- when it last delivered (Unix seconds)
        retired     BOOLEAN NOT NULL DEFAULT false  -- an earlier database of a machine: its evidence, never silent
    );
    CREATE TABLE prompt_log (
        machine      TEXT NOT NULL,
        id           BIGINT NOT NULL,            -- the machine's own prompt-log id
        ts           BIGINT NOT NULL,
        "user"       TEXT NOT NULL,
        outcome      TEXT,
        exec_ms      BIGINT,
        cached_nodes BIGINT,
        PRIMARY KEY (machine, id)
    );
    CREATE TABLE node_usage (
        machine TEXT NOT NULL, class_type TEXT NOT NULL, package TEXT NOT NULL,
        count BIGINT NOT NULL, first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL,
        PRIMARY KEY (machine, class_type)
    );
    CREATE TABLE model_usage (
        machine TEXT NOT NULL, model_type TEXT NOT NULL, model_name TEXT NOT NULL,
        count BIGINT NOT NULL, first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL,
        in_prompt BIGINT NOT NULL DEFAULT 0, loaded BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (machine, model_type, model_name)
    );
    CREATE TABLE model_references (
        machine TEXT NOT NULL, model_type TEXT NOT NULL, model_name TEXT NOT NULL,
        count BIGINT NOT NULL, first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL,
        PRIMARY KEY (machine, model_type, model_name)
    );
    CREATE TABLE daily (
        machine TEXT NOT NULL, kind TEXT NOT NULL, day BIGINT NOT NULL, item TEXT NOT NULL, "user" TEXT NOT NULL,
        prompts BIGINT NOT NULL DEFAULT 0, successes BIGINT NOT NULL DEFAULT 0, failures BIGINT NOT NULL DEFAULT 0,
        interrupted BIGINT NOT NULL DEFAULT 0, rejected BIGINT NOT NULL DEFAULT 0, exec_ms BIGINT NOT NULL DEFAULT 0,
        first_ts BIGINT, last_ts BIGINT,
        PRIMARY KEY (machine, kind, day, item, "user")
    );
    CREATE TABLE package_inventory (
        machine TEXT NOT NULL, package TEXT NOT NULL, first_installed BIGINT NOT NULL,
        PRIMARY KEY (machine, package)
    );
    CREATE TABLE model_inventory (
        machine TEXT NOT NULL, model_type TEXT NOT NULL, model_name TEXT NOT NULL, first_installed BIGINT NOT NULL,
        PRIMARY KEY (machine, model_type, model_name)
    );
    CREATE TABLE model_loads (
        machine TEXT NOT NULL, model_type TEXT NOT NULL, model_name TEXT NOT NULL,
        load_count BIGINT NOT NULL, total_ms BIGINT NOT NULL, last_ms BIGINT NOT NULL, last_loaded BIGINT NOT NULL,
        PRIMARY KEY (machine, model_type, model_name)
    );
    -- File actions taken on any machine (quarantine, restore, delete): on a shared volume they are everyone's.
    CREATE TABLE actions (
        machine TEXT NOT NULL, at BIGINT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, requested_by TEXT
    );
    CREATE INDEX actions_at ON actions (at);
    """,
    """
    -- The content hash each machine's duplicate search found for a listed name: names of one content on
    -- machines that do not list each other's names are one file seen through other paths (content_twins).
    CREATE TABLE model_digests (
        machine TEXT NOT NULL, model_type TEXT NOT NULL, model_name TEXT NOT NULL, digest TEXT NOT NULL,
        PRIMARY KEY (machine, model_type, model_name)
    );
    CREATE INDEX model_digests_digest ON model_digests (digest);
    """,
]
"""MIGRATIONS[i] takes the shared schema from version i to i + 1. Append only; never edit a released one."""

MACHINE_TABLES = ("prompt_log", "node_usage", "model_usage", "model_references", "daily", "package_inventory",
                  "model_inventory", "model_loads")
"""A machine's statistics: what a reset of its statistics deletes."""
KEPT_THROUGH_RESET = ("model_digests", "actions")
"""A machine's facts that are not statistics: a reset keeps them, as the local store does."""

DAILY_UPSERT = """
    INSERT INTO daily AS d (machine, kind, day, item, "user", prompts, successes, failures, interrupted, rejected,
                            exec_ms, first_ts, last_ts)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (machine, kind, day, item, "user") DO UPDATE SET
        prompts = d.prompts + excluded.prompts, successes = d.successes + excluded.successes,
        failures = d.failures + excluded.failures, interrupted = d.interrupted + excluded.interrupted,
        rejected = d.rejected + excluded.rejected, exec_ms = d.exec_ms + excluded.exec_ms,
        first_ts = LEAST(d.first_ts, excluded.first_ts), last_ts = GREATEST(d.last_ts, excluded.last_ts)
"""
"""LEAST and GREATEST skip NULLs, as 'no time yet' must."""


def _usage_upsert(table: str, key: str, extra: str = "", extra_set: str = "") -> str:
    """An upsert adding a batch's counts to one usage table (one shape for nodes, models and references)."""
    columns = f"machine, {key}, count, first_seen, last_seen{extra}"
    values = ", ".join(["%s"] * len(columns.split(",")))
    return f"""
        INSERT INTO {table} AS u ({columns}) VALUES ({values})
        ON CONFLICT (machine, {key}) DO UPDATE SET
            count = u.count + excluded.count, first_seen = LEAST(u.first_seen, excluded.first_seen),
            last_seen = GREATEST(u.last_seen, excluded.last_seen){extra_set}"""


NODE_UPSERT = _usage_upsert("node_usage", "class_type", ", package", ", package = excluded.package")
MODEL_UPSERT = _usage_upsert("model_usage", "model_type, model_name", ", in_prompt, loaded",
                             ", in_prompt = u.in_prompt + excluded.in_prompt, loaded = u.loaded + excluded.loaded")
REFERENCE_UPSERT = _usage_upsert("model_references", "model_type, model_name")


def connect(url: str):
    """A connection to the shared store (psycopg imported here: only a configured shared store needs it)."""
    try:
        import psycopg
    except ImportError:
        raise RuntimeError("psycopg is not installed: pip install 'psycopg[binary]' into ComfyUI's Python") from None

    db = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True)
    db.execute("SET jit = off")  # compiling a read took 0.9 s of a 1.4 s one at 20,000 files; it never paid off here
    return db


def migrate(db) -> int:
    """Apply every pending shared-schema migration; two machines starting at once apply each one once."""
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(hashtext('comfyui-usage-stats schema'))")
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else 0
        if version > len(MIGRATIONS):
            raise RuntimeError(f"the shared store's schema v{version} is newer than this extension (v{len(MIGRATIONS)})")
        for script in MIGRATIONS[version:]:
            db.execute(script)
        db.execute("DELETE FROM schema_version")
        db.execute("INSERT INTO schema_version (version) VALUES (%s)", (len(MIGRATIONS),))
    return len(MIGRATIONS)


class FleetStore:
    """Every machine's usage: deliveries from outboxes, and the reads reports make, summed over machines."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time):
        self.url = url
        self.clock = clock
        self._local = threading.local()
        migrate(self._connection())

    def now(self) -> int:
        return int(self.clock())

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _connection(self):
        """This thread's connection, opened again after it broke (the server restarted, the network dropped)."""
        db = getattr(self._local, "db", None)
        if db is None or db.closed or db.broken:
            db = self._local.db = connect(self.url)
        return db

    # ---- deliveries (a machine's shipper)

    def deliver(self, machine: str, name: str, stream: str, rows: Iterable[tuple[int, str, str]]) -> int:
        """Apply outbox rows (seq, op, body) of `machine` in one transaction; returns the last seq applied.

        Rows at or below the machine's last applied seq were applied before (a delivery whose answer was lost)
        and are skipped: each row counts once, however often it is sent. A new `stream` (the machine's
        database was replaced) numbers from 1 again; its first row is a snapshot that replaces the old rows.
        """
        db = self._connection()
        with db.transaction():
            db.execute(
                """INSERT INTO machines (id, name, stream, last_report) VALUES (%s, %s, %s, %s)
                   ON CONFLICT (id) DO UPDATE SET name = excluded.name, last_report = excluded.last_report""",
                (machine, name, stream, self.now()),
            )
            known, last = db.execute("SELECT stream, last_seq FROM machines WHERE id = %s FOR UPDATE", (machine,)).fetchone()
            if known != stream:
                last = _retire(db, machine, known, stream)
            applied = 0
            for seq, op, body in rows:
                if seq > last:
                    APPLY[op](db, machine, json.loads(body))
                    last, applied = seq, applied + 1
            db.execute("UPDATE machines SET last_seq = %s, applied = applied + %s WHERE id = %s", (last, applied, machine))
        return last

    # ---- reads (any thread), every machine summed

    @property
    def version(self) -> int:
        """Changes with every delivery from any machine: a cache key for reports."""
        return self._one("SELECT COALESCE(SUM(applied), 0) + COUNT(*) FROM machines")

    def machines(self) -> list[tuple[str, str, int, bool]]:
        """(id, name, last report, retired) of every machine that ever reported, by name."""
        return self._all("SELECT id, name, last_report, retired FROM machines ORDER BY name, id")

    def recent_actions(self, limit: int) -> list[tuple[str, int, str, str, str | None]]:
        """(machine name, at, action, target, requested by) of the latest file actions on any machine."""
        return self._all(
            """SELECT m.name, a.at, a.action, a.target, a.requested_by FROM actions a JOIN machines m ON m.id = a.machine
               ORDER BY a.at DESC LIMIT %s""",
            (limit,),
        )

    def model_machines(self) -> dict[tuple[str, str], list[tuple[str, str, int, int]]]:
        """(type, name) -> (machine id, name, its last use, its last report) of every machine that used it."""
        rows = self._all(
            """SELECT u.model_type, u.model_name, m.id, m.name, u.last_seen, m.last_report
               FROM model_usage u JOIN machines m ON m.id = u.machine WHERE u.count > 0 ORDER BY u.last_seen DESC"""
        )
        return _by_item(((model_type, model_name), machine) for model_type, model_name, *machine in rows)

    def package_machines(self) -> dict[str, list[tuple[str, str, int, int]]]:
        """pack -> (machine id, name, its last use, its last report) of every machine that used a node of it."""
        rows = self._all(
            """SELECT u.package, m.id, m.name, MAX(u.last_seen), m.last_report
               FROM node_usage u JOIN machines m ON m.id = u.machine WHERE u.count > 0
               GROUP BY u.package, m.id, m.name, m.last_report ORDER BY 4 DESC"""
        )
        return _by_item((package, machine) for package, *machine in rows)

    def incomplete_evidence(self, stale_before: int) -> dict[tuple[str, str], list[str]]:
        """(type, name) -> the machines listing that file that have not reported since `stale_before`.

        Their latest use of it may be missing here, so such a file is never safe to remove.
        """
        rows = self._all(
            """SELECT i.model_type, i.model_name, m.name FROM model_inventory i JOIN machines m ON m.id = i.machine
               WHERE m.last_report < %s AND NOT m.retired ORDER BY m.name""",
            (stale_before,),
        )
        silent: dict[tuple[str, str], list[str]] = {}
        for model_type, model_name, machine in rows:
            silent.setdefault((model_type, model_name), []).append(machine)
        return silent

    def content_twins(self) -> dict[tuple[str, str], set[tuple[str, str]]]:
        """(type, name) -> the names other machines list the same content under, where neither machine ever
        listed the other's name: one file seen through another mount point or folder layout.

        Two names of one content that one machine lists both of are two copies there (duplicates), not one
        file, and keep their own use. Only contents hashed under more than one name are read (two queries
        the planner cannot get wrong: a join of every hash was 0.8 s at 20,000 files on four machines).
        """
        hashed = self._all(
            """SELECT machine, model_type, model_name, digest FROM model_digests WHERE digest IN (
                   SELECT digest FROM model_digests GROUP BY digest
                   HAVING MIN(model_type) <> MAX(model_type) OR MIN(model_name) <> MAX(model_name))"""
        )
        if not hashed:
            return {}
        listed = set(self._all("SELECT machine, model_type, model_name FROM model_inventory WHERE model_name = ANY(%s)",
                               ([name for _, _, name, _ in hashed],)))
        return _twins(hashed, listed)

    def node_rows(self) -> list[tuple[str, str, int, int, int]]:
        return self._all(
            """SELECT class_type, (array_agg(package ORDER BY last_seen DESC))[1], SUM(count)::bigint,
                      MIN(first_seen), MAX(last_seen)
               FROM node_usage GROUP BY class_type ORDER BY 3 DESC, class_type"""
        )

    def model_rows(self) -> list[tuple[str, str, int, int, int]]:
        return self._all(
            """SELECT model_type, model_name, SUM(count)::bigint, MIN(first_seen), MAX(last_seen)
               FROM model_usage GROUP BY model_type, model_name"""
        )

    def witness_rows(self) -> dict[tuple[str, str], tuple[int, int]]:
        rows = self._all("""SELECT model_type, model_name, SUM(in_prompt)::bigint, SUM(loaded)::bigint
                            FROM model_usage GROUP BY model_type, model_name""")
        return {(t, n): (in_prompt, loaded) for t, n, in_prompt, loaded in rows}

    def reference_rows(self) -> dict[tuple[str, str], tuple[int, int, bool]]:
        rows = self._all(
            """SELECT r.model_type, r.model_name, r.count, r.last_seen,
                      EXISTS (SELECT 1 FROM model_usage u WHERE u.model_type = r.model_type
                              AND u.model_name = r.model_name AND u.count > 0)
               FROM (SELECT model_type, model_name, SUM(count)::bigint AS count, MAX(last_seen) AS last_seen
                     FROM model_references GROUP BY model_type, model_name) r
               WHERE r.count > 0"""
        )
        return {(t, n): (count, last, used) for t, n, count, last, used in rows}

    def package_first_installed(self) -> dict[str, int]:
        return dict(self._all("SELECT package, MIN(first_installed) FROM package_inventory GROUP BY package"))

    def model_first_installed(self) -> dict[tuple[str, str], int]:
        rows = self._all("""SELECT model_type, model_name, MIN(first_installed) FROM model_inventory
                            GROUP BY model_type, model_name""")
        return {(t, n): ts for t, n, ts in rows}

    def prompt_count(self) -> int:
        return self._one("SELECT COALESCE(SUM(prompts), 0)::bigint FROM daily WHERE kind = 'prompt'")

    def totals(self, kind: str, view: View = EVERYTHING) -> dict[str, Totals]:
        where, args = _view_filter(view)
        rows = self._all(
            f"""SELECT item, {_SUMS} FROM daily WHERE kind = %s {where} GROUP BY item""", (kind, *args)
        )
        return {item: Totals(*values) for item, *values in rows}

    def daily_series(self, kind: str, item: str, view: View = EVERYTHING) -> dict[int, Totals]:
        where, args = _view_filter(view)
        rows = self._all(
            f"""SELECT day, {_SUMS} FROM daily WHERE kind = %s AND item = %s {where} GROUP BY day ORDER BY day""",
            (kind, item, *args),
        )
        return {day: Totals(*values) for day, *values in rows}

    def daily_rows(self, view: View = EVERYTHING) -> list[tuple]:
        where, args = _view_filter(view)
        return self._all(
            f"""SELECT day, kind, item, "user", SUM(prompts)::bigint, SUM(successes)::bigint, SUM(failures)::bigint,
                       SUM(interrupted)::bigint, SUM(rejected)::bigint, SUM(exec_ms)::bigint
                FROM daily WHERE kind = ANY(%s) {where} GROUP BY day, kind, item, "user" ORDER BY day, kind, item, "user" """,
            (list(KINDS), *args),
        )

    def first_day(self) -> int | None:
        return self._one("SELECT MIN(day) FROM daily WHERE kind = 'prompt'")

    def execution_times(self, since_ts: int | None = None, user: str | None = None) -> list[int]:
        rows = self._all(
            """SELECT exec_ms FROM prompt_log WHERE exec_ms IS NOT NULL AND ts >= %s
               AND (%s::text IS NULL OR "user" = %s) ORDER BY exec_ms""",
            (since_ts or 0, user, user),
        )
        return [ms for (ms,) in rows]

    def cached_nodes(self, since_ts: int | None = None, user: str | None = None) -> tuple[int, int]:
        return tuple(self._all(
            """SELECT COALESCE(SUM(cached_nodes), 0)::bigint, COUNT(cached_nodes) FROM prompt_log
               WHERE ts >= %s AND (%s::text IS NULL OR "user" = %s)""",
            (since_ts or 0, user, user),
        )[0])

    def outcomes_since(self, since_ts: int) -> dict[str, int]:
        return dict(self._all(
            "SELECT COALESCE(outcome, 'unknown'), COUNT(*) FROM prompt_log WHERE ts >= %s GROUP BY 1", (since_ts,)
        ))

    def models_used_since(self, since_ts: int) -> list[tuple[str, str, int, int]]:
        return self._all(
            """SELECT model_type, model_name, SUM(count)::bigint, MAX(last_seen) FROM model_usage
               GROUP BY model_type, model_name HAVING MAX(last_seen) >= %s ORDER BY 4 DESC""",
            (since_ts,),
        )

    def users(self) -> list[str]:
        return [u for (u,) in self._all("""SELECT DISTINCT "user" FROM daily WHERE kind = 'prompt' ORDER BY 1""")]

    def load_rows(self) -> dict[tuple[str, str], tuple[int, int, int, int]]:
        rows = self._all(
            """SELECT model_type, model_name, SUM(load_count)::bigint, SUM(total_ms)::bigint,
                      (array_agg(last_ms ORDER BY last_loaded DESC))[1], MAX(last_loaded)
               FROM model_loads GROUP BY model_type, model_name"""
        )
        return {(t, n): tuple(rest) for t, n, *rest in rows}

    def tracking_since(self) -> int | None:
        return self._one(
            """SELECT MIN(ts) FROM (SELECT MIN(first_installed) AS ts FROM package_inventory
                                    UNION ALL SELECT MIN(first_installed) FROM model_inventory) firsts"""
        )

    def _all(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Rows of a read; a connection the server dropped while idle (it restarted) is replaced once."""
        db = self._connection()  # a thread's first connection that fails raises as it is: the store is down
        try:
            return db.execute(sql, args).fetchall()
        except Exception:
            if not db.broken:
                raise
            return self._connection().execute(sql, args).fetchall()

    def _one(self, sql: str, args: tuple = ()):
        return self._all(sql, args)[0][0]


_SUMS = """SUM(prompts)::bigint, SUM(successes)::bigint, SUM(failures)::bigint, SUM(interrupted)::bigint,
           SUM(rejected)::bigint, SUM(exec_ms)::bigint, MIN(first_ts), MAX(last_ts)"""


def _retire(db, machine: str, old_stream: str, stream: str) -> int:
    """The machine's database was replaced (moved aside as corrupt, restored, reset by hand): what its old
    one delivered stays evidence, under an identity of its own that is never silent, and the new database's
    outbox starts from seq 0 (its first row, a snapshot, fills the machine's rows again). Returns 0."""
    retired = f"{machine}:{old_stream}"
    db.execute(
        """INSERT INTO machines (id, name, stream, last_seq, applied, last_report, retired)
           SELECT %s, name || ' (earlier database)', stream, last_seq, applied, last_report, true FROM machines WHERE id = %s""",
        (retired, machine),
    )
    for table in (*MACHINE_TABLES, *KEPT_THROUGH_RESET):
        db.execute(f"UPDATE {table} SET machine = %s WHERE machine = %s", (retired, machine))
    db.execute("UPDATE machines SET stream = %s, last_seq = 0 WHERE id = %s", (stream, machine))
    return 0


def _by_item(rows: Iterable[tuple[object, list]]) -> dict:
    """item -> its machines' (id, name, last use, last report), in the order the rows come."""
    used_on: dict = {}
    for item, machine in rows:
        used_on.setdefault(item, []).append(tuple(machine))
    return used_on


def _twins(hashed: list[tuple[str, str, str, str]], listed: set[tuple[str, str, str]]) -> dict:
    """content_twins from (machine, type, name, digest) rows and the (machine, type, name) ever listed."""
    by_digest: dict[str, list[tuple[str, str, str]]] = {}
    for machine, model_type, model_name, digest in hashed:
        by_digest.setdefault(digest, []).append((machine, model_type, model_name))
    twins: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for names in by_digest.values():
        for a_machine, *a in names:
            for b_machine, *b in names:
                if a_machine != b_machine and a != b and (a_machine, *b) not in listed and (b_machine, *a) not in listed:
                    twins.setdefault(tuple(a), set()).add(tuple(b))
    return twins


def _view_filter(view: View) -> tuple[str, tuple]:
    where, args = "", ()
    if view.machine is not None:
        where, args = " AND machine = %s", (view.machine,)
    if view.since_day is not None:
        where, args = where + " AND day >= %s", (*args, view.since_day)
    if view.user is not None:
        where, args = where + ' AND "user" = %s', (*args, view.user)
    return where, args


# ---- applying one outbox row: the local store's write methods, for one machine of many


def _apply_record(db, machine: str, body: dict) -> None:
    """A batch of prompts (store/outbox.record_body): its log rows, and its sums added to the machine's."""
    _many(db, """INSERT INTO prompt_log (machine, id, ts, "user", outcome) VALUES (%s, %s, %s, %s, %s)
                 ON CONFLICT (machine, id) DO NOTHING""",
          [(machine, body["first_id"] + i, *row) for i, row in enumerate(body["log"])])
    _many(db, NODE_UPSERT, [(machine, ct, count, first, last, package) for ct, package, count, first, last in body["nodes"]])
    _many(db, MODEL_UPSERT, [(machine, *row, row[2], 0) for row in body["models"]])
    _many(db, DAILY_UPSERT, [(machine, *row) for row in body["daily"]])
    _many(db, REFERENCE_UPSERT, [(machine, *row) for row in body["referenced"]])


def _apply_outcomes(db, machine: str, body: list) -> None:
    outcomes = outcomes_of(body)
    for outcome in outcomes:
        _apply_loaded(db, machine, outcome)
    outcomes = [with_loaded(o) for o in outcomes]
    _many(db, "UPDATE prompt_log SET outcome = %s, exec_ms = %s, cached_nodes = %s WHERE machine = %s AND id = %s",
          [(o.result, o.exec_ms, o.cached_nodes, machine, o.row_id) for o in outcomes])
    _many(db, DAILY_UPSERT, [(machine, *row) for row in daily_results(outcomes)])


def _apply_loaded(db, machine: str, outcome) -> None:
    """As store/rows.record_loaded: files only the run saw become uses; loaded wins over switched off."""
    use = outcome.use
    new = outcome.loaded - use.models
    _many(db, MODEL_UPSERT, [(machine, t, n, 1, use.ts, use.ts, 0, 0) for t, n in new])
    _many(db, DAILY_UPSERT, [(machine, "model", use.ts // DAY, model_key(t, n), use.user, 1, 0, 0, 0, 0, 0, use.ts, use.ts)
                             for t, n in new])
    _many(db, "UPDATE model_usage SET loaded = loaded + 1 WHERE machine = %s AND model_type = %s AND model_name = %s",
          [(machine, t, n) for t, n in outcome.loaded])
    _many(db, """UPDATE model_references SET count = count - 1
                 WHERE machine = %s AND model_type = %s AND model_name = %s""",
          [(machine, t, n) for t, n in outcome.loaded & use.referenced])


def _apply_installed(db, machine: str, body: dict) -> None:
    _many(db, """INSERT INTO package_inventory (machine, package, first_installed) VALUES (%s, %s, %s)
                 ON CONFLICT DO NOTHING""", [(machine, p, body["at"]) for p in body["packages"]])
    _many(db, """INSERT INTO model_inventory (machine, model_type, model_name, first_installed) VALUES (%s, %s, %s, %s)
                 ON CONFLICT DO NOTHING""", [(machine, t, n, body["at"]) for t, n in body["models"]])


def _apply_load(db, machine: str, body: list) -> None:
    model_type, model_name, ms, at = body
    db.execute(
        """INSERT INTO model_loads AS l (machine, model_type, model_name, load_count, total_ms, last_ms, last_loaded)
           VALUES (%s, %s, %s, 1, %s, %s, %s)
           ON CONFLICT (machine, model_type, model_name) DO UPDATE SET
               load_count = l.load_count + 1, total_ms = l.total_ms + excluded.total_ms,
               last_ms = excluded.last_ms, last_loaded = GREATEST(l.last_loaded, excluded.last_loaded)""",
        (machine, model_type, model_name, ms, ms, at),
    )


def _apply_digests(db, machine: str, body: list) -> None:
    _many(db, """INSERT INTO model_digests (machine, model_type, model_name, digest) VALUES (%s, %s, %s, %s)
                 ON CONFLICT (machine, model_type, model_name) DO UPDATE SET digest = excluded.digest""",
          [(machine, *row) for row in body])


def _apply_action(db, machine: str, body: list) -> None:
    db.execute("INSERT INTO actions (machine, at, action, target, requested_by) VALUES (%s, %s, %s, %s, %s)",
               (machine, *body))


def _apply_reset(db, machine: str, body: dict) -> None:
    """The machine's user reset its statistics: its rows go; other machines' evidence stays."""
    for table in MACHINE_TABLES:
        db.execute(f"DELETE FROM {table} WHERE machine = %s", (machine,))


def _apply_snapshot(db, machine: str, body: dict) -> None:
    """Every total of the machine at once: its rows are replaced (the prompt log's detail is kept)."""
    for table, columns in SNAPSHOT_TABLES.items():
        db.execute(f"DELETE FROM {table} WHERE machine = %s", (machine,))
        quoted = columns.replace("user", '"user"')
        values = ", ".join(["%s"] * (1 + len(columns.split(","))))
        _many(db, f"INSERT INTO {table} (machine, {quoted}) VALUES ({values})", [(machine, *row) for row in body[table]])


def _many(db, sql: str, rows: list) -> None:
    if rows:
        with db.cursor() as cursor:
            cursor.executemany(sql, rows)


APPLY: dict[str, Callable] = {
    RECORD: _apply_record, OUTCOMES: _apply_outcomes, INSTALLED: _apply_installed, LOAD: _apply_load, RESET: _apply_reset,
    SNAPSHOT: _apply_snapshot, ACTION: _apply_action, DIGESTS: _apply_digests,
}
