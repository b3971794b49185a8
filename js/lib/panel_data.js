/**
 * What the panel fetches for what it shows: the header's data (status, the range's summary, the last hour,
 * the settings that name the tiers, a charted row's history) and the visible tab's own data only, so the Nodes
 * tab never downloads a model and the Models tab never the packs. The Models tab reads its totals here and its
 * rows a page at a time as they scroll into view (model_pages.js), never the whole list (8.9 MB at 20,000
 * models). Every read goes through the cache.
 */
import {
  fetchActions, fetchConfig, fetchDisk, fetchDuplicates, fetchHistory, fetchPackages, fetchQuarantine, fetchRealtime,
  fetchStatus, fetchSummary,
} from "./api.js";
import { modelPages } from "./model_pages.js";

/** Each tab's reads; `range` is the chosen days, user and machine, `allTime` the same over all days in a range view. */
const TAB_DATA = {
  async nodes(read, { range, allTime }) {
    const [packages, packagesEver] = await Promise.all([read("packages", fetchPackages, range), allTime && read("packages", fetchPackages, allTime)]);
    // In a range view the all-time list says when a pack unused in the range was last used.
    const lastEver = new Map((packagesEver ?? []).map((pack) => [pack.package, pack.last_seen]));
    return { packages: packages.map((pack) => ({ ...pack, lastEver: lastEver.get(pack.package) ?? null })) };
  },
  async models(read, { range, allTime, query }) {
    // Tiers and sizes are the same in every view: the totals of all days and users count the range's rows too.
    const totals = await read("disk", fetchDisk, { q: query || undefined });
    return { models: { totals, query, rowsOf: modelPages({ read, range, allTime, query }) } };
  },
  async duplicates() {
    return { duplicates: await fetchDuplicates() };  // a search moves on by itself: never from the cache
  },
  async quarantine(read) {
    const [quarantine, log] = await Promise.all([read("quarantine", fetchQuarantine), read("actions", fetchActions)]);
    return { quarantine, log };
  },
};

/**
 * The data of one view of the panel: `{tab, status, summary, live, rowHistory}` and the tab's own fields.
 * `view` is {tab, days, user, machine, selection, query} (`query`, lower case, searches the Models tab on the server);
 * `cache` a requestCache.
 */
export async function loadView({ tab, days, user, machine, selection, query }, cache) {
  const read = (name, fetch, params = {}) => cache.get(`${name} ${JSON.stringify(params)}`, () => fetch(params));
  const who = { user: user ?? undefined, machine: machine ?? undefined };
  const range = { days, ...who };
  const allTime = days === "all" ? null : { days: "all", ...who };
  const history = selection && { kind: selection.kind, id: selection.id, ...range };
  const [status, summary, live, config, rowHistory, own] = await Promise.all([
    read("status", fetchStatus), read("summary", fetchSummary, range), read("realtime", fetchRealtime), read("config", fetchConfig),
    history && read("history", fetchHistory, history), TAB_DATA[tab](read, { range, allTime, query }),
  ]);
  return { tab, status, summary, live, config: config.config, rowHistory, ...own };
}
