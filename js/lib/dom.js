/**
 * Element helpers. Every string a caller passes as `text` or as a child becomes a text node, so names
 * that come from the server can never be parsed as HTML.
 */

/** Create an element: h("button", { className, text, "aria-label": "Close", on: { click } }, [children]). */
export function h(tag, props = {}, children = []) {
  const { className, text, on, ...attributes } = props;
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [event, listener] of Object.entries(on ?? {})) node.addEventListener(event, listener);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

/** A PrimeIcons icon, hidden from screen readers (the surrounding control carries the label). */
export function icon(name) {
  return h("i", { className: `pi ${name}`, "aria-hidden": "true" });
}

/** Add a stylesheet once; the href comes from import.meta.url so sub-path hosting keeps working. */
export function injectCss(href) {
  const url = String(href);
  if ([...document.querySelectorAll("link[rel=stylesheet]")].some((link) => link.href === url)) return;
  document.head.append(h("link", { rel: "stylesheet", href: url }));
}
