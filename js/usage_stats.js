/**
 * comfyui-usage-stats UI entry: registers the "Usage Stats" sidebar tab, the UsageStats.Open command
 * (Alt+U), the UsageStats.CleanUp command that opens the Clean-up view, the settings-dialog entries and,
 * where the sidebar API is missing, a dialog fallback. The views themselves live in lib/.
 */
import { app } from "../../scripts/app.js";
import { injectCss } from "./lib/dom.js";
import { openDialog } from "./lib/dialog.js";
import { createPanel } from "./lib/panel.js";
import { createCleanupView } from "./lib/cleanup_view.js";
import { configSettings } from "./lib/settings.js";
import { memorySettings } from "./lib/memory_settings.js";

/**
 * The settings-dialog entries whose values live on the server, each group built from the server's description
 * of its fields, before registration (ComfyUI takes the list only then). A group the server cannot describe is
 * left out: it has no defaults of its own to fall back on. One warning says which were left out and why.
 */
async function serverBackedSettings() {
  const groups = await Promise.allSettled([configSettings(), memorySettings()]);
  const reasons = groups.filter((group) => group.status === "rejected").map((group) => group.reason?.message ?? String(group.reason));
  if (reasons.length) console.warn(`[usage-stats] settings left out of the dialog, the server could not describe them: ${reasons.join("; ")}`);
  return groups.map((group) => group.value ?? { settings: [], sync: async () => {} });
}

const [config, memory] = await serverBackedSettings();
const TAB_ID = "usage-stats";
const OPEN_COMMAND = "UsageStats.Open";
const CLEANUP_COMMAND = "UsageStats.CleanUp";
const cleanup = createCleanupView({ onChanged: () => panel.dataChanged() });
const openCleanup = () => openDialog(cleanup, { label: "Clean up", testId: "usage-stats-cleanup-dialog", wide: true });
const panel = createPanel({ onOpenCleanup: openCleanup, onConfigChanged: () => config.sync() });
let sidebarRegistered = false;

/** Prefer the sidebarTab store; older frontends only have the (now deprecated) top-level method. */
function registerSidebarTab() {
  const manager = app.extensionManager;
  const store = manager?.sidebarTab;
  if (store?.sidebarTabs?.some((tab) => tab.id === TAB_ID)) return true;
  const register = store?.registerSidebarTab?.bind(store) ?? manager?.registerSidebarTab?.bind(manager);
  if (!register) return false;
  register({
    id: TAB_ID,
    icon: "pi pi-chart-bar",
    title: "Usage Stats",
    tooltip: "Usage Stats: which nodes, packs and models you use",
    type: "custom",
    render: (el) => panel.mount(el),
  });
  return true;
}

/** Open, never close: the sidebar's own command toggles, so only call it when another tab is showing. */
function openUsageStats() {
  if (!sidebarRegistered) return openDialog(panel);
  const store = app.extensionManager.sidebarTab;
  if (store?.activeSidebarTabId === TAB_ID) return;
  if (store?.toggleSidebarTab) store.toggleSidebarTab(TAB_ID);
  else app.extensionManager.command.execute(`Workspace.ToggleSidebarTab.${TAB_ID}`);
}

app.registerExtension({
  name: "UsageStats.UI",
  commands: [
    { id: OPEN_COMMAND, label: "Open Usage Stats", icon: "pi pi-chart-bar", function: openUsageStats },
    { id: CLEANUP_COMMAND, label: "Clean up models and packs", icon: "pi pi-eraser", function: openCleanup },
  ],
  keybindings: [{ commandId: OPEN_COMMAND, combo: { key: "u", alt: true } }],
  menuCommands: [{ path: ["Extensions"], commands: [OPEN_COMMAND, CLEANUP_COMMAND] }],
  settings: [...config.settings, ...memory.settings],
  setup() {
    injectCss(new URL("./usage_stats.css", import.meta.url));
    sidebarRegistered = registerSidebarTab();
    config.sync().catch((error) => console.warn("[usage-stats] could not read the server's settings:", error));
    memory.sync().catch((error) => console.warn("[usage-stats] could not read the memory settings:", error));
  },
});
