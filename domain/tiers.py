"""The tiers and why an item is in one: classification rules, caps from evidence, reasons in words.

Pure functions of plain values: every rule is testable on its own, with no database and no ComfyUI.
"""

from __future__ import annotations

from dataclasses import dataclass

from .values import DAY, REMOVAL_ORDER, InstalledPackage, day


@dataclass(frozen=True)
class Thresholds:
    """Days without use after which an item is worth a look, and after which it is safe to remove.

    `watched_since` is when tracking last resumed after a pause (None: never paused). Nothing ages from
    before it: a prompt run while tracking was off left no trace, so silence then is not evidence.
    """

    consider_days: int = 30
    safe_days: int = 60
    watched_since: int | None = None


DEFAULT_THRESHOLDS = Thresholds()
"""30 days to "consider removing", 60 to "safe to remove", tracking never paused."""

def classify(
    last_used: int | None,
    first_installed: int | None,
    now: int,
    *,
    installed: bool = True,
    cap: str | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> str:
    """The one place that decides a tier.

    A used item ages from its last use; a never-used one from when the tracker first saw it installed
    (unknown = now: when the evidence is missing, keep the item), and neither from before tracking last
    resumed. `cap` is the furthest tier toward
    removal this item may reach, for items whose use cannot be fully observed.
    """
    if not installed:
        return "uninstalled"
    since = last_used if last_used is not None else (first_installed if first_installed is not None else now)
    if thresholds.watched_since is not None:
        since = max(since, thresholds.watched_since)
    idle_days = (now - since) / DAY
    if idle_days > thresholds.safe_days:
        tier = "safe_to_remove"
    elif idle_days > thresholds.consider_days:
        tier = "consider_removing"
    else:
        tier = "used" if last_used is not None else "unused_new"
    if cap is not None and REMOVAL_ORDER.index(tier) > REMOVAL_ORDER.index(cap):
        return cap
    return tier


def package_cap(pack: InstalledPackage | None) -> tuple[str | None, list[str]]:
    """How far toward removal a pack may go, and why: packs whose use we cannot observe stay put."""
    if pack is None:
        return None, []
    if pack.protected:
        return "unused_new", ["needed to manage or observe your install; never suggested for removal"]
    if pack.frontend_only:
        return "unused_new", ["has no nodes (front-end only), so its use cannot be observed"]
    if pack.disabled:
        return "consider_removing", ["disabled: its nodes cannot be used until it is enabled"]
    if pack.refused:
        return "consider_removing", [f"refused by ComfyUI ({pack.refused}): its nodes cannot be used while it is refused"]
    if pack.import_failed:
        return "consider_removing", ["failed to import: its nodes cannot be used until it is fixed"]
    return None, []


IMPLICIT_USE = {"vae_approx": "ComfyUI loads these for latent previews without a node naming them"}
"""Model types whose files ComfyUI may load without any prompt naming them: never aged past unused_new."""


Evidence = tuple[str | None, list[str]]
"""(cap, reasons): how far toward removal an item may go given what else we know of it, and why."""


def merge_evidence(base: Evidence, extra: Evidence | None) -> Evidence:
    """The stricter of two caps (the one nearer to 'used'), with the reasons of both."""
    if extra is None:
        return base
    caps = [c for c in (base[0], extra[0]) if c is not None]
    cap = min(caps, key=REMOVAL_ORDER.index) if caps else None
    return cap, [*base[1], *extra[1]]


def status_reasons(status: str, last_used: int | None, first_installed: int | None) -> list[str]:
    """Why an item is not 'used', in words the UI shows as they are: the dates its tier comes from."""
    if status == "used":
        return []
    if last_used is not None:
        return [f"last used {day(last_used)}"] + (["no longer installed"] if status == "uninstalled" else [])
    if status == "uninstalled":
        return ["no longer installed; never used while tracked"]
    return [f"never used since {day(first_installed)}" if first_installed is not None else "never used"]
