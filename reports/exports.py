"""Reports as files to take elsewhere: CSV that is safe to open in a spreadsheet, and JSON.

Why a module of its own: an export must round-trip every name a disk can hold (commas, quotes, newlines,
any unicode) and must not turn a hostile file name into a spreadsheet formula. Those rules, and the flat
row shape of each report, live here; api/stats.py only streams the chunks.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Iterator

from ..domain.values import DAY, View, day
from ..tracker import UsageStore

FORMATS = ("csv", "json")
WHAT = ("models", "nodes", "packages", "daily")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json; charset=utf-8"}
ROWS_PER_CHUNK = 500
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
"""A spreadsheet runs a cell starting with = + - @ (or a tab or CR before one) as a formula. Such a cell is
written with a leading apostrophe, which spreadsheets hide; a cell that starts with an apostrophe gets one
too, so a reader gets every name back exactly by dropping one leading apostrophe, whenever there is one."""


def encode(file_format: str, rows: list[dict]) -> Iterator[bytes]:
    """The rows as CSV (a header, then one line per row) or as one JSON array, in chunks."""
    return _csv_chunks(rows) if file_format == "csv" else _json_chunks(rows)


def spreadsheet_safe(value):
    """A text cell a spreadsheet shows as text (see FORMULA_STARTS); other values unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv_chunks(rows: list[dict]) -> Iterator[bytes]:
    columns = list(rows[0]) if rows else []
    for start in range(0, max(len(rows), 1), ROWS_PER_CHUNK):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        if start == 0:
            writer.writerow(columns)
        writer.writerows([spreadsheet_safe(_cell(row.get(c))) for c in columns] for row in rows[start : start + ROWS_PER_CHUNK])
        yield buffer.getvalue().encode("utf-8", "backslashreplace")


def _cell(value):
    """Lists (reasons) become one cell; None becomes an empty cell."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(map(str, value))
    return value


def _json_chunks(rows: list[dict]) -> Iterator[bytes]:
    yield b"["
    for start in range(0, len(rows), ROWS_PER_CHUNK):
        text = ",".join(json.dumps(row, ensure_ascii=False) for row in rows[start : start + ROWS_PER_CHUNK])
        yield (("," if start else "") + text).encode("utf-8", "backslashreplace")
    yield b"]"


def model_rows(report: list[dict]) -> list[dict]:
    return [{"model_type": section["model_type"], **model} for section in report for model in section["models"]]


def package_rows(report: list[dict]) -> list[dict]:
    """Packs without their nested node lists (export nodes for those)."""
    return [{key: value for key, value in pack.items() if key != "nodes"} for pack in report]


def daily_rows(store: UsageStore, view: View) -> list[dict]:
    columns = ("day", "kind", "item", "user", "prompts", "successes", "failures", "interrupted", "rejected", "exec_ms")
    return [{**dict(zip(columns, row, strict=True)), "day": day(row[0] * DAY)} for row in store.daily_rows(view)]

