/**
 * The Usage Stats panel: header (export, refresh, history import, reset), the range's summary and chart,
 * Nodes | Models | Duplicates | Quarantine tabs, search box and the active tab. It loads what is on screen only:
 * the header's data and the visible tab's (panel_data.js), again when a prompt finishes while it is on screen,
 * never on a timer; a closed panel fetches nothing.
 * State lives here, outside the DOM, because the sidebar may hand render() a fresh or a reused element
 * at any time; mount() rebuilds the DOM from that state and loads the data (from the cache when fresh).
 */
import { h, icon } from "./dom.js";
import { exportUrl, onPromptFinished, updateConfig } from "./api.js";
import { createActions } from "./actions.js";
import { duplicatesView } from "./duplicates_view.js";
import { fleetStatus } from "./fleet_status.js";
import { followThresholds } from "./format.js";
import { memoryStatus } from "./memory_status.js";
import { modelsTab } from "./models_tab.js";
import { nodesTab } from "./nodes_tab.js";
import { overview } from "./overview.js";
import { loadView } from "./panel_data.js";
import { quarantineView } from "./quarantine_view.js";
import { requestCache } from "./request_cache.js";
import { debounced, oneAtATime } from "./schedule.js";
import { machineSelect, rangeSwitch, userSelect } from "./view_switch.js";

const TABS = [["nodes", "Nodes"], ["models", "Models"], ["duplicates", "Duplicates"], ["quarantine", "Quarantine"]];
const SEARCHABLE_TABS = ["nodes", "models"];
/** Quiet time after the last "prompt finished" event before reloading: the writer records the prompt just after. */
const RELOAD_AFTER_RUN_MS = 1000;
/** How long a tab switch may show data already fetched; anything that changes the data clears it sooner. */
const CACHE_MS = 30_000;

/**
 * `onOpenCleanup()` opens the Clean-up view (a dialog of its own) from the header's button;
 * `onConfigChanged()` brings ComfyUI's settings dialog in line after the panel changed a setting.
 */
