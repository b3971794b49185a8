/**
 * What the panel fetches for what it shows: the header's data (status, the range's summary, the last hour,
 * the settings that name the tiers, a charted row's history) and the visible tab's own data only, so the Nodes tab never downloads the model
 * list (6.9 MB at 20,000 models) and the Models tab never the packs. Every read goes through the cache.
 */
import {
  fetchActions, fetchConfig, fetchDuplicates, fetchHistory, fetchModels, fetchPackages, fetchQuarantine, fetchRealtime,
  fetchStatus, fetchSummary,
} from "./api.js";
import { prepareModels } from "./models_tab.js";

/** Each tab's reads; `range` is the chosen days and user, `allTime` the same user over all days in a range view. */
const TAB_DATA = {
  async nodes(read, { range, allTime }) {
    const [packages, packagesEver] = await Promise.all([read("packages", fetchPackages, range), allTime && read("packages", fetchPackages, allTime)]);
    // In a range view the all-time list says when a pack unused in the range was last used.
    const lastEver = new Map((packagesEver ?? []).map((pack) => [pack.package, pack.last_seen]));
    return { packages: packages.map((pack) => ({ ...pack, lastEver: lastEver.get(pack.package) ?? null })) };
  },
  async models(read, { range, allTime }) {
    const [models, modelsEver] = await Promise.all([read("models", fetchModels, range), allTime && read("models", fetchModels, allTime)]);
    return { models: prepared(models, modelsEver) };
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
 * `view` is {tab, days, user, selection}; `cache` a requestCache.
 */
export async function loadView({ tab, days, user, selection }, cache) {
  const read = (name, fetch, params = {}) => cache.get(`${name} ${JSON.stringify(params)}`, () => fetch(params));
  const range = { days, user: user ?? undefined };
  const allTime = days === "all" ? null : { days: "all", user: user ?? undefined };
  const history = selection && { kind: selection.kind, id: selection.id, ...range };
  const [status, summary, live, config, rowHistory, own] = await Promise.all([
    read("status", fetchStatus), read("summary", fetchSummary, range), read("realtime", fetchRealtime), read("config", fetchConfig),
    history && read("history", fetchHistory, history), TAB_DATA[tab](read, { range, allTime }),
  ]);
  return { tab, status, summary, live, config: config.config, rowHistory, ...own };
}

const preparedLists = new WeakMap();

/** The Models tab's sorted list, prepared once per answer: a tab switch served by the cache does not sort 20,000 rows again. */
function prepared(models, modelsEver) {
  const known = preparedLists.get(models);
  if (known?.modelsEver === modelsEver) return known.list;
  const list = prepareModels(models, modelsEver);
  preparedLists.set(models, { modelsEver, list });
  return list;
}
