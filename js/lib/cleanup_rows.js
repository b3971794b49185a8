/**
 * The Clean-up view's data: models and packs as one kind of row, the columns it sorts by and the filters.
 * Pure functions, no DOM: rows are built once per load, so sorting and typing only reorder and filter.
 */
import { TIER_LABELS, modelTypeTitle, tierRank } from "./format.js";

export const PACK_TYPE = "custom_nodes";

/** One row per model file and per custom-node pack, with the fields every column reads. */
export function cleanupRows({ models, packages }) {
  const modelRows = models.flatMap(({ model_type, models: list }) => list.map((model) => ({
    key: `model\u0000${model_type}\u0000${model.model_name}`,
    kind: "model",
    name: model.model_name,
    type: model_type,
    typeLabel: modelTypeTitle(model_type),
    importSeconds: null,
    size: model.size ?? null,
    frees: model.counted_bytes ?? 0,
    sizeNote: sizeNote(model),
    uses: model.count ?? 0,
    witnesses: model.witnesses ?? [],
    lastUsed: model.last_seen ?? null,
    status: model.status,
    reasons: model.reasons ?? [],
    workflows: model.workflows ?? [],
    kept: Boolean(model.kept),
    movable: Boolean(model.installed) && model.status !== "uninstalled",
    source: { ...model, model_type },
  })));
  const packRows = packages.map((pack) => ({
    key: `package\u0000${pack.package}`,
    kind: "package",
    name: pack.package,
    type: PACK_TYPE,
    typeLabel: "Custom-node pack",
    importSeconds: pack.import_seconds ?? null,
    size: null,
    frees: 0,
    sizeNote: "",
    uses: pack.total_executions ?? 0,
    lastUsed: pack.last_seen ?? null,
    status: pack.status,
    reasons: pack.reasons ?? [],
    workflows: pack.workflows ?? [],
    kept: Boolean(pack.kept),
    movable: false,
    source: pack,
  }));
  return [...modelRows, ...packRows].map((row) => ({
    ...row, search: row.name.toLowerCase(), rank: tierRank(row.status), tierLabel: TIER_LABELS[row.status] ?? row.status,
  }));
}

function sizeNote(model) {
  if (model.link) return `a link to ${model.link}: moving it frees no space`;
  if (model.same_file_as) return `the same file as ${model.same_file_as}: removing this name alone frees no space`;
  return "";
}

const byText = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** Column id -> comparator in ascending order; the view flips it for descending. */
export const SORTS = {
  name: (a, b) => byText(a.search, b.search),
  type: (a, b) => byText(a.typeLabel, b.typeLabel),
  size: (a, b) => a.size - b.size,
  uses: (a, b) => a.uses - b.uses,
  lastUsed: (a, b) => byText(a.lastUsed ?? "", b.lastUsed ?? ""),
  status: (a, b) => b.rank - a.rank,
  reasons: (a, b) => byText(a.reasons.join(" "), b.reasons.join(" ")),
  workflows: (a, b) => a.workflows.length - b.workflows.length,
  kept: (a, b) => Number(a.kept) - Number(b.kept),
};

/**
 * Rows matching the tier, the type and the text, in the chosen order (ties by name). Rows without a size
 * (packs) come after the sized ones in both directions: sorting by size is about files.
 */
export function visibleRows(rows, { tier, type, query, sort, descending }) {
  const text = query.trim().toLowerCase();
  const shown = rows.filter((row) => (!tier || row.status === tier) && (!type || row.type === type)
    && (!text || row.search.includes(text)));
  const compare = SORTS[sort];
  const direction = descending ? -1 : 1;
  const unsized = (row) => (sort === "size" && row.size === null ? 1 : 0);
  return shown.sort((a, b) => unsized(a) - unsized(b) || direction * compare(a, b) || SORTS.name(a, b));
}

/** The distinct types among the rows, models first (by title), packs last. */
export function rowTypes(rows) {
  const types = new Map(rows.map((row) => [row.type, row.typeLabel]));
  const models = [...types].filter(([type]) => type !== PACK_TYPE).sort((a, b) => byText(a[1], b[1]));
  return types.has(PACK_TYPE) ? [...models, [PACK_TYPE, types.get(PACK_TYPE)]] : models;
}
