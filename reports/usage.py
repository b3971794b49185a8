"""Usage over time: per node type, per day, and the dashboard summary."""

from __future__ import annotations

from typing import Iterable

from ..domain.values import DAY, EVERYTHING, NO_TOTALS, Totals, View, day
from ..tracker import UsageStore
from .counts import counts_in_view, node_dict


def usage_report(
    node_rows: Iterable[tuple[str, str, int, int, int]],
    current_package: dict[str, str],
    view: View = EVERYTHING,
    totals: dict[str, Totals] | None = None,
) -> list[dict]:
    """Per-node usage, core nodes included, credited to each node's pack as it is today; most used first."""
    nodes = [node_dict(ct, current_package.get(ct, pkg), *counts_in_view(ct, count, first, last, view, totals))
             for ct, pkg, count, first, last in node_rows]
    return [n for n in sorted(nodes, key=lambda n: (-n["count"], n["class_type"])) if n["count"] or not view.windowed]


TOP_ITEMS = 10


def daily_series_report(store: UsageStore, kind: str, item: str, view: View) -> list[dict]:
    """One row per day of the view (every day since the first prompt for 'all'), days without use as zeros."""
    rows = store.daily_series(kind, item, view)
    today = store.now() // DAY
    first = view.since_day if view.since_day is not None else min([*rows, store.first_day() or today, today])
    return [_day_dict(number, rows.get(number)) for number in range(first, today + 1)]


def _day_dict(number: int, totals: Totals | None) -> dict:
    totals = totals or NO_TOTALS
    return {"day": day(number * DAY), "prompts": totals.prompts, **totals.outcomes()}


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
