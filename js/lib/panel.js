/**
 * The Usage Stats panel: header (export, refresh, history import, reset), the range's summary and chart,
 * Nodes | Models | Duplicates | Quarantine tabs, search box and the active tab. It reloads by itself when a prompt finishes while it is on screen.
 * State lives here, outside the DOM, because the sidebar may hand render() a fresh or a reused element
 * at any time; mount() rebuilds the DOM from that state and reloads the data.
 */
import { h, icon } from "./dom.js";
import {
  exportUrl, fetchActions, fetchConfig, fetchDuplicates, fetchHistory, fetchModels, fetchPackages, fetchQuarantine,
  fetchRealtime, fetchStatus, fetchSummary, onPromptFinished, updateConfig,
} from "./api.js";
import { createActions } from "./actions.js";
import { duplicatesView } from "./duplicates_view.js";
import { followThresholds } from "./format.js";
import { memoryStatus } from "./memory_status.js";
import { modelsTab, prepareModels } from "./models_tab.js";
import { nodesTab } from "./nodes_tab.js";
import { overview } from "./overview.js";
import { quarantineView } from "./quarantine_view.js";
import { rangeSwitch, userSelect } from "./view_switch.js";

const TABS = [["nodes", "Nodes"], ["models", "Models"], ["duplicates", "Duplicates"], ["quarantine", "Quarantine"]];
const SEARCHABLE_TABS = ["nodes", "models"];
const RELOAD_AFTER_RUN_MS = 1000;

/**
 * `onOpenCleanup()` opens the Clean-up view (a dialog of its own) from the header's button;
 * `onConfigChanged()` brings ComfyUI's settings dialog in line after the panel changed a setting.
 */
