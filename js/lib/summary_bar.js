/**
 * The row of tier badges above a tab: a count per tier (and, for models, the space it holds); clicking one
 * shows only that tier, again shows all.
 */
import { h } from "./dom.js";
import { TIERS, TIER_LABELS, formatBytes } from "./format.js";

export function summaryBar({ counts, bytes = null, activeTier, onSelect, label }) {
  const badges = TIERS.map((tier) => h("button", {
    className: "usage-stats-badge",
    type: "button",
    "data-tier": tier,
    "data-testid": "usage-stats-badge",
    "aria-pressed": String(activeTier === tier),
    title: activeTier === tier ? "Show all tiers" : `Show only “${TIER_LABELS[tier]}”`,
    on: { click: () => onSelect(activeTier === tier ? null : tier) },
  }, [
    h("span", { className: "usage-stats-dot", "data-tier": tier, "aria-hidden": "true" }),
    h("span", { className: "usage-stats-badge-label", text: TIER_LABELS[tier] }),
    h("span", { className: "usage-stats-badge-count", text: (counts[tier] ?? 0).toLocaleString() }),
    bytes && tier !== "uninstalled"
      ? h("span", { className: "usage-stats-badge-bytes", "data-testid": "usage-stats-badge-bytes", text: formatBytes(bytes[tier] ?? 0) })
      : null,
  ]));
  return h("div", { className: "usage-stats-summary", role: "group", "aria-label": label, "data-testid": "usage-stats-summary" }, badges);
}

/** { tier: number of items } for a list of objects with a `status`. */
export function countByTier(items) {
  const counts = {};
  for (const item of items) counts[item.status] = (counts[item.status] ?? 0) + 1;
  return counts;
}
