/**
 * The Clean-up view: every model file and custom-node pack in one table, to decide what to remove. A headline
 * says what each tier would free; the table sorts by any column (size first) and filters by tier, type and
 * text; ticked models go through a preview of exactly what moves and what it frees, then to the quarantine.
 * It opens in a wide dialog (dialog.js), since the sidebar is too narrow for a table.
 * Counts are all-time: tiers never depend on a range, and this view is about tiers.
 */
import { h, icon } from "./dom.js";
import { fetchDisk, fetchModels, fetchPackages, quarantineModels, setKept } from "./api.js";
import { TIERS, TIER_LABELS, formatBytes, plural } from "./format.js";
import { cleanupRows, rowTypes, visibleRows } from "./cleanup_rows.js";
import { cleanupTable } from "./cleanup_table.js";
import { cleanupPreview } from "./cleanup_preview.js";
import { notify } from "./actions.js";

/** The tiers the headline adds up: what removing each would free. */
const FREEING_TIERS = ["safe_to_remove", "consider_removing", "unused_new"];

/** `onChanged()` hears of every move and pin made here, so the panel does not show what they changed. */
export function createCleanupView({ onChanged } = {}) {
  const state = {
    rows: [], disk: null, error: null, sort: "size", descending: true, tier: null, type: null, query: "",
    selected: new Map(), previewing: false,
  };
  let view = null;

  function mount(el) {
    view = buildView();
    el.replaceChildren(view.root);
    render();
    return load();
  }

  function buildView() {
    const headline = h("div", { className: "usage-stats-cleanup-headline", "data-testid": "usage-stats-cleanup-headline" });
    const filters = h("div", { className: "usage-stats-cleanup-filters" });
    const main = h("div", { className: "usage-stats-cleanup-main" });
    const selection = h("div", { className: "usage-stats-selection usage-stats-cleanup-selection", role: "group", "aria-label": "Selected files", "data-testid": "usage-stats-cleanup-selection" });
    const refresh = h("button", {
      className: "usage-stats-icon-button", type: "button", "aria-label": "Refresh", title: "Refresh", on: { click: () => load() },
    }, [icon("pi-refresh")]);
    const root = h("div", { className: "usage-stats usage-stats-cleanup", "data-testid": "usage-stats-cleanup" }, [
      h("header", { className: "usage-stats-header" }, [h("h2", { className: "usage-stats-title", text: "Clean up: what to remove, and what it frees" }), refresh]),
      headline, filters, main, selection,
    ]);
    return { root, headline, filters, main, selection };
  }

  async function load() {
    view?.root.setAttribute("aria-busy", "true");
    try {
      const [models, packages, disk] = await Promise.all([fetchModels({ days: "all" }), fetchPackages({ days: "all" }), fetchDisk()]);
      Object.assign(state, { rows: cleanupRows({ models, packages }), disk, error: null, previewing: false });
      state.selected.clear();
    } catch (error) {
      state.error = error.message || String(error);
    }
    view?.root.setAttribute("aria-busy", "false");
    render();
  }

  function render() {
    if (!view) return;
    view.root.dataset.state = state.error ? "error" : state.disk ? "ready" : "loading";
    if (state.error) {
      view.main.replaceChildren(h("p", { className: "usage-stats-error", role: "alert", text: `Could not load: ${state.error}` }));
      return;
    }
    if (!state.disk) {
      view.main.replaceChildren(h("p", { className: "usage-stats-note", text: "Loading…" }));
      return;
    }
    view.headline.replaceChildren(...headline());
    view.filters.replaceChildren(...filters());
    view.filters.hidden = state.previewing;
    renderMain();
  }

  function renderMain() {
    if (state.previewing) {
      view.main.replaceChildren(cleanupPreview({ rows: [...state.selected.values()], onMove: move, onBack: () => showPreview(false) }));
      view.selection.hidden = true;
      return;
    }
    const rows = visibleRows(state.rows, state);
    view.main.replaceChildren(
      h("p", { className: "usage-stats-note", "data-testid": "usage-stats-cleanup-count",
        text: `${plural(rows.length, "item")} shown of ${state.rows.length.toLocaleString()}` }),
      cleanupTable({ rows, sort: state.sort, descending: state.descending, selected: state.selected, onSort: sortBy, onSelectionChange: renderSelection, onKeep: keep }),
    );
    renderSelection();
  }

  /** "You could free 16.3 GB" and one button per tier with what it would free; a click filters by that tier. */
  function headline() {
    const tiers = state.disk.tiers;
    const total = (tiers.safe_to_remove?.bytes ?? 0) + (tiers.consider_removing?.bytes ?? 0);
    return [
      h("p", { className: "usage-stats-cleanup-total", "data-testid": "usage-stats-cleanup-total" }, [
        h("span", { text: "Removing what is unused would free " }), h("strong", { text: formatBytes(total) }),
        h("span", { text: " (safe to remove and consider removing)." }),
      ]),
      h("div", { className: "usage-stats-cleanup-tiers", role: "group", "aria-label": "Space per tier" }, FREEING_TIERS.map((tier) => h("button", {
        className: "usage-stats-badge", type: "button", "data-tier": tier, "data-testid": "usage-stats-cleanup-tier",
        "aria-pressed": String(state.tier === tier), title: state.tier === tier ? "Show all tiers" : `Show only “${TIER_LABELS[tier]}”`,
        on: { click: () => filterBy({ tier: state.tier === tier ? null : tier }) },
      }, [
        h("span", { className: "usage-stats-dot", "data-tier": tier, "aria-hidden": "true" }),
        h("span", { text: `${TIER_LABELS[tier]}: ` }),
        h("strong", { text: formatBytes(tiers[tier]?.bytes ?? 0) }),
        h("span", { text: ` in ${plural(tiers[tier]?.files ?? 0, "file")}` }),
      ]))),
    ];
  }

  function filters() {
    const tier = select("Tier", "usage-stats-cleanup-tier-filter", [["", "All tiers"], ...TIERS.map((t) => [t, TIER_LABELS[t]])], state.tier,
      (value) => filterBy({ tier: value || null }));
    const type = select("Type", "usage-stats-cleanup-type-filter", [["", "All types"], ...rowTypes(state.rows)], state.type,
      (value) => filterBy({ type: value || null }));
    const search = h("input", {
      className: "usage-stats-search", type: "search", placeholder: "Filter by name", "aria-label": "Filter by name",
      "data-testid": "usage-stats-cleanup-search", value: state.query,
      on: { input: (event) => { state.query = event.target.value; renderMain(); } },
    });
    return [tier, type, h("span", { className: "usage-stats-search-box" }, [icon("pi-search"), search])];
  }

  function select(label, testId, options, value, onChange) {
    return h("label", { className: "usage-stats-cleanup-filter" }, [
      h("span", { text: label }),
      h("select", { "data-testid": testId, on: { change: (event) => onChange(event.target.value) } },
        options.map(([key, text]) => h("option", { value: key, text, selected: key === (value ?? "") }))),
    ]);
  }

  function renderSelection() {
    const rows = [...state.selected.values()];
    const frees = rows.reduce((sum, row) => sum + row.frees, 0);
    view.selection.hidden = rows.length === 0;
    view.selection.replaceChildren(
      h("span", { className: "usage-stats-selection-summary", "data-testid": "usage-stats-cleanup-selected", text: `${plural(rows.length, "file")} selected · frees ${formatBytes(frees)}` }),
      h("button", { className: "usage-stats-button usage-stats-button-primary", type: "button", "data-testid": "usage-stats-cleanup-review", text: "Review the move…", on: { click: () => showPreview(true) } }),
      h("button", { className: "usage-stats-button", type: "button", text: "Clear", on: { click: () => { state.selected.clear(); renderMain(); } } }),
    );
  }

  function sortBy(column) {
    state.descending = state.sort === column ? !state.descending : column === "size" || column === "uses";
    state.sort = column;
    renderMain();
  }

  function filterBy(changes) {
    Object.assign(state, changes);
    render();
  }

  function showPreview(on) {
    state.previewing = on;
    render();
  }

  async function move(rows) {
    const result = await quarantineModels(rows.map(({ source }) => ({ model_type: source.model_type, model_name: source.model_name })));
    for (const row of rows) state.selected.delete(row.key);
    const [models, packages, disk] = await Promise.all([fetchModels({ days: "all" }), fetchPackages({ days: "all" }), fetchDisk()]);
    Object.assign(state, { rows: cleanupRows({ models, packages }), disk });
    view.headline.replaceChildren(...headline());
    onChanged?.();
    return result;
  }

  async function keep(row) {
    try {
      const item = row.kind === "model" ? { kind: "model", model_type: row.type, name: row.name } : { kind: "package", name: row.name };
      await setKept(item, !row.kept);
    } catch (error) {
      notify("error", "Not done", error.message);
    }
    onChanged?.();
    await load();
  }

  return { mount, load };
}
