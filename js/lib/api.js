/**
 * The only place that talks to the backend. Everything goes through ComfyUI's api.fetchApi, which adds the
 * /api prefix for sub-path hosting and the Comfy-User header for multi-user installs.
 */
import { api } from "../../../scripts/api.js";

async function request(route, init) {
  return (await answer(route, init)).body;
}

/** The parsed body and the response (for its headers); an error answer throws with the server's reason. */
async function answer(route, init) {
  const response = await api.fetchApi(`/nodes-stats/${route}`, init);
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(body?.error ?? `${response.status} ${response.statusText}`);
  return { body, response };
}

/** "models?days=30&type=vae" from a route and its parameters (absent ones left out). */
function withQuery(route, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, value]) => value !== undefined && value !== null));
  const text = query.toString();
  return text ? `${route}?${text}` : route;
}

/** The init of a request with a JSON body (every change this API takes is one). */
const json = (method, body) => ({ method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

export const fetchStatus = () => request("status");
export const fetchPackages = ({ days, user, machine }) => request(withQuery("packages", { days, user, machine }));
/** Every model in one answer (8.9 MB at 20,000 models): for the Clean-up view, which sorts by any column. */
export const fetchModels = ({ days, user, machine }) => request(withQuery("models", { days, user, machine }));

/**
 * One page of the models matching `type`, `status` and `q`, most removable tier first, then by name:
 * `{ sections, total }`, `total` being how many match before paging (the X-Total-Count header).
 */
export async function fetchModelPage({ days, user, machine, type, status, q, offset, limit }) {
  const { body, response } = await answer(withQuery("models", { days, user, machine, type, status, q, sort: "removable", offset, limit }));
  return { sections: body, total: Number(response.headers.get("X-Total-Count")) };
}
export const fetchSummary = ({ days, user, machine }) => request(withQuery("summary", { days, user, machine }));
export const fetchHistory = ({ kind, id, days, user, machine }) => request(withQuery("history", { kind, id, days, user, machine }));
export const fetchRealtime = () => request("realtime");
export const fetchConfig = () => request("config");
export const fetchShared = () => request("shared");
export const updateConfig = (changes) => request("config", json("PUT", changes));

/** The URL of a file export (a plain link, so the browser downloads it the usual way). */
export function exportUrl({ what, format, days, user, machine }) {
  return api.apiURL(`/nodes-stats/${withQuery("export", { what, format, days, user, machine })}`);
}

/**
 * Call `callback` whenever ComfyUI finishes a prompt, however it ended (its own websocket events, the same in
 * frontends 1.32.9 and 1.58.1). `execution_success` and `execution_error` reach only the browser that queued the
 * prompt; `status` reaches every browser whenever the queue changes, so the queue running dry covers prompts
 * queued elsewhere (another tab, a script). One prompt fires several of these: debounce the callback.
 */
export function onPromptFinished(callback) {
  for (const event of ["execution_success", "execution_error", "execution_interrupted"]) api.addEventListener(event, () => callback());
  let remaining = 0;
  api.addEventListener("status", (event) => {
    const now = event.detail?.exec_info?.queue_remaining;
    if (now === undefined) return;
    if (now === 0 && remaining > 0) callback();
    remaining = now;
  });
}

export const fetchQuarantine = () => request("quarantine");
export const fetchActions = () => request("actions?limit=50");
export const fetchDuplicates = () => request("duplicates");
/** Files and bytes per tier, overall and per type; with `q`, of the models whose name contains it. */
export const fetchDisk = ({ q } = {}) => request(withQuery("disk", { q }));

/** Every action is a JSON POST; the server insists on an explicit "confirm": true for each one. */
const post = (route, body) => request(route, json("POST", body));

/** Delete every recorded statistic. */
export const resetStats = () => post("reset", { confirm: true });

/** Pin or unpin: { kind: "model", model_type, name } or { kind: "package", name }. */
export const setKept = (item, keep) => post("keep", { ...item, keep });
export const quarantineModels = (models) => post("quarantine", { confirm: true, models });
export const restoreFromQuarantine = (ids) => post("quarantine/restore", { confirm: true, ids });
/** Deletes for good; the server checks `bytes` against what the quarantine holds now. */
export const emptyQuarantine = (bytes) => post("quarantine/empty", { confirm: true, confirm_bytes: bytes });
export const setPackEnabled = (name, enabled) => post(`packages/${enabled ? "enable" : "disable"}`, { confirm: true, package: name });
export const scanDuplicates = () => post("duplicates/scan", {});
export const cancelDuplicates = () => post("duplicates/cancel", {});
export const fetchHistoryImport = () => request("history-import");
export const startHistoryImport = () => post("history-import", { confirm: true });
export const fetchLoaded = () => request("loaded");
export const fetchUnloadAnalytics = () => request("unload/analytics");
/** The idle-unload values and the description of each field: `{ config, fields }`, as fetchConfig answers. */
export const fetchUnloadConfig = () => request("unload/config");

/** Change some idle-unload settings; a value out of range comes back as an error naming the field. */
export const putUnloadConfig = (changes) => request("unload/config", json("PUT", changes));
