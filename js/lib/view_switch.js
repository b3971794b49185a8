/**
 * Which prompts every count, chart and export of the panel covers: the 7 / 30 / 90 days / all switch, and,
 * where ComfyUI has several users (--multi-user), everyone's or one user's.
 */
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

/** A user picker, or nothing when there is only one user to pick. */
export function userSelect({ users, user, onSelect }) {
  if (users.length < 2) return null;
  const options = [["", "All users"], ...users.map(({ id, name }) => [id, name])].map(([value, label]) => h("option", {
    value, text: label, selected: value === (user ?? ""),
  }));
  return h("select", {
    className: "usage-stats-user", "aria-label": "User", title: "Whose prompts to count", "data-testid": "usage-stats-user",
    on: { change: (event) => onSelect(event.target.value || null) },
  }, options);
}