export function createPanel({ onOpenCleanup, onConfigChanged } = {}) {
  const state = {
    tab: "nodes", query: "", tierFilter: { nodes: null, models: null }, days: "all", user: null, machine: null, machines: [],
    selection: null,
    collapsed: new Map(), expanded: new Set(), selected: new Map(), data: null, shownModels: null, error: null,
  };
  let view = null;
  let loads = 0;  // calls of load() not yet answered: the panel is busy while there is one
  const cache = requestCache(CACHE_MS);
  const loadInTurn = oneAtATime(loadOnce);
  const reloadAfterRun = debounced(() => onScreen() && refresh(), RELOAD_AFTER_RUN_MS);
  onPromptFinished(() => {
    cache.clear();  // also while closed, so the next opening reads what the prompt changed
    reloadAfterRun();
  });
  const actions = createActions(() => reload());

  function mount(el) {
    view = buildView();
    el.replaceChildren(view.root);
    renderContent();
    return load();
  }

  function buildView() {
    const refreshButton = iconButton("pi-refresh", "Refresh", "usage-stats-refresh", () => refresh());
    const download = h("a", {
      className: "usage-stats-icon-button", "aria-label": "Export as CSV", title: "Export this tab as CSV", download: "",
      "data-testid": "usage-stats-export",
    }, [icon("pi-download")]);
    const range = h("div", { className: "usage-stats-range-box" });
    const summary = h("div", { className: "usage-stats-overview-box" });
    const importHistory = iconButton("pi-history", "Import history from my outputs", "usage-stats-import-history", () => actions.importHistory());
    const reset = iconButton("pi-trash", "Reset statistics", "usage-stats-reset", () => actions.reset(state.data?.status.prompts_recorded ?? 0));
    const cleanup = onOpenCleanup ? h("button", {
      className: "usage-stats-button usage-stats-button-primary usage-stats-open-cleanup", type: "button", "data-testid": "usage-stats-open-cleanup",
      title: "Every model and pack in one table: sort by size, see what each tier frees, move files to quarantine",
      on: { click: onOpenCleanup },
    }, [icon("pi-eraser"), h("span", { text: "Clean up models and packs" })]) : null;
    const tabs = TABS.map(([id, label]) => h("button", {
      className: "usage-stats-tab", type: "button", role: "tab", "data-testid": `usage-stats-tab-${id}`, "data-tab": id,
      "aria-controls": "usage-stats-tabpanel", text: label, on: { click: () => selectTab(id) },
    }));
    const search = h("input", {
      className: "usage-stats-search", type: "search", placeholder: "Search nodes, packs and models", "aria-label": "Search",
      "data-testid": "usage-stats-search", value: state.query,
      on: { input: (event) => searchFor(event.target.value) },
    });
    const searchBox = h("div", { className: "usage-stats-search-box" }, [icon("pi-search"), search]);
    const content = h("div", { className: "usage-stats-content", id: "usage-stats-tabpanel", role: "tabpanel" });
    const memory = memoryStatus({ onLoadedChange: () => state.tab === "models" && renderContent() });
    const fleet = fleetStatus({ onMachines: (machines) => { state.machines = machines; renderContent(); } });
    const root = h("div", { className: "usage-stats", "data-testid": "usage-stats-panel" }, [
      h("header", { className: "usage-stats-header" }, [
        h("h2", { className: "usage-stats-title", text: "Usage Stats" }), download, refreshButton, importHistory, reset,
      ]),
      cleanup,
      memory.element,
      fleet.element,
      range,
      summary,
      h("div", { className: "usage-stats-tabs", role: "tablist", "aria-label": "Usage Stats views" }, tabs),
      searchBox,
      content,
    ]);
    return { root, content, tabs, refresh: refreshButton, download, range, summary, searchBox, memory, fleet };
  }

  function iconButton(iconName, label, testId, onClick) {
    return h("button", { className: "usage-stats-icon-button", type: "button", "aria-label": label, title: label, "data-testid": testId, on: { click: onClick } }, [icon(iconName)]);
  }

  function selectTab(id) {
    state.tab = id;
    renderContent();
    return load();
  }

  /** The Nodes tab filters what it holds; the Models tab holds a page of rows, so the server searches them. */
  function searchFor(text) {
    state.query = text;
    return state.tab === "models" ? load() : renderContent();
  }

  function selectDays(days) {
    state.days = days;
    return load();
  }

  function selectUser(user) {
    state.user = user;
    return load();
  }

  function selectMachine(machine) {
    state.machine = machine;
    return load();
  }

  /** Chart one row's use per day ({kind, id, label}), or every prompt again with null. */
  function selectRow(selection) {
    state.selection = selection;
    return load();
  }

  /** On screen, not merely in the page: the sidebar may keep a closed tab's element. */
  function onScreen() {
    return Boolean(view?.root.isConnected && view.root.getClientRects().length);
  }

  /** Everything again from the server, the memory and shared-store lines too: after a prompt finished or Refresh. */
  function refresh() {
    view?.memory.update();
    view?.fleet.update();
    return reload();
  }

  /** The visible tab again from the server, not the cache: after an action changed the data. */
  function reload() {
    cache.clear();
    return load();
  }

  /** Load what is on screen; loads never overlap, and one asked for meanwhile runs after with the state then. */
  async function load() {
    loads += 1;
    renderBusy();
    try {
      await loadInTurn();
    } finally {
      loads -= 1;
      renderBusy();
    }
  }

  async function loadOnce() {
    const shown = shownView();
    const stillShown = () => Object.entries(shownView()).every(([key, value]) => shown[key] === value);
    try {
      const data = await loadView(shown, cache);
      if (!stillShown()) return;  // the user moved on, and that asked for the load that follows this one
      if (data.config) followThresholds(data.config);  // the tiers were computed with these thresholds: label them so
      if (shown.selection) shown.selection.series = data.rowHistory.series;
      if (data.models && data.models.totals !== state.shownModels?.totals && data.models.query === state.shownModels?.query) {
        state.selected.clear();  // ticks on rows that may have moved since; a new search keeps them
      }
      if (data.models) state.shownModels = data.models;
      Object.assign(state, { data, error: null });
    } catch (error) {
      if (!stillShown()) return;
      state.error = error.message || String(error);
    }
    renderContent();
  }

  /** What a load is for: the Models tab's search is part of it (the server searches), the Nodes tab's is not. */
  function shownView() {
    const query = state.tab === "models" ? state.query.trim().toLowerCase() : "";
    return { tab: state.tab, days: state.days, user: state.user, machine: state.machine, selection: state.selection, query };
  }

  function renderBusy() {
    view?.root.setAttribute("aria-busy", String(loads > 0));
    view?.refresh.classList.toggle("usage-stats-spinning", loads > 0);
  }

  function renderContent() {
    if (!view) return;
    renderBusy();
    for (const tab of view.tabs) tab.setAttribute("aria-selected", String(tab.dataset.tab === state.tab));
    view.searchBox.hidden = !SEARCHABLE_TABS.includes(state.tab);
    const users = state.data?.status.users ?? [];
    view.range.replaceChildren(...[
      rangeSwitch({ days: state.days, onSelect: selectDays }),
      userSelect({ users, user: state.user, onSelect: selectUser }),
      machineSelect({ machines: state.machines, machine: state.machine, onSelect: selectMachine }),
    ].filter(Boolean));
    view.download.href = exportUrl({
      what: state.tab === "nodes" ? "packages" : "models", format: "csv", days: state.days,
      user: state.user ?? undefined, machine: state.machine ?? undefined,
    });
    view.summary.replaceChildren(...(state.data
      ? [overview({ ...state.data, selection: state.selection, days: state.days, onClearSelection: () => selectRow(null) })]
      : []));
    const phase = state.error ? "error" : state.data?.tab === state.tab ? "ready" : "loading";
    view.root.dataset.state = phase;
    view.content.replaceChildren(...{ error: errorState, loading: loadingState, ready: readyState }[phase]());
  }

  function loadingState() {
    return [h("p", { className: "usage-stats-note", "data-testid": "usage-stats-loading", text: "Loading usage stats…" })];
  }

  function errorState() {
    return [h("div", { className: "usage-stats-error", role: "alert", "data-testid": "usage-stats-error" }, [
      h("p", { text: `Could not load usage stats: ${state.error}` }),
      h("button", { className: "usage-stats-button", type: "button", text: "Try again", on: { click: () => reload() } }),
    ])];
  }

  function readyState() {
    const { status, packages, models, config, duplicates, quarantine, log } = state.data;
    const empty = status.prompts_recorded === 0
      ? h("p", { className: "usage-stats-empty", "data-testid": "usage-stats-empty", text: "No prompts recorded yet — run a workflow, then refresh." })
      : null;
    const onTierFilter = (tier) => { state.tierFilter[state.tab] = tier; renderContent(); };
    const common = { query: state.query.trim().toLowerCase(), collapsed: state.collapsed, onSelectRow: selectRow };
    const bodies = {
      nodes: () => nodesTab({ ...common, packages, expanded: state.expanded, tierFilter: state.tierFilter.nodes, onTierFilter, actions }),
      models: () => modelsTab({
        ...common, query: models.query, data: models, tierFilter: state.tierFilter.models, onTierFilter,
        selected: state.selected, actions, lorasOff: !config.track_loras, onTrackLoras: trackLoras,
      }),
      duplicates: () => duplicatesView({ status: duplicates }),
      quarantine: () => quarantineView({ quarantine, log, actions }),
    };
    return [empty, bodies[state.tab]()].filter(Boolean);
  }

  /** The Models tab's offer while LoRAs are not tracked: turn the setting on (the dialog follows) and reload. */
  async function trackLoras() {
    try {
      await updateConfig({ track_loras: true });
      await onConfigChanged?.();
    } catch (error) {
      state.error = error.message || String(error);
    }
    return reload();
  }

  /** Something outside the panel changed the data (the Clean-up view moved or pinned files): read it again. */
  function dataChanged() {
    cache.clear();
    return onScreen() ? load() : undefined;
  }

  return { mount, load, dataChanged };
}
