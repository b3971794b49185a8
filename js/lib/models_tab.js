/**
 * The Models tab: a tier summary across all types, one section per model type (sorted by tier, then
 * name), and the uninstalled models in one collapsed section at the bottom. Sections use the windowed
 * list, so a 20,000-model install renders a few dozen rows.
 */
import { h } from "./dom.js";
import { TIER_LABELS, modelTypeTitle, splitModelPath, tierRank } from "./format.js";
import { countCell, dateCell, nothingToShow, statusDot } from "./cells.js";
import { loadedBadge } from "./memory_status.js";
import { section } from "./section.js";
import { countByTier, summaryBar } from "./summary_bar.js";
import { virtualList } from "./virtual_list.js";

/**
 * Flatten the server's [{model_type, models}] into one list sorted by tier then name, once per load,
 * so that typing in the search box only filters.
 */
export function prepareModels(sections) {
  const models = sections.flatMap(({ model_type, models }) => models.map((model) => ({
    ...model, model_type, search: model.model_name.toLowerCase(), rank: tierRank(model.status),
  })));
  models.sort((a, b) => a.rank - b.rank || (a.search < b.search ? -1 : a.search > b.search ? 1 : 0));
  return { types: sections.map((s) => s.model_type), models };
}

export function modelsTab({ data, query, tierFilter, onTierFilter, collapsed }) {
  const matching = query ? data.models.filter((model) => model.search.includes(query)) : data.models;
  const shown = tierFilter ? matching.filter((model) => model.status === tierFilter) : matching;
  const byType = new Map(data.types.map((type) => [type, []]));
  const uninstalled = [];
  for (const model of shown) (model.status === "uninstalled" ? uninstalled : byType.get(model.model_type))?.push(model);

  const sections = [...byType].filter(([, models]) => models.length).map(([type, models]) => section({
    id: `models-${type}`, title: modelTypeTitle(type), count: models.length, collapsed,
    buildBody: () => modelList(models, modelTypeTitle(type), false),
  }));
  if (uninstalled.length) {
    sections.push(section({
      id: "models-uninstalled", title: TIER_LABELS.uninstalled, tier: "uninstalled", count: uninstalled.length, collapsed,
      collapsedByDefault: tierFilter !== "uninstalled",
      buildBody: () => modelList(uninstalled, "Uninstalled models", true),
    }));
  }
  return h("div", { className: "usage-stats-tab-body", "data-testid": "usage-stats-models" }, [
    summaryBar({ counts: countByTier(matching), activeTier: tierFilter, onSelect: onTierFilter, label: "Models per tier" }),
    ...(sections.length ? sections : [nothingToShow(query ? `No model matches “${query}”.` : "No model files found.")]),
  ]);
}

function modelList(models, label, showType) {
  return virtualList({ items: models, label, testId: "usage-stats-model-list", renderRow: (model) => modelRow(model, showType) });
}

/** name (its subfolder dimmed) | prompts | last used, with the tier as a coloured dot. */
function modelRow(model, showType) {
  const { folder, file } = splitModelPath(model.model_name);
  const reasons = model.reasons?.length ? ` — ${model.reasons.join("; ")}` : "";
  return h("div", {
    className: "usage-stats-model-row",
    role: "listitem",
    title: `${model.model_name}${showType ? ` (${modelTypeTitle(model.model_type)})` : ""}: ${TIER_LABELS[model.status] ?? model.status}${reasons}`,
    "data-testid": "usage-stats-model-row",
    "data-model": model.model_name,
    "data-type": model.model_type,
    "data-status": model.status,
  }, [
    statusDot(model.status),
    h("span", { className: "usage-stats-name" }, [
      h("span", { className: "usage-stats-folder", text: folder }),
      h("span", { className: "usage-stats-file", text: file }),
    ]),
    loadedBadge(model),
    countCell(model.count),
    dateCell(model.last_seen),
  ]);
}
