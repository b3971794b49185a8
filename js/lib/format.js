/** Tier names, their order on screen (most actionable first) and how dates and model types read. */

export const TIERS = ["safe_to_remove", "consider_removing", "unused_new", "used", "uninstalled"];

/** Read at each render, so every view shows the label `followThresholds` last set. */
export const TIER_LABELS = {
  safe_to_remove: "Safe to remove",
  consider_removing: "Consider removing",
  unused_new: "Unused, new",
  used: "Used",
  uninstalled: "Uninstalled",
};

/**
 * Name the tiers by the thresholds in force ("Unused < 45 days"): the server decides where a tier ends, so the
 * label is set from its config each time the config is read or changed, never written here as a number.
 */
export function followThresholds(config) {
  if (Number.isInteger(config?.consider_days)) TIER_LABELS.unused_new = `Unused < ${plural(config.consider_days, "day")}`;
}

const MODEL_TYPE_TITLES = {
  checkpoints: "Checkpoints",
  vae: "VAE",
  vae_approx: "VAE approx",
  controlnet: "ControlNet",
  text_encoders: "Text encoders",
  diffusion_models: "Diffusion models",
  upscale_models: "Upscale models",
  embeddings: "Embeddings",
  clip_vision: "CLIP vision",
  style_models: "Style models",
  gligen: "GLIGEN",
  hypernetworks: "Hypernetworks",
  photomaker: "PhotoMaker",
  model_patches: "Model patches",
  audio_encoders: "Audio encoders",
};

/** "diffusion_models" -> "Diffusion models"; unknown keys are title-cased ("my_type" -> "My type"). */
export function modelTypeTitle(key) {
  if (MODEL_TYPE_TITLES[key]) return MODEL_TYPE_TITLES[key];
  const words = String(key).replace(/[_-]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function tierRank(status) {
  const rank = TIERS.indexOf(status);
  return rank === -1 ? TIERS.length : rank;
}

const UNITS = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["week", 7 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
];
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

/** "3 days ago", "just now" or "never"; the exact time belongs in a title (see exactTime). */
export function relativeTime(iso, now = Date.now()) {
  if (!iso) return "never";
  const seconds = (new Date(iso).getTime() - now) / 1000;
  if (Number.isNaN(seconds)) return "unknown";
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return "just now";
}

export function exactTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "never used";
}

/** "sdxl/base.safetensors" -> { folder: "sdxl/", file: "base.safetensors" } (either separator). */
export function splitModelPath(name) {
  const cut = Math.max(name.lastIndexOf("/"), name.lastIndexOf("\\")) + 1;
  return { folder: name.slice(0, cut), file: name.slice(cut) };
}

export function plural(count, word, many = `${word}s`) {
  return `${count.toLocaleString()} ${count === 1 ? word : many}`;
}

const BYTE_UNITS = ["B", "KB", "MB", "GB", "TB"];

/** 153755878605 -> "143.2 GB" (binary multiples, as file managers on most systems show them). */
export function formatBytes(bytes) {
  let value = Number(bytes) || 0;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${BYTE_UNITS[unit]}`;
}

/** 0.9412 -> "94%"; no finished prompts -> "—". */
export function percent(ratio) {
  return ratio === null || ratio === undefined ? "—" : `${Math.round(ratio * 100)}%`;
}

/** 950 -> "950 ms", 12_400 -> "12.4 s", 190_000 -> "3.2 min"; unknown -> "—". */
export function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}
