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

/** Delete every recorded statistic; the server insists on an explicit {"confirm": true}. */
export function resetStats() {
  return request("reset", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ confirm: true }),
  });
}

export const fetchLoaded = () => request("loaded");
export const fetchUnloadAnalytics = () => request("unload/analytics");
export const fetchUnloadConfig = () => request("unload/config");

/** Change some idle-unload settings; a value out of range comes back as an error naming the field. */
export function putUnloadConfig(changes) {
  return request("unload/config", {
    method: "PUT",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(changes),
  });
}
