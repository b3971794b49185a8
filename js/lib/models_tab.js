/**
 * The Models tab: a tier summary across all types, one section per model type (sorted by tier, then
 * name), and the uninstalled models in one collapsed section at the bottom. Sections use the windowed
 * list, so a 20,000-model install renders a few dozen rows. Each row shows its size and can be pinned
 * ("keep") or ticked for a bulk move to quarantine (selection.js).
 */
import { h, icon } from "./dom.js";
import { TIER_LABELS, formatBytes, modelTypeTitle, splitModelPath, tierRank } from "./format.js";
import { chartButton, countCell, dateCell, nothingToShow, outcomeCell, statusDot } from "./cells.js";
import { loadedBadge } from "./memory_status.js";
import { section } from "./section.js";
import { selectionBar } from "./selection.js";
import { bytesByTier, countByTier, summaryBar } from "./summary_bar.js";
import { virtualList } from "./virtual_list.js";

/**
 * Flatten the server's [{model_type, models}] into one list sorted by tier then name, once per load,
 * so that typing in the search box only filters. In a range view, `allTime` (the same list for all days)
 * gives each row `lastEver`, so an item used before the range says when rather than "never".
 */
export function prepareModels(sections, allTime = null) {
  const lastEver = new Map((allTime ?? []).flatMap(({ model_type, models }) => models.map((model) => [
    `${model_type}\u0000${model.model_name}`, model.last_seen])));
  const models = sections.flatMap(({ model_type, models }) => models.map((model) => ({
    ...model, model_type, search: model.model_name.toLowerCase(), rank: tierRank(model.status),
    lastEver: lastEver.get(`${model_type}\u0000${model.model_name}`) ?? null,
  })));
  models.sort((a, b) => a.rank - b.rank || (a.search < b.search ? -1 : a.search > b.search ? 1 : 0));
  return { types: sections.map((s) => s.model_type), models };
}

export function modelsTab({ data, query, tierFilter, onTierFilter, onSelectRow, collapsed, selected, actions, lorasOff, onTrackLoras }) {
  const matching = query ? data.models.filter((model) => model.search.includes(query)) : data.models;
  const shown = tierFilter ? matching.filter((model) => model.status === tierFilter) : matching;
  const bar = selectionBar({ selected, onMove: (models) => actions.quarantine(models) });
  const rowContext = { selected, onToggle: bar.update, actions, onSelectRow };
  const byType = new Map(data.types.map((type) => [type, []]));
  const uninstalled = [];
  for (const model of shown) (model.status === "uninstalled" ? uninstalled : byType.get(model.model_type))?.push(model);

  const sections = [...byType].filter(([, models]) => models.length).map(([type, models]) => section({
    id: `models-${type}`, title: modelTypeTitle(type), count: models.length, collapsed,
    buildBody: () => modelList(models, modelTypeTitle(type), false, rowContext),
  }));
  if (uninstalled.length) {
    sections.push(section({
      id: "models-uninstalled", title: TIER_LABELS.uninstalled, tier: "uninstalled", count: uninstalled.length, collapsed,
      collapsedByDefault: tierFilter !== "uninstalled",
      buildBody: () => modelList(uninstalled, "Uninstalled models", true, rowContext),
    }));
  }
  return h("div", { className: "usage-stats-tab-body", "data-testid": "usage-stats-models" }, [
    summaryBar({
      counts: countByTier(matching), bytes: bytesByTier(matching), activeTier: tierFilter, onSelect: onTierFilter, label: "Models per tier",
    }),
    bar.root,
    lorasOff ? lorasNote(onTrackLoras) : null,
    ...(sections.length ? sections : [nothingToShow(query ? `No model matches “${query}”.` : "No model files found.")]),
  ]);
}

function modelList(models, label, showType, context) {
  return virtualList({
    items: models, label, testId: "usage-stats-model-list", rowHeight: MODEL_ROW_HEIGHT, renderRow: (model) => modelRow(model, showType, context),
  });
}

/** Name (two lines), reason (two lines) and figures: see the stylesheet's .usage-stats-model-row. */
const MODEL_ROW_HEIGHT = 88;

