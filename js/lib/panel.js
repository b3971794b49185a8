/**
 * The Usage Stats panel: header (refresh, reset), Nodes | Models tabs, search box and the active tab.
 * State lives here, outside the DOM, because the sidebar may hand render() a fresh or a reused element
 * at any time; mount() rebuilds the DOM from that state and reloads the data.
 */
import { app } from "../../../scripts/app.js";
import { h, icon } from "./dom.js";
import { fetchModels, fetchPackages, fetchStatus, resetStats } from "./api.js";
import { plural } from "./format.js";
import { memoryStatus } from "./memory_status.js";
import { modelsTab, prepareModels } from "./models_tab.js";
import { nodesTab } from "./nodes_tab.js";

const TABS = [["nodes", "Nodes"], ["models", "Models"]];

export function createPanel() {
  const state = {
    tab: "nodes", query: "", tierFilter: { nodes: null, models: null },
    collapsed: new Map(), expanded: new Set(), data: null, error: null, loading: false,
  };
  let view = null;
  let loadId = 0;

  function mount(el) {
    view = buildView();
    el.replaceChildren(view.root);
    renderContent();
    return load();
  }

  function buildView() {
    const refresh = iconButton("pi-refresh", "Refresh", "usage-stats-refresh", () => load());
    const reset = iconButton("pi-trash", "Reset statistics", "usage-stats-reset", () => confirmAndReset());
    const tabs = TABS.map(([id, label]) => h("button", {
      className: "usage-stats-tab", type: "button", role: "tab", "data-testid": `usage-stats-tab-${id}`, "data-tab": id,
      "aria-controls": "usage-stats-tabpanel", text: label, on: { click: () => selectTab(id) },
    }));
    const search = h("input", {
      className: "usage-stats-search", type: "search", placeholder: "Search nodes, packs and models", "aria-label": "Search",
      "data-testid": "usage-stats-search", value: state.query,
      on: { input: (event) => { state.query = event.target.value; renderContent(); } },
    });
    const content = h("div", { className: "usage-stats-content", id: "usage-stats-tabpanel", role: "tabpanel" });
    const root = h("div", { className: "usage-stats", "data-testid": "usage-stats-panel" }, [
      h("header", { className: "usage-stats-header" }, [h("h2", { className: "usage-stats-title", text: "Usage Stats" }), refresh, reset]),
      memoryStatus({ onLoadedChange: () => state.tab === "models" && renderContent() }),
      h("div", { className: "usage-stats-tabs", role: "tablist", "aria-label": "Usage Stats views" }, tabs),
      h("div", { className: "usage-stats-search-box" }, [icon("pi-search"), search]),
      content,
    ]);
    return { root, content, tabs, refresh };
  }

  function iconButton(iconName, label, testId, onClick) {
    return h("button", { className: "usage-stats-icon-button", type: "button", "aria-label": label, title: label, "data-testid": testId, on: { click: onClick } }, [icon(iconName)]);
  }

  function selectTab(id) {
    state.tab = id;
    renderContent();
  }

  /** Fetch everything in parallel; a newer load wins over an older one still in flight. */
  async function load() {
    const id = ++loadId;
    state.loading = true;
    renderBusy();
    try {
      const [status, packages, models] = await Promise.all([fetchStatus(), fetchPackages(), fetchModels()]);
      if (id !== loadId) return;
      Object.assign(state, { data: { status, packages, models: prepareModels(models) }, error: null });
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
    const common = { query: state.query.trim().toLowerCase(), collapsed: state.collapsed };
    const onTierFilter = (tier) => { state.tierFilter[state.tab] = tier; renderContent(); };
    const body = state.tab === "nodes"
      ? nodesTab({ ...common, packages, expanded: state.expanded, tierFilter: state.tierFilter.nodes, onTierFilter })
      : modelsTab({ ...common, data: models, tierFilter: state.tierFilter.models, onTierFilter });
    return [empty, body].filter(Boolean);
  }

  /** Reset deletes history for good, so it asks first and says exactly what goes. */
  async function confirmAndReset() {
    const recorded = state.data?.status.prompts_recorded ?? 0;
    const message = `This deletes the record of ${plural(recorded, "prompt")}: every node, pack and model usage count and `
      + "last-used date. Installed files are not touched. This cannot be undone.";
    const dialog = app.extensionManager?.dialog;
    const confirmed = dialog?.confirm
      ? await dialog.confirm({ title: "Reset usage stats?", message, type: "delete" })
      : window.confirm(message);
    if (confirmed !== true) return;
    try {
      await resetStats();
      notify("success", "Usage stats reset", "Recording starts again with the next prompt.");
    } catch (error) {
      notify("error", "Reset failed", error.message);
    }
    await load();
  }

  function notify(severity, summary, detail) {
    app.extensionManager?.toast?.add({ severity, summary, detail, life: 4000 });
  }

  return { mount, load };
}
