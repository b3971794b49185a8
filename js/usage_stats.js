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
import { SETTINGS, syncFromServer } from "./lib/settings.js";
import { MEMORY_SETTINGS, syncMemorySettings } from "./lib/memory_settings.js";

const TAB_ID = "usage-stats";
const OPEN_COMMAND = "UsageStats.Open";
const CLEANUP_COMMAND = "UsageStats.CleanUp";
const cleanup = createCleanupView();
const openCleanup = () => openDialog(cleanup, { label: "Clean up", testId: "usage-stats-cleanup-dialog", wide: true });
const panel = createPanel({ onOpenCleanup: openCleanup, onConfigChanged: () => syncFromServer() });
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
  settings: [...SETTINGS, ...MEMORY_SETTINGS],
  setup() {
    injectCss(new URL("./usage_stats.css", import.meta.url));
    sidebarRegistered = registerSidebarTab();
    syncFromServer().catch((error) => console.warn("[usage-stats] could not read the server's settings:", error));
    syncMemorySettings();
  },
});
