/**
 * The idle-unload settings in ComfyUI's settings dialog (Usage Stats → Memory). The server owns the values
 * (PUT /nodes-stats/unload/config validates and stores them, so curl and the dialog agree); the dialog shows
 * them, and a change there goes to the server at once. Timeouts read as minutes here, seconds on the server.
 */
import { fetchUnloadConfig, putUnloadConfig } from "./api.js";
import { serverSettings } from "./server_settings.js";

const PREFIX = "UsageStats.Memory.";
const MINUTES = { toServer: (v) => Math.round(Number(v) * 60), toSetting: (v) => Math.max(1, Math.round(v / 60)) };
const AS_IS = {};

/** [server field, label, type, default, attrs, conversion, tooltip]; sortOrder keeps the dialog in this order. */
const FIELDS = [
  ["enabled", "Unload idle models", "boolean", false, undefined, AS_IS,
    "Give memory back once ComfyUI has been idle longer than a model's timeout (between prompts only)."],
  ["diffusion_seconds", "Diffusion models and checkpoints: minutes idle", "number", 30, { min: 1, max: 10080, step: 1 }, MINUTES],
  ["text_encoder_seconds", "Text encoders: minutes idle", "number", 30, { min: 1, max: 10080, step: 1 }, MINUTES],
  ["vae_seconds", "VAE: minutes idle", "number", 30, { min: 1, max: 10080, step: 1 }, MINUTES],
  ["other_seconds", "Other models: minutes idle", "number", 30, { min: 1, max: 10080, step: 1 }, MINUTES],
  ["free_cache", "Also free cached outputs (gives RAM back)", "boolean", true, undefined, AS_IS],
  ["night_enabled", "Night window", "boolean", false, undefined, AS_IS, "Multiply every timeout during the night hours."],
  ["night_start_hour", "Night starts at (hour)", "number", 22, { min: 0, max: 23, step: 1 }, AS_IS],
  ["night_end_hour", "Night ends at (hour)", "number", 7, { min: 0, max: 23, step: 1 }, AS_IS],
  ["night_multiplier", "Night timeout multiplier", "number", 0.5, { min: 0.05, max: 20, step: 0.05 }, AS_IS],
];

const { settings, sync } = serverSettings({
  fields: FIELDS.map(([field, name, type, defaultValue, attrs, convert, tooltip], index) => ({
    field, id: PREFIX + field, name, type, defaultValue, attrs, tooltip, ...convert,
    category: ["Usage Stats", "Memory", field],
    sortOrder: FIELDS.length - index,
  })),
  read: fetchUnloadConfig,
  write: putUnloadConfig,
});

export const MEMORY_SETTINGS = settings;

/** Show the server's values in the dialog; a server that cannot answer leaves the dialog as it was. */
export function syncMemorySettings() {
  return sync().catch((error) => console.warn("[usage-stats] could not read the memory settings", error));
}
