"""Count fields shared by every report row: all-time counts, or a view's from the daily rollup."""

from __future__ import annotations

from ..domain.values import NO_TOTALS, Totals, View, iso


def empty_package(name: str) -> dict:
    return {"package": name, "total_executions": 0, "used_nodes": 0, "total_nodes": 0, "last_seen": None, "nodes": []}


def node_dict(class_type: str, package: str, count: int, first, last, summed: Totals) -> dict:
    return {"class_type": class_type, "package": package, **count_fields(count, first, last, summed)}


def count_fields(count: int, first: int | None, last: int | None, summed: Totals) -> dict:
    return {"count": count, "first_seen": iso(first), "last_seen": iso(last), **summed.outcomes()}


def counts_in_view(item: str, count: int, first: int | None, last: int | None, view: View, totals) -> tuple:
    """(count, first, last, daily totals) of an item as `view` sees it.

    With every day and every user the count is the usage table's, which also holds history from before
    per-day rows existed; a window or a user counts from the daily rows alone.
    """
    summed = (totals or {}).get(item, NO_TOTALS)
    if view.windowed:
        return summed.prompts, summed.first_ts, summed.last_ts, summed
    return count, first, last, summed
