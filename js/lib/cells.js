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

/** A relative date ("3 days ago") with the exact time on hover; `what` names the event ("first seen"). */
export function dateCell(iso, what = "last used") {
  return h("span", { className: "usage-stats-date", title: iso ? `${what} ${exactTime(iso)}` : "never used", text: relativeTime(iso) });
}

/** Shown when a search or tier filter leaves a tab with nothing to list. */
export function nothingToShow(text) {
  return h("p", { className: "usage-stats-note", "data-testid": "usage-stats-no-matches", text });
}

/** "2 failed · 1 rejected" when some prompts that used the item failed or were refused; else nothing. */
export function outcomeCell(item) {
  const failed = (item.failures ?? 0) + (item.interrupted ?? 0);
  const parts = [failed ? `${failed.toLocaleString()} failed` : "", item.rejected_count ? `${item.rejected_count.toLocaleString()} rejected` : ""];
  const text = parts.filter(Boolean).join(" · ");
  return text ? h("span", {
    className: "usage-stats-outcome", "data-testid": "usage-stats-outcome", text,
    title: "failed: ran and ended in an error or was interrupted; rejected: refused by ComfyUI before running (never counted as use)",
  }) : null;
}

/** A button that charts one item's use per day in the summary above. */
export function chartButton(label, onClick) {
  return h("button", {
    className: "usage-stats-icon-button usage-stats-chart-button", type: "button", "aria-label": `Chart ${label} per day`,
    title: "Show its use per day", "data-testid": "usage-stats-chart-row",
    on: { click: (event) => { event.stopPropagation(); onClick(); } },
  }, [icon("pi-chart-line")]);
}
