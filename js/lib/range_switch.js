/** The 7 / 30 / 90 days / all switch: which days every count, chart and export of the panel covers. */
import { h } from "./dom.js";

export const RANGES = [["7", "7 days"], ["30", "30 days"], ["90", "90 days"], ["all", "All"]];

export function rangeSwitch({ days, onSelect }) {
  return h("div", { className: "usage-stats-range", role: "group", "aria-label": "Time range", "data-testid": "usage-stats-range" },
    RANGES.map(([value, label]) => h("button", {
      className: "usage-stats-range-button", type: "button", "data-days": value, "aria-pressed": String(days === value),
      text: value === "all" ? label : `${value}d`, title: value === "all" ? "Every prompt recorded" : `The last ${label}`,
      on: { click: () => onSelect(value) },
    })));
}
