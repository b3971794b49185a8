"""The model report: every installed and every used model file, classified, per model type."""

from __future__ import annotations

from typing import Iterable, Mapping

from ..domain.tiers import DEFAULT_THRESHOLDS, IMPLICIT_USE, Evidence, Thresholds, classify, merge_evidence, status_reasons
from ..domain.values import EVERYTHING, TIERS, Totals, View, iso, model_key
from .counts import count_fields, counts_in_view


def model_report(
    model_rows: Iterable[tuple[str, str, int, int, int]],
    installed: dict[str, list[str]],
    first_installed: dict[tuple[str, str], int],
    now: int,
    same_file: dict[tuple[str, str], str] | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    view: View = EVERYTHING,
    totals: dict[str, Totals] | None = None,
    evidence: Mapping[tuple[str, str], Evidence] | None = None,
    twins: Mapping[tuple[str, str], set[tuple[str, str]]] | None = None,
) -> list[dict]:
    """Per model type, every installed model and every used one, classified; types in name order.

    `same_file` maps (type, name) to the file it is (its real path, its inode), for names of one file: the
    same file listed under two names is used when either name is, so neither looks removable. `twins` maps
    (type, name) to names other machines of a shared store list the same content under (content_twins):
    on a shared volume they are one file, so they share their use the same way.
    Counts follow `view` (with the models' daily `totals`, keyed by model_key); tiers never do.
    `evidence` maps (type, name) to a further cap and its reasons (kept, used by saved workflows).
    """
    usage = {(t, n): (count, first, last) for t, n, count, first, last in model_rows}
    borrowed = _share_usage_between_names(usage, _other_names(same_file or {}, twins or {}))
    keys = {(t, n) for t, names in installed.items() for n in names} | set(usage)
    installed_keys = {(t, n) for t, names in installed.items() for n in names}
    by_type: dict[str, list[dict]] = {}
    for model_type, name in keys:
        count, first, last = usage.get((model_type, name), (0, None, None))
        is_installed = (model_type, name) in installed_keys
        implicit = (("unused_new", [IMPLICIT_USE[model_type]]) if model_type in IMPLICIT_USE and is_installed else (None, []))
        cap, reasons = merge_evidence(implicit, (evidence or {}).get((model_type, name)) if is_installed else None)
        if (model_type, name) in borrowed:
            reasons = [*reasons, _used_as(borrowed[(model_type, name)], (twins or {}).get((model_type, name), ()))]
        status = classify(
            last, first_installed.get((model_type, name), now), now, installed=is_installed, cap=cap, thresholds=thresholds
        )
        row = {
            "model_name": name,
            **count_fields(*counts_in_view(model_key(model_type, name), count, first, last, view, totals)),
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


def _other_names(same_file: dict[tuple[str, str], str], twins: Mapping) -> dict[tuple[str, str], set]:
    """(type, name) -> every other name of the same file: by its identity on this machine, or by content."""
    names_by_file: dict[str, set[tuple[str, str]]] = {}
    for key, identity in same_file.items():
        names_by_file.setdefault(identity, set()).add(key)
    others = {key: names_by_file[identity] - {key} for key, identity in same_file.items() if len(names_by_file[identity]) > 1}
    for key, names in twins.items():
        others[key] = others.get(key, set()) | names
    return others


def _share_usage_between_names(usage: dict, others: dict[tuple[str, str], set]) -> dict:
    """Give every name of one file the most recent use recorded under any of its names (its own count and
    first use stay its own). Returns (type, name) -> the other name whose use it now shows."""
    borrowed = {}
    for key, names in others.items():
        latest = max((name for name in names if name in usage), key=lambda name: usage[name][2], default=None)
        if latest is not None and (key not in usage or usage[key][2] < usage[latest][2]):
            borrowed[key] = latest
    for key, latest in borrowed.items():
        count, first, _ = usage.get(key, usage[latest])
        usage[key] = (count, first, usage[latest][2])
    return borrowed


def _used_as(other: tuple[str, str], twins) -> str:
    """Why a name counts as used although it never was under this name."""
    how = "the same content on another machine" if other in twins else "the same file"
    return f"last used as {other[0]}/{other[1]}, {how}"
