"""The SQL shapes of usage rows, shared by the store and the legacy import: daily upserts, outcomes, loads."""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import replace

from ..domain.values import DAY, RESULTS, Outcome, PromptUse, View, model_key

DAILY_UPSERT = """
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


REFERENCE_UPSERT = """
    INSERT INTO model_references (model_type, model_name, count, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (model_type, model_name) DO UPDATE SET
        count = count + excluded.count,
        first_seen = MIN(first_seen, excluded.first_seen),
        last_seen = MAX(last_seen, excluded.last_seen)
"""


def with_loaded(outcome: Outcome) -> Outcome:
    """The outcome with the files ComfyUI loaded counted among the prompt's models (its daily rows included)."""
    if not outcome.loaded <= outcome.use.models:
        return replace(outcome, use=replace(outcome.use, models=outcome.use.models | outcome.loaded))
    return outcome


def record_loaded(db: sqlite3.Connection, outcomes: list[Outcome]) -> None:
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
        db.executemany(DAILY_UPSERT, [("model", day, model_key(t, n), use.user, 1, 0, 0, 0, 0, 0, use.ts, use.ts)
                                       for t, n in new])
        db.executemany("UPDATE model_usage SET loaded = loaded + 1 WHERE model_type = ? AND model_name = ?",
                       list(outcome.loaded))
        db.executemany("UPDATE model_references SET count = count - 1 WHERE model_type = ? AND model_name = ?",
                       list(outcome.loaded & use.referenced))


class BatchCounts:
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
        """Increments for DAILY_UPSERT: accepted prompts as prompts, the others as rejected."""
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


def daily_results(outcomes: list[Outcome]) -> list[tuple]:
    """Daily-row increments for how a batch of prompts ended, on the day each was submitted."""
    rows: dict[tuple, list] = {}
    for outcome in outcomes:
        column = RESULTS.index(outcome.result)
        for key in outcome.use.daily_keys():
            row = rows.setdefault(key, [0, 0, 0, 0])
            row[column] += 1
            row[3] += outcome.exec_ms or 0
    return [(*key, 0, s, f, i, 0, ms, None, None) for key, (s, f, i, ms) in rows.items()]


def view_filter(view: View, machine: str | None = None) -> tuple[str, tuple]:
    """The SQL condition (after WHERE kind = ?) and its arguments for a view of the daily rollup.

    Every row here is this `machine`'s: a view of another machine matches none of them.
    """
    where, args = "", ()
    if view.machine is not None and view.machine != machine:
        where = " AND 0"
    if view.since_day is not None:
        where, args = where + " AND day >= ?", (*args, view.since_day)
    if view.user is not None:
        where, args = where + " AND user = ?", (*args, view.user)
    return where, args


def int64(value: int) -> int:
    """An unsigned 64-bit number (an inode on some filesystems) as the signed integer SQLite stores."""
    return value - (1 << 64) if value >= 1 << 63 else value


def uint64(value: int) -> int:
    return value + (1 << 64) if value < 0 else value
