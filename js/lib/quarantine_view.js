/**
 * The Quarantine tab: what the quarantine holds (each file with a Restore button), the one button that
 * deletes it all for good (its confirmation names the size), and the log of every action taken.
 */
import { h } from "./dom.js";
import { exactTime, formatBytes, modelTypeTitle, plural, relativeTime } from "./format.js";
import { nothingToShow } from "./cells.js";

const ACTION_LABELS = { quarantine: "Moved to quarantine", restore: "Restored", delete: "Deleted", disable: "Disabled pack", enable: "Enabled pack" };

export function quarantineView({ quarantine, log, actions }) {
  const header = h("div", { className: "usage-stats-quarantine-header" }, [
    h("span", {
      className: "usage-stats-quarantine-total", "data-testid": "usage-stats-quarantine-total",
      text: `${plural(quarantine.files, "file")} · ${formatBytes(quarantine.bytes)}`,
    }),
    quarantine.files ? h("button", {
      className: "usage-stats-button usage-stats-danger", type: "button", "data-testid": "usage-stats-empty-quarantine",
      text: `Delete for good (${formatBytes(quarantine.bytes)})`, on: { click: () => actions.empty(quarantine) },
    }) : null,
  ]);
  const items = quarantine.items.length
    ? h("div", { role: "list", "aria-label": "Files in quarantine" }, quarantine.items.map((entry) => quarantineRow(entry, actions)))
    : nothingToShow("The quarantine is empty. Tick models in the Models tab to move them here.");
  return h("div", { className: "usage-stats-tab-body", "data-testid": "usage-stats-quarantine" }, [
    header, items, h("h3", { className: "usage-stats-subtitle", text: "Actions" }), actionsLog(log),
  ]);
}

function quarantineRow(entry, actions) {
  return h("div", {
    className: "usage-stats-quarantine-row", role: "listitem", "data-testid": "usage-stats-quarantine-row", "data-model": entry.model_name,
    title: `${entry.original}\nnow at ${entry.quarantined}`,
  }, [
    h("span", { className: "usage-stats-name" }, [
      h("span", { className: "usage-stats-file", text: entry.model_name }),
      h("span", { className: "usage-stats-folder", text: ` ${modelTypeTitle(entry.model_type)}` }),
    ]),
    h("span", { className: "usage-stats-size", text: formatBytes(entry.size) }),
    h("button", {
      className: "usage-stats-button", type: "button", "data-testid": "usage-stats-restore", text: "Restore",
      "aria-label": `Restore ${entry.model_name}`, on: { click: () => actions.restore([entry]) },
    }),
  ]);
}

function actionsLog(log) {
  if (!log.length) return nothingToShow("No actions yet.");
  return h("ul", { className: "usage-stats-actions-log", "data-testid": "usage-stats-actions-log" }, log.map((entry) => h("li", {
    title: `${exactTime(entry.at)} · from ${entry.from ?? "—"} to ${entry.to ?? "(deleted)"} · requested by ${entry.requested_by ?? "?"}`,
  }, [
    h("span", { className: "usage-stats-date", text: relativeTime(entry.at) }),
    h("span", { text: ` ${ACTION_LABELS[entry.action] ?? entry.action}: ` }),
    h("span", { className: "usage-stats-name-text", text: entry.target }),
  ])));
}
