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
