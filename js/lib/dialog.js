/**
 * Fallback for frontends without the sidebar-tab API: the same panel in an overlay of our own
 * (ComfyUI's own dialog service only accepts Vue components). Escape, the close button or a click on
 * the backdrop close it and focus returns to where it was.
 */
import { h, icon } from "./dom.js";

export function openDialog(panel) {
  if (document.querySelector(".usage-stats-overlay")) return;
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
    h("div", { className: "usage-stats-dialog", role: "dialog", "aria-modal": "true", "aria-label": "Usage Stats", "data-testid": "usage-stats-dialog" }, [closeButton, body]),
  ]);
  document.body.append(overlay);
  document.addEventListener("keydown", onKey);
  panel.mount(body);
  closeButton.focus();
}
