"""The package report: every pack and every used one, classified, with its nodes."""

from __future__ import annotations

from typing import Iterable, Mapping

from ..domain.tiers import DEFAULT_THRESHOLDS, Evidence, Thresholds, package_cap, classify, merge_evidence, status_reasons
from ..domain.values import BUILTIN_PACKAGE, EVERYTHING, TIERS, InstalledPackage, Totals, View, iso
from .counts import counts_in_view, empty_package, node_dict


def package_report(
    node_rows: Iterable[tuple[str, str, int, int, int]],
    installed: Iterable[InstalledPackage],
    current_package: dict[str, str],
    first_installed: dict[str, int],
    now: int,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    view: View = EVERYTHING,
    totals: dict[str, Totals] | None = None,
    evidence: Mapping[str, Evidence] | None = None,
) -> list[dict]:
    """Per-pack usage joined with what is installed, classified. Core nodes are not a removable pack.

    `current_package` maps each loaded class_type to its pack today, so history recorded while a pack
    was missing is credited to it once it is installed again. Counts follow `view` (with the node types'
    daily `totals`); tiers always follow every prompt of every user. `evidence` maps a pack to a further
    cap and its reasons (kept, used by saved workflows).
    """
    packs = {p.name: p for p in installed}
    entries: dict[str, dict] = {}
    last_used: dict[str, int] = {}
    for class_type, recorded, count, first, last in node_rows:
        package = current_package.get(class_type, recorded)
        if package == BUILTIN_PACKAGE:
            continue
        last_used[package] = max(last_used.get(package, 0), last)
        count, first, last, summed = counts_in_view(class_type, count, first, last, view, totals)
        entry = entries.setdefault(package, empty_package(package))
        entry["total_executions"] += count
        entry["used_nodes"] += count > 0
        if last is not None:
            entry["last_seen"] = max(entry["last_seen"] or 0, last)
        entry["nodes"].append(node_dict(class_type, package, count, first, last, summed))
    for name in packs:
        entries.setdefault(name, empty_package(name))
    for name, entry in entries.items():
        pack = packs.get(name)
        cap, reasons = merge_evidence(package_cap(pack), (evidence or {}).get(name))
        status = classify(
            last_used.get(name), first_installed.get(name, now), now,
            installed=pack is not None, cap=cap, thresholds=thresholds,
        )
        entry.update(
            total_nodes=len(pack.node_types) if pack else len(entry["nodes"]),
            installed=pack is not None and not pack.disabled,
            disabled=bool(pack and pack.disabled),
            import_failed=bool(pack and pack.import_failed),
            refused=pack.refused if pack else None,
            frontend_only=bool(pack and pack.frontend_only),
            protected=bool(pack and pack.protected),
            first_installed=iso(first_installed.get(name)),
            status=status,
            reasons=[*status_reasons(status, last_used.get(name), first_installed.get(name)), *reasons],
        )
        entry["last_seen"] = iso(entry["last_seen"])
    return sorted(entries.values(), key=lambda e: (TIERS.index(e["status"]), e["package"].lower()))
