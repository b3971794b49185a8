/**
 * The extension's entries in ComfyUI's settings dialog (category "Usage Stats"). The server's config is
 * the truth: at start-up the dialog is brought in line with it, and a change made in the dialog is sent
 * to PUT /nodes-stats/config; a value the server refuses is put back and the reason shown in a toast.
 */
import { app } from "../../../scripts/app.js";
import { fetchConfig, updateConfig } from "./api.js";

const FIELDS = [
  { field: "tracking", id: "UsageStats.Tracking.Enabled", name: "Record prompts", type: "boolean", defaultValue: true,
    category: ["Usage Stats", "Tracking", "Enabled"], tooltip: "Off: the extension records nothing, and nothing ages while it is off." },
  { field: "track_loras", id: "UsageStats.Tracking.Loras", name: "Track LoRA files", type: "boolean", defaultValue: false,
    category: ["Usage Stats", "Tracking", "LoRAs"] },
  { field: "model_types", id: "UsageStats.Tracking.ModelTypes", name: "Model types to track (comma-separated; empty = all)",
    type: "text", defaultValue: "", category: ["Usage Stats", "Tracking", "Model types"],
    toSetting: (types) => types.join(", "), toServer: (text) => text.split(",").map((t) => t.trim()).filter(Boolean) },
  { field: "consider_days", id: "UsageStats.Tiers.ConsiderDays", name: "Days unused before “Consider removing”", type: "number",
    defaultValue: 30, attrs: { min: 1, max: 3650 }, category: ["Usage Stats", "Tiers", "Consider removing"] },
  { field: "safe_days", id: "UsageStats.Tiers.SafeDays", name: "Days unused before “Safe to remove”", type: "number",
    defaultValue: 60, attrs: { min: 2, max: 3650 }, category: ["Usage Stats", "Tiers", "Safe to remove"] },
  { field: "allow_remote_actions", id: "UsageStats.Safety.AllowRemoteActions", name: "Allow moving files while ComfyUI listens on the network",
    type: "boolean", defaultValue: false, category: ["Usage Stats", "Safety", "Remote actions"],
    tooltip: "Off: quarantine, restore and pack changes are refused while ComfyUI runs with --listen. Only this computer can turn it on." },
  { field: "retention_days", id: "UsageStats.Storage.RetentionDays", name: "Days of per-prompt detail to keep (totals are kept forever)",
    type: "number", defaultValue: 180, attrs: { min: 7, max: 3650 }, category: ["Usage Stats", "Storage", "Retention"] },
];

let syncing = false;

async function send(spec, value, previous) {
  if (syncing || previous === undefined) return; // registration replays the stored value: the server decides
  try {
    await updateConfig({ [spec.field]: spec.toServer ? spec.toServer(value) : value });
  } catch (error) {
    app.extensionManager?.toast?.add({ severity: "error", summary: "Usage Stats setting not saved", detail: error.message, life: 6000 });
    await syncFromServer();
  }
}

/** For registerExtension({ settings }): every field of the server's config as a ComfyUI setting. */
export const SETTINGS = FIELDS.map(({ field, toSetting, toServer, ...setting }) => ({
  ...setting,
  onChange: (value, previous) => send({ field, toServer }, value, previous),
}));

/** Show the server's values in the dialog (another tab, user or script may have changed them). */
export async function syncFromServer() {
  const settings = app.extensionManager?.setting;
  if (!settings) return;
  const { config } = await fetchConfig();
  syncing = true;
  try {
    for (const spec of FIELDS) {
      const value = spec.toSetting ? spec.toSetting(config[spec.field]) : config[spec.field];
      if (settings.get(spec.id) !== value) await settings.set(spec.id, value);
    }
  } finally {
    syncing = false;
  }
}
