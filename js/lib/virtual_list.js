/**
 * A windowed list: only the rows in view plus a small buffer exist in the DOM, between two spacers whose
 * heights stand in for the rest. This is what keeps 20,000 models fast and the DOM small. Rows must all
 * be `rowHeight` tall; the list publishes that height as a CSS variable so the stylesheet follows it.
 * `items` is an array, or a list read in pages (model_pages.js pagedRows): anything with `length` and
 * `slice`, whose rows not read yet are null (`renderRow` draws a stand-in) and whose `onChange` says when they came.
 */
import { h } from "./dom.js";

const DEFAULT_ROW_HEIGHT = 46;
const BUFFER_ROWS = 8;
/** Used before the list is laid out (it is built detached); matches the CSS max-height closely enough. */
const ASSUMED_VIEWPORT = 480;

export function virtualList({ items, renderRow, label, testId, rowHeight = DEFAULT_ROW_HEIGHT, className = "" }) {
  const top = h("div", { className: "usage-stats-spacer", "aria-hidden": "true" });
  const bottom = h("div", { className: "usage-stats-spacer", "aria-hidden": "true" });
  const rows = h("div", { className: "usage-stats-vlist-rows" });
  const viewport = h("div", { className: `usage-stats-vlist ${className}`.trim(), role: "list", "aria-label": label, "data-testid": testId, tabindex: 0 }, [top, rows, bottom]);
  viewport.style.setProperty("--usage-stats-row-height", `${rowHeight}px`);

  let shown = "";
  function update() {
    const height = viewport.clientHeight || ASSUMED_VIEWPORT;
    const start = Math.max(0, Math.floor(viewport.scrollTop / rowHeight) - BUFFER_ROWS);
    const end = Math.min(items.length, Math.ceil((viewport.scrollTop + height) / rowHeight) + BUFFER_ROWS);
    if (shown === `${start}:${end}`) return;
    shown = `${start}:${end}`;
    top.style.height = `${start * rowHeight}px`;
    bottom.style.height = `${(items.length - end) * rowHeight}px`;
    rows.replaceChildren(...items.slice(start, end).map(renderRow));
  }

  items.onChange?.(() => {
    shown = "";
    update();
  });

  let frame = 0;
  viewport.addEventListener("scroll", () => {
    if (!frame) frame = requestAnimationFrame(() => ((frame = 0), update()));
  }, { passive: true });
  update();
  return viewport;
}
