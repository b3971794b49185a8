/**
 * The idle-unload settings in ComfyUI's settings dialog (Usage Stats → Memory). The server owns the values
 * and describes each field (PUT /nodes-stats/unload/config validates and stores them, so curl and the dialog
 * agree); the dialog takes defaults and ranges from that description, shows the values, and sends a change
 * at once. Timeouts read as minutes here, seconds on the server.
 */
import { fetchUnloadConfig, putUnloadConfig } from "./api.js";
import { serverSettings } from "./server_settings.js";

const PREFIX = "UsageStats.Memory.";
const MINUTES = { toServer: (v) => Math.round(Number(v) * 60), toSetting: (v) => Math.max(1, Math.round(v / 60)) };
const AS_IS = {};
const WHOLE = { step: 1 };

/** [server field, label, type, attrs besides the range, conversion, tooltip]; sortOrder keeps the dialog in this order. */
const FIELDS = [
  ["enabled", "Unload idle models", "boolean", undefined, AS_IS,
    "Give memory back once ComfyUI has been idle longer than a model's timeout (between prompts only)."],
  ["diffusion_seconds", "Diffusion models and checkpoints: minutes idle", "number", WHOLE, MINUTES],
  ["text_encoder_seconds", "Text encoders: minutes idle", "number", WHOLE, MINUTES],
  ["vae_seconds", "VAE: minutes idle", "number", WHOLE, MINUTES],
  ["other_seconds", "Other models: minutes idle", "number", WHOLE, MINUTES],
  ["free_cache", "Also free cached outputs (gives RAM back)", "boolean", undefined, AS_IS],
  ["night_enabled", "Night window", "boolean", undefined, AS_IS, "Multiply every timeout during the night hours."],
  ["night_start_hour", "Night starts at (hour)", "number", WHOLE, AS_IS],
  ["night_end_hour", "Night ends at (hour)", "number", WHOLE, AS_IS],
  ["night_multiplier", "Night timeout multiplier", "number", { step: 0.05 }, AS_IS],
];

/**
 * For registerExtension({ settings }) and `sync()` (show the server's values in the dialog), once the server
 * has described the idle-unload fields; rejects when it cannot (no memory manager in this ComfyUI, say).
 */
export function memorySettings() {
  return serverSettings({
    fields: FIELDS.map(([field, name, type, attrs, convert, tooltip], index) => ({
      field, id: PREFIX + field, name, type, attrs, tooltip, ...convert,
      category: ["Usage Stats", "Memory", field],
      sortOrder: FIELDS.length - index,
    })),
    read: fetchUnloadConfig,
    write: putUnloadConfig,
  });
}
