/**
 * The Models tab: a tier summary across all types, one section per model type (sorted by tier, most removable
 * first, then name), and the uninstalled models in one collapsed section at the bottom. Sections use the
 * windowed list over rows read a page at a time (model_pages.js), so a 20,000-model install downloads and
 * renders a few dozen rows; the badges and section counts come from the /disk totals. Each row shows its size
 * and can be pinned ("keep") or ticked for a bulk move to quarantine (selection.js), whichever page it is on;
 * with a shared store, which machines used it.
 */
import { h, icon } from "./dom.js";
import { TIERS, TIER_LABELS, formatBytes, modelTypeTitle, splitModelPath } from "./format.js";
import { chartButton, countCell, dateCell, nothingToShow, outcomeCell, statusDot } from "./cells.js";
import { usedOnCell } from "./fleet_status.js";
import { loadedBadge } from "./memory_status.js";
import { modelKey } from "./model_pages.js";
import { section } from "./section.js";
import { selectionBar } from "./selection.js";
import { summaryBar } from "./summary_bar.js";
import { virtualList } from "./virtual_list.js";

const INSTALLED_TIERS = TIERS.filter((tier) => tier !== "uninstalled");

/**
 * `data` is what panel_data.js loaded: `totals` (/disk for the search: files and bytes per tier, overall and
 * per type) and `rowsOf(filter, length)`, the rows of one section read in pages.
 */
export function modelsTab({ data, query, tierFilter, onTierFilter, onSelectRow, collapsed, selected, actions, lorasOff, onTrackLoras }) {
  const { totals, rowsOf } = data;
  const bar = selectionBar({ selected, onMove: (models) => actions.quarantine(models) });
  const rowContext = { selected, onToggle: bar.update, actions, onSelectRow };
  const installedTiers = tierFilter ? INSTALLED_TIERS.filter((tier) => tier === tierFilter) : INSTALLED_TIERS;
  const files = (perTier, tiers) => tiers.reduce((sum, tier) => sum + perTier[tier].files, 0);

  const sections = Object.entries(totals.types)
    .map(([type, perTier]) => [type, files(perTier, installedTiers)])
    .filter(([, count]) => count)
    .map(([type, count]) => section({
      id: `models-${type}`, title: modelTypeTitle(type), count, collapsed,
      buildBody: () => modelList(rowsOf({ type, status: installedTiers.join(",") }, count), modelTypeTitle(type), false, rowContext),
    }));
  const uninstalled = !tierFilter || tierFilter === "uninstalled" ? totals.tiers.uninstalled.files : 0;
  if (uninstalled) {
    sections.push(section({
      id: "models-uninstalled", title: TIER_LABELS.uninstalled, tier: "uninstalled", count: uninstalled, collapsed,
      collapsedByDefault: tierFilter !== "uninstalled",
      buildBody: () => modelList(rowsOf({ status: "uninstalled" }, uninstalled), "Uninstalled models", true, rowContext),
    }));
  }
  const perTier = (field) => Object.fromEntries(TIERS.map((tier) => [tier, totals.tiers[tier][field]]));
  return h("div", { className: "usage-stats-tab-body", "data-testid": "usage-stats-models" }, [
    summaryBar({
      counts: perTier("files"), bytes: perTier("bytes"), activeTier: tierFilter, onSelect: onTierFilter, label: "Models per tier",
    }),
    bar.root,
    lorasOff ? lorasNote(onTrackLoras) : null,
    ...(sections.length ? sections : [nothingToShow(query ? `No model matches “${query}”.` : "No model files found.")]),
  ]);
}

function modelList(models, label, showType, context) {
  return virtualList({
    items: models, label, testId: "usage-stats-model-list", rowHeight: MODEL_ROW_HEIGHT,
    renderRow: (model) => (model ? modelRow(model, showType, context) : pendingRow(models.error)),
  });
}

/** Name (two lines), reason (two lines) and figures: see the stylesheet's .usage-stats-model-row. */
const MODEL_ROW_HEIGHT = 88;

/** A row whose page is on its way (same height, so nothing moves when it arrives), or could not be read. */
function pendingRow(error) {
  return h("div", {
    className: "usage-stats-model-row usage-stats-row-pending", role: "listitem", "aria-busy": String(!error), "data-testid": "usage-stats-model-pending",
    text: error ? `Could not load these models: ${error}. Refresh to try again.` : "Loading…",
  });
}

/**
 * Three lines of fixed height (the list is windowed), so at the sidebar's default width nothing that
 * matters is cut: [tick] dot name (its subfolder dimmed, up to two lines) and size; failures and the reason
 * in words (up to two lines; with a shared store, after "on gpu-2": the machines that used it); "N uses · last
 * used …" with the pin and the chart button.
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
      usedOnCell(model.machines),
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
