/** Small pieces shared by the Nodes and Models rows: status dot, counts, dates and the per-day chart button. */
import { h, icon } from "./dom.js";
import { TIER_LABELS, exactTime, plural, relativeTime } from "./format.js";

export function statusDot(tier) {
  return h("span", { className: "usage-stats-dot", "data-tier": tier, title: TIER_LABELS[tier] ?? tier, "aria-label": TIER_LABELS[tier] ?? tier, role: "img" });
}

export function countCell(count, word = "") {
  const text = word ? plural(count, word) : count.toLocaleString();
  return h("span", { className: "usage-stats-count", title: `${plural(count, "prompt")} that used it`, text });
}

/**
 * A relative date ("3 days ago"; "last used 3 days ago" when `labelled`) with the exact time on hover;
 * `what` names the event ("first seen"). In a range view `iso` is the last use within the range; `before`
 * (the last use ever) says when an item unused in the range was used, rather than "never".
 */
export function dateCell(iso, { what = "last used", before = null, labelled = false } = {}) {
  const when = iso ?? before;
  const title = !when ? "never used" : iso ? `${what} ${exactTime(iso)}` : `not used in this range; ${what} ${exactTime(before)}`;
  const text = !when ? (labelled ? "never used" : "never") : labelled ? `${what} ${relativeTime(when)}` : relativeTime(when);
  return h("span", { className: "usage-stats-date", title, "data-testid": "usage-stats-date", text });
}

/** A pack that takes this long to import is worth a look when it is not used either. */
const SLOW_IMPORT_SECONDS = 0.3;

/** "0.4 s to import", as ComfyUI measured the pack at start, marked when slow and not used; null if unknown. */
export function importTime(seconds, status) {
  if (seconds === null || seconds === undefined) return null;
  const slowUnused = seconds >= SLOW_IMPORT_SECONDS && status !== "used";
  return h("span", {
    className: `usage-stats-import-time${slowUnused ? " usage-stats-slow-unused" : ""}`, "data-testid": "usage-stats-import-time",
    title: "How long ComfyUI took to import this pack at start (its own measure, to a tenth of a second)",
    text: `${seconds.toFixed(1)} s to import`,
  });
}

/** Shown when a search or tier filter leaves a tab with nothing to list. */
export function nothingToShow(text) {
  return h("p", { className: "usage-stats-note", "data-testid": "usage-stats-no-matches", text });
}

/** A compact "⚠ 3" when prompts that used the item failed or were refused (the split is in the tooltip); else nothing. */
export function outcomeCell(item) {
  const failed = (item.failures ?? 0) + (item.interrupted ?? 0);
  const rejected = item.rejected_count ?? 0;
  if (!failed && !rejected) return null;
  return h("span", {
    className: "usage-stats-outcome", "data-testid": "usage-stats-outcome",
    title: `${plural(failed, "prompt")} failed or interrupted; ${plural(rejected, "prompt")} refused by ComfyUI before running (never counted as use)`,
  }, [icon("pi-exclamation-triangle"), h("span", { text: ` ${(failed + rejected).toLocaleString()}` })]);
}

/** A button that charts one item's use per day in the summary above. */
export function chartButton(label, onClick) {
  return h("button", {
    className: "usage-stats-icon-button usage-stats-chart-button", type: "button", "aria-label": `Chart ${label} per day`,
    title: "Show its use per day", "data-testid": "usage-stats-chart-row",
    on: { click: (event) => { event.stopPropagation(); onClick(); } },
  }, [icon("pi-chart-line")]);
}
