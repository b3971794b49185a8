"""Every report the API serves, built from the store, the listings and the evidence; each part cached apart.

Why a module of its own: building a report is the costly work of the API (a stat per model file, every
saved workflow, the classification of tens of thousands of rows), and what may be reused depends on what
changed. Sizes follow the listings, workflow evidence follows the workflows and the keep list, and the
classification follows every write, the clock and the view. No report ever writes: first sightings are
the writer's inventory (recording/writer.py), and until it is taken an item counts as first seen now.
"""

from __future__ import annotations

import threading
from typing import Callable

from ..domain.tiers import Thresholds, merge_evidence
from ..domain.values import EVERYTHING, View, iso
from ..evidence.source import EvidenceSource, mark_rows, mark_witnesses, merge_all, with_switched_off
from ..mapper import ModelMapper, PackageMapper
from ..recording.shared import Shipper
from ..support.files import model_path
from ..tracker import UsageStore
from . import disk, exports
from .models import model_report
from .packages import package_report
from .usage import usage_report

AGING_STEP_SECONDS = 3600
"""A cached report is classified again at least this often, so tiers age when nothing else changes.

Tiers are counted in days, and a late step only ever shows an item as less removable than it is."""
SIZES_MAX_AGE_SECONDS = 600
"""Sizes are read again at least this often: a file rewritten under its own name changes no listing."""
MODEL_VIEWS_KEPT = 3
"""Model reports kept, each the newest of one view: a range view's rows, the same user's all-time rows (its
"last used before") and every user's (the /disk totals) are read in turns, page by page, and must not
rebuild each other."""
NO_EVIDENCE = ({}, {}, set())
"""(evidence, workflow references, kept keys) when no evidence source is wired (tests of the API alone)."""


class Memo:
    """One cached value and the key it was built for: built again only when asked with another key.

    Two threads asking at once may both build; the last one's value stays. Nothing is ever wrong, only
    done twice, which is cheaper than making every reader wait behind a lock.
    """

    def __init__(self):
        self._entry: tuple[object, object] | None = None

    def get(self, key, build):
        entry = self._entry
        if entry is None or entry[0] != key:
            entry = self._entry = (key, build())
        return entry[1]


