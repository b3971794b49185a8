/**
 * A dialog of our own (ComfyUI's own dialog service only accepts Vue components) that shows a view with a
 * mount(el): the Clean-up view, and the panel on frontends without the sidebar-tab API. Escape, the close
 * button or a click on the backdrop close it and focus returns to where it was.
 */
import { h, icon } from "./dom.js";

/** `view.mount(el)` fills it; `label` names it; `wide` makes it take most of the window (tables). */
export function openDialog(view, { label = "Usage Stats", testId = "usage-stats-dialog", wide = false } = {}) {
  if (document.querySelector(`[data-testid="${testId}"]`)) return;
  const previousFocus = document.activeElement;
  const body = h("div", { className: "usage-stats-dialog-body" });
  const onKey = (event) => { if (event.key === "Escape") close(); };
  const close = () => {
    overlay.remove();
    document.removeEventListener("keydown", onKey);
    previousFocus?.focus?.();
  };
  const closeButton = h("button", { className: "usage-stats-icon-button usage-stats-dialog-close", type: "button", "aria-label": "Close", title: "Close", on: { click: close } }, [icon("pi-times")]);
  const overlay = h("div", { className: "usage-stats-overlay", on: { click: (event) => { if (event.target === overlay) close(); } } }, [
    h("div", {
      className: `usage-stats-dialog${wide ? " usage-stats-dialog-wide" : ""}`, role: "dialog", "aria-modal": "true", "aria-label": label, "data-testid": testId,
    }, [closeButton, body]),
  ]);
  document.body.append(overlay);
  document.addEventListener("keydown", onKey);
  view.mount(body);
  closeButton.focus();
}
