/**
 * The only place that talks to the backend. Everything goes through ComfyUI's api.fetchApi, which adds the
 * /api prefix for sub-path hosting and the Comfy-User header for multi-user installs.
 */
import { api } from "../../../scripts/api.js";

async function request(route, init) {
  const response = await api.fetchApi(`/nodes-stats/${route}`, init);
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(body?.error ?? `${response.status} ${response.statusText}`);
  return body;
}

export const fetchStatus = () => request("status");
export const fetchPackages = () => request("packages");
export const fetchModels = () => request("models");

export const fetchQuarantine = () => request("quarantine");
export const fetchActions = () => request("actions?limit=50");
export const fetchDuplicates = () => request("duplicates");

/** Every change is a JSON POST; the server insists on an explicit "confirm": true for each one. */
function post(route, body) {
  return request(route, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

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
