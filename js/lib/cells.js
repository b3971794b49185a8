/** Small pieces shared by the Nodes and Models rows: status dot, prompt count and last-used date. */
import { h } from "./dom.js";
import { TIER_LABELS, exactTime, plural, relativeTime } from "./format.js";

export function statusDot(tier) {
  return h("span", { className: "usage-stats-dot", "data-tier": tier, title: TIER_LABELS[tier] ?? tier, "aria-label": TIER_LABELS[tier] ?? tier, role: "img" });
}

export function countCell(count, word = "") {
  const text = word ? plural(count, word) : count.toLocaleString();
  return h("span", { className: "usage-stats-count", title: `${plural(count, "prompt")} that used it`, text });
}

/** A relative date ("3 days ago") with the exact time on hover; `what` names the event ("first seen"). */
export function dateCell(iso, what = "last used") {
  return h("span", { className: "usage-stats-date", title: iso ? `${what} ${exactTime(iso)}` : "never used", text: relativeTime(iso) });
}

/** Shown when a search or tier filter leaves a tab with nothing to list. */
export function nothingToShow(text) {
  return h("p", { className: "usage-stats-note", "data-testid": "usage-stats-no-matches", text });
}
