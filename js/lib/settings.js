/**
 * The config's entries in ComfyUI's settings dialog (category "Usage Stats"), kept in line with
 * GET / PUT /nodes-stats/config by server_settings.js.
 */
import { fetchConfig, updateConfig } from "./api.js";
import { serverSettings } from "./server_settings.js";

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

const { settings, sync } = serverSettings({
  fields: FIELDS,
  read: async () => (await fetchConfig()).config,
  write: updateConfig,
});

/** For registerExtension({ settings }). */
export const SETTINGS = settings;
/** Show the server's values in the dialog. */
export const syncFromServer = sync;
