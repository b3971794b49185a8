"""Importing a Node Stats database (ISO text times) into ours, once."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

from ..domain.values import PromptUse
from .rows import DAILY_UPSERT, BatchCounts


def import_legacy_tables(db: sqlite3.Connection) -> dict[str, int]:
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
        db.executemany(DAILY_UPSERT, BatchCounts([PromptUse(ts, {}) for ts in stamps]).daily_rows())
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