const modelKey = (model) => `${model.model_type}\u0000${model.model_name}`;

/**
 * Three lines of fixed height (the list is windowed), so at the sidebar's default width nothing that
 * matters is cut: [tick] dot name (its subfolder dimmed, up to two lines) and size; failures and the reason
 * in words (up to two lines); "N uses · last used …" with the pin and the chart button.
 */
function modelRow(model, showType, { selected, onToggle, actions, onSelectRow }) {
  const { folder, file } = splitModelPath(model.model_name);
  const reasons = (model.reasons ?? []).join("; ");
  return h("div", {
    className: "usage-stats-model-row",
    role: "listitem",
    title: `${model.model_name}${showType ? ` (${modelTypeTitle(model.model_type)})` : ""}: ${TIER_LABELS[model.status] ?? model.status}${reasons ? ` — ${reasons}` : ""}`,
    "data-testid": "usage-stats-model-row",
    "data-model": model.model_name,
    "data-type": model.model_type,
    "data-status": model.status,
  }, [
    h("div", { className: "usage-stats-row-main" }, [
      model.installed ? h("input", {
        type: "checkbox", className: "usage-stats-select", "aria-label": `Select ${model.model_name}`, "data-testid": "usage-stats-select",
        checked: selected.has(modelKey(model)),
        on: { change: (event) => { event.target.checked ? selected.set(modelKey(model), model) : selected.delete(modelKey(model)); onToggle(); } },
      }) : h("span", { className: "usage-stats-select" }),
      statusDot(model.status),
      h("span", { className: "usage-stats-name", "data-testid": "usage-stats-model-name" }, [
        h("span", { className: "usage-stats-folder", text: folder }),
        h("span", { className: "usage-stats-file", text: file }),
      ]),
      h("span", { className: "usage-stats-size", title: sizeTitle(model), text: model.size == null ? "" : formatBytes(model.size) }),
    ]),
    h("div", { className: "usage-stats-row-reason" }, [
      outcomeCell(model),
      h("span", { className: "usage-stats-reason", "data-testid": "usage-stats-reason", text: reasons }),
    ]),
    h("div", { className: "usage-stats-row-meta" }, [
      h("span", { className: "usage-stats-figures", "data-testid": "usage-stats-figures" }, [
        countCell(model.count, "use"), h("span", { text: " · " }), dateCell(model.last_seen, { before: model.lastEver, labelled: true }),
      ]),
      loadedBadge(model),
      model.installed ? keepButton(model, actions) : null,
      chartButton(model.model_name, () => onSelectRow({ kind: "model", id: `${model.model_type}/${model.model_name}`, label: model.model_name })),
    ]),
  ]);
}

/** Where LoRAs would be listed while their tracking is off: say so, and offer to turn it on. */
function lorasNote(onTrackLoras) {
  return h("div", { className: "usage-stats-loras-off", "data-testid": "usage-stats-loras-off" }, [
    h("span", { text: "LoRAs are not tracked, so they are not listed here (Settings → Usage Stats → Track LoRA files)." }),
    h("button", { className: "usage-stats-button", type: "button", "data-testid": "usage-stats-track-loras", text: "Track LoRAs", on: { click: onTrackLoras } }),
  ]);
}

function keepButton(model, actions) {
  const label = model.kept ? `Unpin ${model.model_name}` : `Keep ${model.model_name}: never suggest removing it`;
  return h("button", {
    className: "usage-stats-icon-button usage-stats-keep", type: "button", "aria-label": label, title: label,
    "aria-pressed": String(Boolean(model.kept)), "data-testid": "usage-stats-keep",
    on: { click: () => actions.keepModel(model, !model.kept) },
  }, [icon(model.kept ? "pi-bookmark-fill" : "pi-bookmark")]);
}

function sizeTitle(model) {
  if (model.link) return `a link to ${model.link}: moving it frees no space`;
  if (model.same_file_as) return `the same file as ${model.same_file_as}: removing this name alone frees no space`;
  return "size on disk";
}