export function createPanel({ onOpenCleanup, onConfigChanged } = {}) {
  const state = {
    tab: "nodes", query: "", tierFilter: { nodes: null, models: null }, days: "all", user: null, selection: null,
    collapsed: new Map(), expanded: new Set(), selected: new Map(), data: null, error: null, loading: false,
  };
  let view = null;
  let loadId = 0;
  let reloadTimer = null;
  onPromptFinished(() => {
    if (!view?.root.isConnected) return;
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => load(), RELOAD_AFTER_RUN_MS);
  });
  const actions = createActions(() => load());

  function mount(el) {
    view = buildView();
    el.replaceChildren(view.root);
    renderContent();
    return load();
  }

  function buildView() {
    const refresh = iconButton("pi-refresh", "Refresh", "usage-stats-refresh", () => load());
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
      on: { input: (event) => { state.query = event.target.value; renderContent(); } },
    });
    const searchBox = h("div", { className: "usage-stats-search-box" }, [icon("pi-search"), search]);
    const content = h("div", { className: "usage-stats-content", id: "usage-stats-tabpanel", role: "tabpanel" });
    const root = h("div", { className: "usage-stats", "data-testid": "usage-stats-panel" }, [
      h("header", { className: "usage-stats-header" }, [
        h("h2", { className: "usage-stats-title", text: "Usage Stats" }), download, refresh, importHistory, reset,
      ]),
      cleanup,
      memoryStatus({ onLoadedChange: () => state.tab === "models" && renderContent() }),
      range,
      summary,
      h("div", { className: "usage-stats-tabs", role: "tablist", "aria-label": "Usage Stats views" }, tabs),
      searchBox,
      content,
    ]);
    return { root, content, tabs, refresh, download, range, summary, searchBox };
  }

  function iconButton(iconName, label, testId, onClick) {
    return h("button", { className: "usage-stats-icon-button", type: "button", "aria-label": label, title: label, "data-testid": testId, on: { click: onClick } }, [icon(iconName)]);
  }

  function selectTab(id) {
    state.tab = id;
    renderContent();
  }

  function selectDays(days) {
    state.days = days;
    return load();
  }

  function selectUser(user) {
    state.user = user;
    return load();
  }

  /** Chart one row's use per day ({kind, id, label}), or every prompt again with null. */
  function selectRow(selection) {
    state.selection = selection;
    return load();
  }

  /** Fetch everything in parallel; a newer load wins over an older one still in flight. */
  async function load() {
    const id = ++loadId;
    const range = { days: state.days, user: state.user ?? undefined };
    const selection = state.selection;
    state.loading = true;
    renderBusy();
    try {
      // In a range view the all-time lists say when an item unused in the range was last used.
      const allTime = state.days === "all" ? null : { days: "all", user: state.user ?? undefined };
      const [status, packages, models, summary, live, quarantine, log, duplicates, rowHistory, config, packagesEver, modelsEver] = await Promise.all([
        fetchStatus(), fetchPackages(range), fetchModels(range), fetchSummary(range), fetchRealtime(),
        fetchQuarantine(), fetchActions(), fetchDuplicates(), selection ? fetchHistory({ ...selection, ...range }) : null,
        fetchConfig(), allTime && fetchPackages(allTime), allTime && fetchModels(allTime),
      ]);
      if (id !== loadId) return;
      followThresholds(config.config);  // the tiers were computed with these thresholds: label them so
      if (selection) selection.series = rowHistory.series;
      const lastEver = new Map((packagesEver ?? []).map((pack) => [pack.package, pack.last_seen]));
      Object.assign(state, {
        data: {
          status, summary, live, quarantine, log, duplicates, config: config.config,
          packages: packages.map((pack) => ({ ...pack, lastEver: lastEver.get(pack.package) ?? null })),
          models: prepareModels(models, modelsEver),
        },
        error: null,
      });
      state.selected.clear();  // a selection of rows that may have moved since
    } catch (error) {
      if (id !== loadId) return;
      state.error = error.message || String(error);
    }
    state.loading = false;
    renderContent();
  }

  function renderBusy() {
    view?.root.setAttribute("aria-busy", String(state.loading));
    view?.refresh.classList.toggle("usage-stats-spinning", state.loading);
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
    ].filter(Boolean));
    view.download.href = exportUrl({ what: state.tab === "nodes" ? "packages" : "models", format: "csv", days: state.days, user: state.user ?? undefined });
    view.summary.replaceChildren(...(state.data
      ? [overview({ ...state.data, selection: state.selection, days: state.days, onClearSelection: () => selectRow(null) })]
      : []));
    const phase = state.error ? "error" : state.data ? "ready" : "loading";
    view.root.dataset.state = phase;
    view.content.replaceChildren(...{ error: errorState, loading: loadingState, ready: readyState }[phase]());
  }

  function loadingState() {
    return [h("p", { className: "usage-stats-note", "data-testid": "usage-stats-loading", text: "Loading usage stats…" })];
  }

  function errorState() {
    return [h("div", { className: "usage-stats-error", role: "alert", "data-testid": "usage-stats-error" }, [
      h("p", { text: `Could not load usage stats: ${state.error}` }),
      h("button", { className: "usage-stats-button", type: "button", text: "Try again", on: { click: () => load() } }),
    ])];
  }

  function readyState() {
    const { status, packages, models } = state.data;
    const empty = status.prompts_recorded === 0
      ? h("p", { className: "usage-stats-empty", "data-testid": "usage-stats-empty", text: "No prompts recorded yet — run a workflow, then refresh." })
      : null;
    const onTierFilter = (tier) => { state.tierFilter[state.tab] = tier; renderContent(); };
    const common = { query: state.query.trim().toLowerCase(), collapsed: state.collapsed, onSelectRow: selectRow };
    const bodies = {
      nodes: () => nodesTab({ ...common, packages, expanded: state.expanded, tierFilter: state.tierFilter.nodes, onTierFilter, actions }),
      models: () => modelsTab({
        ...common, data: models, tierFilter: state.tierFilter.models, onTierFilter,
        selected: state.selected, actions, lorasOff: !state.data.config.track_loras, onTrackLoras: trackLoras,
      }),
      duplicates: () => duplicatesView({ status: state.data.duplicates }),
      quarantine: () => quarantineView({ quarantine: state.data.quarantine, log: state.data.log, actions }),
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
    return load();
  }

  return { mount, load };
}
