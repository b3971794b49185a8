/**
 * The config's entries in ComfyUI's settings dialog (category "Usage Stats"), kept in line with
 * GET / PUT /nodes-stats/config by server_settings.js: their defaults and ranges are the server's, their labels
 * are ours. They appear in the order people read them: what is recorded first (the master switch on top), then
 * the tiers' thresholds in increasing order, then storage and safety; the dialog sorts sections and entries by
 * `sortOrder`, highest first. Every read and change of the config also renames the tiers by its thresholds.
 */
import { fetchConfig, updateConfig } from "./api.js";
import { followThresholds, modelTypeTitle } from "./format.js";
import { serverSettings } from "./server_settings.js";

/** The model types this ComfyUI has, from the server; the choice list of "Model types to track". */
let knownTypes = [];

/** "" (every type), one type, or, when set elsewhere to several, that list as it stands. */
function modelTypeOptions(value) {
  const options = [{ text: "Every model type (LoRAs as set above)", value: "" }, ...knownTypes.map((type) => ({ text: `Only ${modelTypeTitle(type)} (${type})`, value: type }))];
  return value && !options.some((option) => option.value === value) ? [...options, { text: `Only ${value}`, value }] : options;
}

const FIELDS = [
  { field: "tracking", id: "UsageStats.Tracking.Enabled", name: "Record prompts", type: "boolean",
    category: ["Usage Stats", "Tracking", "Enabled"], tooltip: "Off: the extension records nothing, and nothing ages while it is off." },
  { field: "track_loras", id: "UsageStats.Tracking.Loras", name: "Track LoRA files", type: "boolean",
    category: ["Usage Stats", "Tracking", "LoRAs"] },
  { field: "model_types", id: "UsageStats.Tracking.ModelTypes", name: "Model types to track",
    type: "combo", options: modelTypeOptions, category: ["Usage Stats", "Tracking", "Model types"],
    tooltip: "Every type this ComfyUI has, or only one of them.",
    toSetting: (types) => types.join(", "), toServer: (text) => text.split(",").map((t) => t.trim()).filter(Boolean) },
  { field: "consider_days", id: "UsageStats.Tiers.ConsiderDays", name: "Days unused before “Consider removing”", type: "number",
    category: ["Usage Stats", "Tiers", "Consider removing"] },
  { field: "safe_days", id: "UsageStats.Tiers.SafeDays", name: "Days unused before “Safe to remove”", type: "number",
    category: ["Usage Stats", "Tiers", "Safe to remove"], tooltip: "More than the days before “Consider removing”." },
  { field: "retention_days", id: "UsageStats.Storage.RetentionDays", name: "Days of per-prompt detail to keep (totals are kept forever)",
    type: "number", category: ["Usage Stats", "Storage", "Retention"] },
  { field: "allow_remote_actions", id: "UsageStats.Safety.AllowRemoteActions", name: "Allow moving files while ComfyUI listens on the network",
    type: "boolean", category: ["Usage Stats", "Safety", "Remote actions"],
    tooltip: "Off: quarantine, restore and pack changes are refused while ComfyUI runs with --listen. Only this computer can turn it on." },
];

/** Above the Memory section's entries (memory_settings.js), in the order of FIELDS. */
const FIRST_SORT_ORDER = 100;

/**
 * For registerExtension({ settings }) and `sync()` (show the server's values in the dialog), once the server
 * has described the config's fields; rejects when it cannot.
 */
export function configSettings() {
  return serverSettings({
    fields: FIELDS.map((spec, index) => ({ ...spec, sortOrder: FIRST_SORT_ORDER + FIELDS.length - index })),
    read: async () => {
      const answer = await fetchConfig();
      knownTypes = answer.model_types ?? [];
      followThresholds(answer.config);
      return answer;
    },
    write: async (changes) => followThresholds((await updateConfig(changes)).config),
  });
}
