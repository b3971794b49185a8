/**
 * The Clean-up view's table: a header of sort buttons and a windowed body (virtual_list.js), so 20,000
 * rows render a few dozen at a time. Header and rows share one CSS grid template, so columns line up.
 * Names, reasons and workflow names are text nodes; each cell that may be clipped carries it whole in a title.
 */
import { h, icon } from "./dom.js";
import { exactTime, formatBytes, relativeTime, splitModelPath } from "./format.js";
import { importTime, statusDot } from "./cells.js";
import { virtualList } from "./virtual_list.js";

const ROW_HEIGHT = 52;

/** [id, header label, what a click sorts by (null: not sortable)]. */
const COLUMNS = [
  ["select", "", null],
  ["name", "Name", "name"],
  ["type", "Type", "type"],
  ["size", "Size", "size"],
  ["uses", "Uses", "uses"],
  ["lastUsed", "Last used", "lastUsed"],
  ["status", "Tier", "status"],
  ["reasons", "Why", "reasons"],
  ["workflows", "Saved workflows", "workflows"],
  ["kept", "Keep", "kept"],
];

/**
 * `rows` in display order; `sort` / `descending` mark the header; `selected` is a Map key -> row that the
 * tick boxes change (then `onSelectionChange()`); `onSort(column)`; `onKeep(row)` pins or unpins.
 */
export function cleanupTable({ rows, sort, descending, selected, onSort, onSelectionChange, onKeep }) {
  const header = h("div", { className: "usage-stats-cleanup-row usage-stats-cleanup-head", role: "row" },
    COLUMNS.map(([id, label, sortKey]) => headerCell(id, label, sortKey, { sort, descending, onSort })));
  const body = virtualList({
    items: rows, rowHeight: ROW_HEIGHT, label: "Models and packs", testId: "usage-stats-cleanup-rows",
    className: "usage-stats-cleanup-body",
    renderRow: (row) => tableRow(row, { selected, onSelectionChange, onKeep }),
  });
  return h("div", { className: "usage-stats-cleanup-table", "data-testid": "usage-stats-cleanup-table" }, [header, body]);
}

function headerCell(id, label, sortKey, { sort, descending, onSort }) {
  if (!sortKey) return h("span", { className: `usage-stats-cleanup-cell usage-stats-cleanup-${id}`, role: "columnheader" });
  const active = sort === sortKey;
  return h("button", {
    className: `usage-stats-cleanup-cell usage-stats-cleanup-${id} usage-stats-cleanup-sort`, type: "button",
    role: "columnheader", "data-sort": sortKey, "data-testid": "usage-stats-cleanup-sort",
    "aria-sort": active ? (descending ? "descending" : "ascending") : "none",
    title: `Sort by ${label.toLowerCase()}`, on: { click: () => onSort(sortKey) },
  }, [h("span", { text: label }), active ? icon(descending ? "pi-sort-amount-down" : "pi-sort-amount-up-alt") : null]);
}

function tableRow(row, { selected, onSelectionChange, onKeep }) {
  const { folder, file } = row.kind === "model" ? splitModelPath(row.name) : { folder: "", file: row.name };
  const reasons = row.reasons.join("; ");
  const workflows = row.workflows.join(", ");
  return h("div", {
    className: "usage-stats-cleanup-row", role: "listitem", "data-testid": "usage-stats-cleanup-row",
    "data-kind": row.kind, "data-name": row.name, "data-type": row.type, "data-status": row.status,
  }, [
    selectCell(row, selected, onSelectionChange),
    h("span", { className: "usage-stats-cleanup-cell usage-stats-cleanup-name", title: row.name, "data-testid": "usage-stats-cleanup-name" }, [
      h("span", { className: "usage-stats-folder", text: folder }), h("span", { className: "usage-stats-file", text: file }),
    ]),
    typeCell(row),
    cell("size", row.size === null ? "—" : formatBytes(row.size), row.sizeNote || (row.size === null ? "packs have no size here" : "size on disk")),
    usesCell(row),
    cell("lastUsed", relativeTime(row.lastUsed), row.lastUsed ? `last used ${exactTime(row.lastUsed)}` : "never used"),
    h("span", { className: "usage-stats-cleanup-cell usage-stats-cleanup-status" }, [statusDot(row.status), h("span", { text: row.tierLabel })]),
    cell("reasons", reasons || "—", reasons, "usage-stats-cleanup-reason"),
    cell("workflows", workflows || "—", workflows ? `named by ${workflows}` : "no saved workflow names it"),
    h("span", { className: "usage-stats-cleanup-cell usage-stats-cleanup-kept" }, [keepButton(row, onKeep)]),
  ]);
}

const WITNESS_WORDS = {
  loaded: "loaded: ComfyUI opened the file while a prompt ran",
  "in prompt": "in prompt: a prompt's inputs name it",
  referenced: "referenced: named, but switched off (never a use)",
};

/** The count; for a model also which evidence saw it (what ran beats what a prompt names). */
function usesCell(row) {
  const count = `${row.uses.toLocaleString()} prompts used it`;
  if (!row.witnesses?.length) return cell("uses", row.uses.toLocaleString(), count);
  return h("span", {
    className: "usage-stats-cleanup-cell usage-stats-cleanup-uses",
    title: [count, ...row.witnesses.map((witness) => WITNESS_WORDS[witness] ?? witness)].join("\n"),
  }, [
    h("span", { text: row.uses.toLocaleString() }), h("br"),
    h("span", { className: "usage-stats-witnesses", "data-testid": "usage-stats-witnesses", text: row.witnesses.join(" · ") }),
  ]);
}

/** The type; for a pack also its import time at start, so slow and unused stands out. */
function typeCell(row) {
  if (row.importSeconds === null) return cell("type", row.typeLabel);
  return h("span", { className: "usage-stats-cleanup-cell usage-stats-cleanup-type" }, [
    h("span", { text: row.typeLabel }), h("br"), importTime(row.importSeconds, row.status),
  ]);
}

function cell(id, text, title = "", testId = undefined) {
  return h("span", { className: `usage-stats-cleanup-cell usage-stats-cleanup-${id}`, title: title || undefined, "data-testid": testId, text });
}

function selectCell(row, selected, onSelectionChange) {
  if (!row.movable) {
    const why = row.kind === "package" ? "packs are disabled from the pack's row in the Usage Stats tab" : "not installed";
    return h("span", { className: "usage-stats-cleanup-cell usage-stats-cleanup-select", title: why });
  }
  return h("span", { className: "usage-stats-cleanup-cell usage-stats-cleanup-select" }, [h("input", {
    type: "checkbox", "aria-label": `Select ${row.name}`, "data-testid": "usage-stats-cleanup-select", checked: selected.has(row.key),
    on: { change: (event) => { event.target.checked ? selected.set(row.key, row) : selected.delete(row.key); onSelectionChange(); } },
  })]);
}

function keepButton(row, onKeep) {
  const label = row.kept ? `Unpin ${row.name}` : `Keep ${row.name}: never suggest removing it`;
  return h("button", {
    className: "usage-stats-icon-button usage-stats-keep", type: "button", "aria-label": label, title: label,
    "aria-pressed": String(row.kept), "data-testid": "usage-stats-cleanup-keep", on: { click: () => onKeep(row) },
  }, [icon(row.kept ? "pi-bookmark-fill" : "pi-bookmark"), h("span", { className: "usage-stats-keep-label", text: row.kept ? "Kept" : "Keep" })]);
}