class Reports:
    """The package, node, model and export reports. Methods run in executor threads, with the store to read."""

    def __init__(
        self,
        packages: PackageMapper,
        models: ModelMapper,
        thresholds: Callable[[int], Thresholds],
        evidence: EvidenceSource | None = None,
        import_seconds: Callable[[], dict[str, float]] = dict,
        shared: Shipper | None = None,
    ):
        self.packages = packages
        self.models = models
        self.thresholds = thresholds
        self.evidence = evidence
        self.import_seconds = import_seconds
        self.shared = shared
        self._sizes = Memo()
        self._node_totals = Memo()
        self._model_evidence = Memo()
        self._models: dict[View, Memo] = {}
        self._views_lock = threading.Lock()

    def package_report(self, store: UsageStore, view: View = EVERYTHING) -> list[dict]:
        installed = self.packages.installed()
        package_of = self.packages.packages_by_class()
        evidence, references, kept = self.evidence.for_packages(package_of) if self.evidence else NO_EVIDENCE
        report = package_report(
            store.node_rows(), installed, package_of, store.package_first_installed(), store.now(),
            self.thresholds(store.now()), view, self._totals_of_nodes(store, view), evidence,
        )
        mark_rows(report, lambda p: p["package"], references, kept)
        seconds = self.import_seconds()
        used_on = store.package_machines() if self._reads_fleet(store) else None
        for row in report:
            row["import_seconds"] = seconds.get(row["package"])
            if used_on is not None:
                row["machines"] = _machine_entries(used_on.get(row["package"], ()))
        return report

    def usage_report(self, store: UsageStore, view: View) -> list[dict]:
        return usage_report(store.node_rows(), self.packages.packages_by_class(), view, self._totals_of_nodes(store, view))

    def _totals_of_nodes(self, store: UsageStore, view: View):
        """The node types' daily totals in `view`, summed again only after a write: summing every day of every
        node type was most of a packages or usage report (0.2 s of 0.23 s at a million prompts), and the Nodes
        tab asks for both with one view."""
        return self._node_totals.get((store, store.version, view), lambda: store.totals("node", view))

    def model_report(self, store: UsageStore, view: View = EVERYTHING) -> list[dict]:
        """The full model report: the same list object for as long as nothing it depends on changed."""
        models = self.models
        installed = models.installed()
        now = store.now()
        sizes_key = (models.version, now // SIZES_MAX_AGE_SECONDS)
        infos = self._sizes.get(sizes_key, lambda: disk.stat_listing(installed, model_path))
        evidence_key = (models.version, self.evidence.version() if self.evidence else None)
        evidence = self._model_evidence.get(
            evidence_key, lambda: self.evidence.for_models(installed) if self.evidence else NO_EVIDENCE
        )
        thresholds = self.thresholds(now)
        gaps, gaps_key = self._evidence_gaps(store, installed)
        key = (sizes_key, evidence_key, gaps_key, store.version, now // AGING_STEP_SECONDS, thresholds, view)
        return self._memo_of(view).get(
            key, lambda: self._build_model_report(store, installed, infos, evidence, gaps, thresholds, view)
        )

    def _memo_of(self, view: View) -> Memo:
        """The memo of one view's model report; the view asked for longest ago is forgotten beyond MODEL_VIEWS_KEPT."""
        with self._views_lock:  # held for the bookkeeping only, never while a report is built
            memo = self._models.pop(view, None) or Memo()
            while len(self._models) >= MODEL_VIEWS_KEPT:
                del self._models[next(iter(self._models))]
            self._models[view] = memo  # now the newest
            return memo

    def _reads_fleet(self, store) -> bool:
        return self.shared is not None and store is self.shared.fleet

    def _evidence_gaps(self, store, installed) -> tuple[dict, object]:
        """Caps for files whose use elsewhere `store` may lack (a silent machine, an unreachable shared store),
        and a cheap key that changes when they do."""
        if self.shared is None:
            return {}, None
        gaps, key = self.shared.evidence_gaps(store, installed)
        return gaps, (store is self.shared.fleet, key)

    def export_rows(self, store: UsageStore, what: str, view: View) -> list[dict]:
        if what == "models":
            return exports.model_rows(self.model_report(store, view))
        if what == "packages":
            return exports.package_rows(self.package_report(store, view))
        if what == "nodes":
            return self.usage_report(store, view)
        return exports.daily_rows(store, view)

    def _build_model_report(self, store: UsageStore, installed, infos, evidence, gaps, thresholds: Thresholds, view: View):
        same_file = {**self.models.same_file_keys(), **disk.identities(infos)}  # one file, one usage
        reads_fleet = self._reads_fleet(store)
        twins = store.content_twins() if reads_fleet else {}  # one file, other names on other machines
        gaps = _spread_over_twins(gaps, twins)
        evidence, references, kept = evidence
        switched_off_in = store.reference_rows()
        report = model_report(
            store.model_rows(), installed, store.model_first_installed(), store.now(), same_file, thresholds, view,
            store.totals("model", view), merge_all(with_switched_off(evidence, switched_off_in), gaps), twins,
        )
        for section in report:
            mark_rows(section["models"], lambda m, t=section["model_type"]: (t, m["model_name"]), references, kept)
            for model in section["models"]:  # why another machine may still use it (None: no reason known)
                gap = gaps.get((section["model_type"], model["model_name"]))
                model["evidence_incomplete"] = gap[1][0] if gap else None
        disk.attach_sizes(report, infos)
        _attach_load_stats(report, store.load_rows())
        if reads_fleet:
            _attach_machines(report, store.model_machines(), twins)
        mark_witnesses(report, store.witness_rows(), switched_off_in)
        return report


def _spread_over_twins(gaps: dict, twins: dict) -> dict:
    """A file whose use a silent machine may hold back is that file under every other name too."""
    spread = dict(gaps)
    for key, others in twins.items():
        for other in sorted(others & gaps.keys()):
            cap, reasons = merge_evidence(gaps[other], spread.get(key))
            spread[key] = cap, list(dict.fromkeys(reasons))
    return spread


def _attach_machines(report: list[dict], used_on: dict, twins: dict) -> None:
    """Each model row's `machines`: which machines of the fleet used it (under this name, or under a name
    its content has on another machine), when, and when each last reported."""
    for section in report:
        for model in section["models"]:
            key = (section["model_type"], model["model_name"])
            latest: dict[str, tuple] = {}
            for other in (key, *sorted(twins.get(key, ()))):
                for machine, name, last_used, last_report in used_on.get(other, ()):
                    if machine not in latest or latest[machine][1] < last_used:
                        latest[machine] = (name, last_used, last_report)
            by_last_use = sorted(latest.items(), key=lambda entry: -entry[1][1])
            model["machines"] = _machine_entries((machine, *seen) for machine, seen in by_last_use)


def _machine_entries(used_on) -> list[dict]:
    """(machine id, name, last use, last report) rows as a report row's `machines`."""
    return [{"id": machine, "name": name, "last_used": iso(last_used), "last_report": iso(last_report)}
            for machine, name, last_used, last_report in used_on]


def _attach_load_stats(report: list[dict], loads: dict[tuple[str, str], tuple[int, int, int, int]]) -> None:
    """Each model row's `load_count` and `average_load_seconds` (memory/ records every load)."""
    for section in report:
        for model in section["models"]:
            count, total_ms, *_ = loads.get((section["model_type"], model["model_name"]), (0, 0))
            model["load_count"] = count
            model["average_load_seconds"] = round(total_ms / count / 1000, 3) if count else None
