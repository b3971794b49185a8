/**
 * The bar above the model list while rows are ticked: how many files and how much space the move would
 * free, and the button that moves them to quarantine. It updates in place, so ticking a row never rebuilds
 * (or scrolls) the list.
 */
import { h } from "./dom.js";
import { formatBytes, plural } from "./format.js";

/** `selected` is the panel's Map of key -> model row; `onMove(models)` resolves once the move was tried. */
export function selectionBar({ selected, onMove }) {
  const summary = h("span", { className: "usage-stats-selection-summary", "data-testid": "usage-stats-selection-summary" });
  const move = h("button", {
    className: "usage-stats-button", type: "button", "data-testid": "usage-stats-quarantine-selected", text: "Move to quarantine",
    on: { click: () => onMove([...selected.values()]) },
  });
  const clear = h("button", {
    className: "usage-stats-button", type: "button", text: "Clear",
    on: { click: () => clearAll() },
  });
  const root = h("div", { className: "usage-stats-selection", role: "group", "aria-label": "Selected models" }, [summary, move, clear]);

  function clearAll() {
    selected.clear();
    for (const box of root.parentElement?.querySelectorAll(".usage-stats-select:checked") ?? []) box.checked = false;
    update();
  }

  function update() {
    const models = [...selected.values()];
    const bytes = models.reduce((sum, model) => sum + (model.counted_bytes ?? 0), 0);
    summary.textContent = `${plural(models.length, "file")} selected · frees ${formatBytes(bytes)}`;
    root.hidden = models.length === 0;
  }
  update();
  return { root, update };
}
