/**
 * The Nodes tab: a tier summary, then one section per tier (most actionable first) with one row per
 * custom-node pack; a row opens to list the pack's nodes. Packs are few (hundreds at most), so they render
 * in full; only open packs build their node tables.
 */
import { h, icon } from "./dom.js";
import { TIERS, TIER_LABELS, plural } from "./format.js";
import { chartButton, countCell, dateCell, importTime, nothingToShow, outcomeCell, statusDot } from "./cells.js";
import { usedOnCell } from "./fleet_status.js";
import { section } from "./section.js";
import { countByTier, summaryBar } from "./summary_bar.js";

const FLAG_LABELS = {
  disabled: "disabled",
  import_failed: "import failed",
  refused: "refused by ComfyUI",
  frontend_only: "front-end only",
  protected: "protected",
  kept: "kept",
};

export function nodesTab({ packages, query, tierFilter, onTierFilter, onSelectRow, collapsed, expanded, actions }) {
  const matching = packages.map((pack) => matchPackage(pack, query)).filter(Boolean);
  const sections = TIERS.filter((tier) => !tierFilter || tier === tierFilter).map((tier) => {
    const inTier = matching.filter((pack) => pack.status === tier);
    return inTier.length === 0 ? null : section({
      id: `nodes-${tier}`,
      title: TIER_LABELS[tier],
      count: inTier.length,
      tier,
      collapsedByDefault: tier === "uninstalled" && tierFilter !== tier,
      collapsed,
      buildBody: () => h("div", { role: "list" }, inTier.map((pack) => packageRow(pack, expanded, Boolean(query), actions, onSelectRow))),
    });
  }).filter(Boolean);
  return h("div", { className: "usage-stats-tab-body", "data-testid": "usage-stats-nodes" }, [
    summaryBar({ counts: countByTier(matching), activeTier: tierFilter, onSelect: onTierFilter, label: "Packs per tier" }),
    ...(sections.length ? sections : [nothingToShow(query ? `No pack or node matches “${query}”.` : "No custom-node packs installed.")]),
  ]);
}

/** The pack when its name matches; else the pack narrowed to its matching nodes; else null. */
function matchPackage(pack, query) {
  if (!query || pack.package.toLowerCase().includes(query)) return pack;
  const nodes = pack.nodes.filter((node) => node.class_type.toLowerCase().includes(query));
  return nodes.length ? { ...pack, nodes } : null;
}

function packageRow(pack, expanded, openMatches, actions, onSelectRow) {
  const details = h("div", { className: "usage-stats-details", id: `usage-stats-pack-${CSS.escape(pack.package)}` });
  const isOpen = () => expanded.has(pack.package) || (openMatches && pack.nodes.length > 0);
  const toggle = h("button", {
    className: "usage-stats-package-row",
    type: "button",
    "aria-controls": details.id,
    "data-testid": "usage-stats-package-row",
    "data-package": pack.package,
    "data-status": pack.status,
    on: { click: () => { expanded.has(pack.package) ? expanded.delete(pack.package) : expanded.add(pack.package); show(); } },
  }, [
    icon("pi-chevron-right usage-stats-chevron"),
    statusDot(pack.status),
    h("span", { className: "usage-stats-package-main" }, [
      h("span", { className: "usage-stats-name" }, [
        h("span", { className: "usage-stats-name-text", text: pack.package }),
        ...Object.keys(FLAG_LABELS).filter((flag) => pack[flag]).map(flagChip),
      ]),
      h("span", { className: "usage-stats-meta" }, [
        countCell(pack.total_executions, "prompt"),
        h("span", { title: "nodes of this pack used at least once / nodes it provides", text: `${pack.used_nodes}/${pack.total_nodes} nodes` }),
        dateCell(pack.last_seen, { before: pack.lastEver, labelled: true }),
        importTime(pack.import_seconds, pack.status),
        usedOnCell(pack.machines),
      ]),
      pack.reasons?.length ? h("span", { className: "usage-stats-pack-reason", "data-testid": "usage-stats-reason", text: pack.reasons.join("; ") }) : null,
    ]),
  ]);
  function show() {
    const open = isOpen();
    toggle.setAttribute("aria-expanded", String(open));
    details.replaceChildren(...(open ? packageDetails(pack, actions, onSelectRow) : []));
  }
  show();
  return h("div", { className: "usage-stats-package", role: "listitem" }, [toggle, details]);
}

function flagChip(flag) {
  return h("span", { className: "usage-stats-flag", "data-flag": flag, text: FLAG_LABELS[flag] });
}

function packageDetails(pack, actions, onSelectRow) {
  const reasons = (pack.reasons ?? []).map((reason) => h("li", { text: reason }));
  const chart = h("div", { className: "usage-stats-details-actions" }, [
    chartButton(pack.package, () => onSelectRow({ kind: "package", id: pack.package, label: pack.package })),
  ]);
  return [
    reasons.length ? h("ul", { className: "usage-stats-reasons", "data-testid": "usage-stats-reasons" }, reasons) : null,
    packageButtons(pack, actions),
    pack.nodes.length ? nodeTable(pack.nodes, onSelectRow) : h("p", { className: "usage-stats-note", text: `None of its ${plural(pack.total_nodes, "node")} has been used yet.` }),
    chart,
  ].filter(Boolean);
}

function nodeTable(nodes, onSelectRow) {
  const header = h("tr", {}, ["Node", "Prompts", "First seen", "Last seen", ""].map((text) => h("th", { scope: "col", text })));
  const rows = [...nodes].sort((a, b) => b.count - a.count).map((node) => h("tr", { "data-testid": "usage-stats-node-row" }, [
    h("td", { title: node.class_type }, [h("span", { text: node.class_type }), outcomeCell(node)]),
    h("td", {}, [countCell(node.count)]),
    h("td", {}, [dateCell(node.first_seen, { what: "first seen" })]),
    h("td", {}, [dateCell(node.last_seen)]),
    h("td", {}, [chartButton(node.class_type, () => onSelectRow({ kind: "node", id: node.class_type, label: node.class_type }))]),
  ]));
  return h("table", { className: "usage-stats-node-table" }, [h("thead", {}, [header]), h("tbody", {}, rows)]);
}

/** Keep / unpin, and disable / enable (never for ComfyUI-Manager or this extension, nor for a pack that is gone). */
function packageButtons(pack, actions) {
  const installedOrDisabled = pack.installed || pack.disabled;
  if (!installedOrDisabled) return null;
  const button = (text, testId, onClick) => h("button", { className: "usage-stats-button", type: "button", text, "data-testid": testId, on: { click: onClick } });
  return h("div", { className: "usage-stats-package-actions" }, [
    button(pack.kept ? "Unpin" : "Keep (never suggest removing)", "usage-stats-keep-pack", () => actions.keepPack(pack, !pack.kept)),
    pack.protected ? null : pack.disabled
      ? button("Enable", "usage-stats-enable-pack", () => actions.setPackEnabled(pack, true))
      : button("Disable", "usage-stats-disable-pack", () => actions.setPackEnabled(pack, false)),
  ]);
}
