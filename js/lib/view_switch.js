/**
 * Which prompts every count, chart and export of the panel covers: the 7 / 30 / 90 days / all switch, and,
 * where ComfyUI has several users (--multi-user), everyone's or one user's, and where several machines report
 * into a shared store, every machine's or one machine's.
 */
import { h } from "./dom.js";
import { relativeTime } from "./format.js";

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
  return picker({ items: users, value: user, all: "All users", label: "User", title: "Whose prompts to count", id: "user", onSelect });
}

/**
 * A machine picker (a shared store), or nothing when only one machine reports. Each machine says when it last
 * reported ("gpu-2 · last report 5 minutes ago"): a machine silent for long may hold evidence the fleet lacks.
 */
export function machineSelect({ machines, machine, onSelect }) {
  return picker({
    items: machines, value: machine, all: "All machines", label: "Machine", title: "Which machine's prompts to count",
    id: "machine", onSelect, text: (item) => `${item.name} · last report ${relativeTime(item.last_report)}`,
  });
}

/** One of several {id, name} (null: all of them), or nothing when there is only one to pick. */
function picker({ items, value, all, label, title, id, onSelect, text = (item) => item.name }) {
  if (items.length < 2) return null;
  const options = [["", all], ...items.map((item) => [item.id, text(item)])].map(([optionValue, optionText]) => h("option", {
    value: optionValue, text: optionText, selected: optionValue === (value ?? ""),
  }));
  return h("select", {
    className: `usage-stats-picker usage-stats-${id}`, "aria-label": label, title, "data-testid": `usage-stats-${id}`,
    on: { change: (event) => onSelect(event.target.value || null) },
  }, options);
}
