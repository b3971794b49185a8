"""What else we know of an item besides its prompt history, as the (cap, reasons) the classifier takes.

Why a module of its own: the keep list and saved workflows are two kinds of evidence with one effect, a cap on
how far toward removal an item may go plus a reason the user can check. Collecting them here keeps
domain/tiers.classify the one place that decides a tier, and keeps each source (workflows.py, the keep list in
actions/decisions) ignorant of the other.
"""

from __future__ import annotations

from ..domain.tiers import Evidence, merge_evidence
from ..domain.values import day
from .workflows import SavedWorkflows, model_references, package_references

WORKFLOW_CAP = "consider_removing"
"""A saved workflow may be stale, so it keeps an item out of safe_to_remove but not out of consider_removing."""
SWITCHED_OFF_CAP = "consider_removing"
"""A file prompts name but switch off is still part of the user's workflows: never safe_to_remove."""
KEEP_CAP = "unused_new"
"""A pinned item is never suggested for removal (the same cap as ComfyUI-Manager and this extension)."""
NAMES_SHOWN = 3


def used_by_workflows(names: list[str]) -> Evidence:
    noun = "saved workflow" if len(names) == 1 else "saved workflows"
    return WORKFLOW_CAP, [f"used by {len(names)} {noun}: {_some(names)}"]


def _some(names: list[str]) -> str:
    """The first few names, and how many more: a reason stays one readable line."""
    more = len(names) - NAMES_SHOWN
    return ", ".join(names[:NAMES_SHOWN]) + (f" and {more} more" if more > 0 else "")


def switched_off(prompts: int, last: int, ever_used: bool) -> Evidence:
    """Prompts named the file but the node did not load it (its switch off, strength 0, beyond a count)."""
    noun = "prompt" if prompts == 1 else "prompts"
    if ever_used:
        return SWITCHED_OFF_CAP, [f"switched off in {prompts} other {noun}, the last on {day(last)}"]
    return SWITCHED_OFF_CAP, [f"in {prompts} {noun}, always switched off (the last on {day(last)})"]


def merge_all(evidence: dict, more: dict) -> dict:
    """Both maps of key -> Evidence; a key in both gets the stricter cap and both reasons."""
    merged = dict(evidence)
    for key, extra in more.items():
        merged[key] = merge_evidence(extra, merged.get(key))
    return merged


def with_switched_off(evidence: dict, switched_off_in: dict) -> dict:
    """`evidence` plus the cap and reason of every file prompts named switched off (store.reference_rows)."""
    return merge_all(evidence, {key: switched_off(*entry) for key, entry in switched_off_in.items()})


KEPT: Evidence = (KEEP_CAP, ["kept: you pinned it, so it is never suggested for removal"])
INCOMPLETE_CAP = "consider_removing"
"""Evidence another machine holds but has not delivered: the file may be in use there, so never safe_to_remove."""
SHARED_STORE_UNREACHABLE: Evidence = (
    INCOMPLETE_CAP, ["the shared store is unreachable, so other machines' use of this file is unknown"]
)
SHARED_STORE_UNREADABLE: Evidence = (
    INCOMPLETE_CAP, ["reading the shared store failed, so other machines' use of this file is unknown"]
)


def not_heard_from(machines: list[str], hours: int) -> Evidence:
    """Machines that list the file have not reported for `hours`: their latest use of it may be missing."""
    return INCOMPLETE_CAP, [f"no report for over {hours} h from {_some(machines)}, which also list it"]


def combine(workflow_refs: dict, kept_keys) -> dict:
    """key -> Evidence, from the workflows naming each key and the set of pinned keys."""
    evidence: dict = {key: used_by_workflows(sorted(set(names))) for key, names in workflow_refs.items()}
    for key in kept_keys:
        evidence[key] = merge_evidence(KEPT, evidence.get(key))
    return evidence


class EvidenceSource:
    """The evidence for a report being built: saved workflows (re-read when they change) and the keep list
    (`decisions`, whose `kept()` and `version` say what is pinned and when that changed)."""

    def __init__(self, workflows: SavedWorkflows, decisions):
        self.workflows = workflows
        self.decisions = decisions

    def version(self) -> tuple[int, int]:
        """Changes whenever a saved workflow or the keep list changed."""
        self.workflows.scan()
        return self.workflows.version, self.decisions.version

    def for_models(self, installed: dict[str, list[str]]):
        """(evidence, workflow references, kept keys) for model_report, keyed by (type, name)."""
        references = model_references(self.workflows.scan(), installed)
        kept = {(t, n) for (kind, t, n) in self.decisions.kept() if kind == "model"}
        return combine(references, kept), references, kept

    def for_packages(self, package_of: dict[str, str]):
        """(evidence, workflow references, kept names) for package_report, keyed by pack name."""
        references = package_references(self.workflows.scan(), package_of)
        kept = {n for (kind, _t, n) in self.decisions.kept() if kind == "package"}
        return combine(references, kept), references, kept


def mark_witnesses(report: list[dict], witnesses: dict, switched_off_in: dict) -> None:
    """Each model row's `witnesses` (which evidence saw it: "loaded" while a prompt ran, "in prompt" by
    its inputs, "referenced" when named but switched off) and `referenced_count` (those prompts)."""
    for section in report:
        for row in section["models"]:
            key = (section["model_type"], row["model_name"])
            in_prompt, loaded = witnesses.get(key, (0, 0))
            referenced = switched_off_in.get(key, (0,))[0]
            row["witnesses"] = [name for name, seen in (("loaded", loaded), ("in prompt", in_prompt),
                                                        ("referenced", referenced)) if seen]
            row["referenced_count"] = referenced


def mark_rows(rows, key_of, references: dict, kept: set) -> None:
    """Give each report row the workflows that name it and its pin, for the UI."""
    for row in rows:
        key = key_of(row)
        row["workflows"] = sorted(set(references.get(key, ())))
        row["kept"] = key in kept
