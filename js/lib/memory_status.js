/**
 * What ComfyUI holds in memory: a status line for the panel ("2 models in memory · unloads in 12 min") and a
 * badge for loaded models in the Models tab with what loading them cost. One read of /nodes-stats/loaded (and
 * the load analytics) feeds both. It is read when the panel asks (it opens, a prompt finished, Refresh), not on
 * a timer: what is in memory changes when prompts run, and the one change no event announces, an idle unload,
 * is read again once at the time the server gave for it.
 */
import { h } from "./dom.js";
import { fetchLoaded, fetchUnloadAnalytics } from "./api.js";
import { modelTypeTitle, plural, relativeTime } from "./format.js";
import { oneAtATime } from "./schedule.js";

/** How long after the announced unload to look again, so the watcher has done it. */
const AFTER_UNLOAD_MS = 1000;
let loadedByKey = new Map();
let analyticsByKey = new Map();

const keyOf = (type, name) => `${type}\u0000${name}`;

/**
 * The status line (`element`) and `update()`, which reads the memory again; the line reads it once now.
 * `onLoadedChange` runs when the set of loaded models changes, so the Models tab can redraw its badges.
 */
export function memoryStatus({ onLoadedChange } = {}) {
  const line = h("p", { className: "usage-stats-memory", "data-testid": "usage-stats-memory", role: "status", text: "Memory: …" });
  let unloadTimer = 0;
  const update = oneAtATime(async () => {
    clearTimeout(unloadTimer);
    try {
      const [status, analytics] = await Promise.all([fetchLoaded(), fetchUnloadAnalytics()]);
      const before = [...loadedByKey.keys()].join("\n");
      loadedByKey = new Map(status.models.filter((m) => m.model_name).map((m) => [keyOf(m.model_type, m.model_name), m]));
      analyticsByKey = new Map(analytics.map((row) => [keyOf(row.model_type, row.model_name), row]));
      render(line, status);
      if ([...loadedByKey.keys()].join("\n") !== before) onLoadedChange?.();
      const untilUnload = status.next_unload ? new Date(status.next_unload).getTime() - Date.now() : -1;
      if (untilUnload > 0) unloadTimer = setTimeout(() => line.isConnected && update(), untilUnload + AFTER_UNLOAD_MS);
    } catch (error) {
      line.textContent = `Memory: unavailable (${error.message})`;
    }
  });
  update();
  return { element: line, update };
}

function render(line, status) {
  const names = status.models.map((m) => m.model_name ?? m.class_name);
  const held = status.models.length
    ? `${plural(status.models.length, "model")} in memory`
    : "No models in memory";
  const when = !status.enabled ? "idle unload off"
    : status.busy ? "unload waits: ComfyUI is busy"
      : status.next_unload ? `unloads ${relativeTime(status.next_unload)}` : "nothing to unload";
  line.textContent = `${held} · ${when}`;
  line.title = names.length ? `In memory: ${names.join(", ")}` : "ComfyUI holds no model";
  line.dataset.loaded = String(status.models.length);
}

/** A "loaded" badge for a model row, or null; its title says what loading it costs. */
export function loadedBadge(model) {
  const loaded = loadedByKey.get(keyOf(model.model_type, model.model_name));
  if (!loaded) return null;
  const stats = analyticsByKey.get(keyOf(model.model_type, model.model_name));
  const average = stats?.average_load_seconds != null ? `; ${seconds(stats.average_load_seconds)} on average over ${plural(stats.load_count, "load")}` : "";
  return h("span", {
    className: "usage-stats-loaded",
    "data-testid": "usage-stats-loaded",
    title: `In ${loaded.memory} (${modelTypeTitle(model.model_type)}); loading took ${seconds(loaded.load_seconds)}${average}`,
    text: `loaded · ${seconds(loaded.load_seconds)}`,
  });
}

function seconds(value) {
  return value == null ? "?" : value < 10 ? `${value.toFixed(1)} s` : `${Math.round(value)} s`;
}
