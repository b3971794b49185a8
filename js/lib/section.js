/**
 * A collapsible section: a header button (title, count, chevron) and a body that is only built while the
 * section is open, so a collapsed list of thousands costs nothing.
 */
import { h, icon } from "./dom.js";

/** `collapsed` is the caller's Map of section id -> boolean, so the choice survives re-renders. */
export function section({ id, title, count, tier, collapsedByDefault = false, collapsed, buildBody }) {
  const isCollapsed = () => collapsed.get(id) ?? collapsedByDefault;
  const body = h("div", { className: "usage-stats-section-body", id: `usage-stats-body-${id}` });
  const header = h("button", {
    className: "usage-stats-section-header",
    type: "button",
    "aria-controls": body.id,
    on: { click: () => toggle(!isCollapsed()) },
  }, [
    icon("pi-chevron-down usage-stats-chevron"),
    tier ? h("span", { className: "usage-stats-dot", "data-tier": tier, "aria-hidden": "true" }) : null,
    h("span", { className: "usage-stats-section-title", text: title }),
    h("span", { className: "usage-stats-section-count", text: count.toLocaleString() }),
  ]);
  const root = h("section", { className: "usage-stats-section", "data-testid": "usage-stats-section", "data-section": id }, [h("h3", {}, [header]), body]);

  function toggle(nowCollapsed) {
    collapsed.set(id, nowCollapsed);
    header.setAttribute("aria-expanded", String(!nowCollapsed));
    root.classList.toggle("usage-stats-collapsed", nowCollapsed);
    body.replaceChildren(...(nowCollapsed ? [] : [buildBody()]));
  }
  toggle(isCollapsed());
  return root;
}
