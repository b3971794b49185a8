/**
 * What a quarantine of the selected rows will do, shown before it is done: each file that will move, its
 * size and what moving it frees (a second name of one file, or a link, frees nothing), and the total.
 * The button in it is the confirmation; the server checks each file again and may refuse one, and the
 * answer (moved, refused and why) replaces the list.
 */
import { h } from "./dom.js";
import { formatBytes, modelTypeTitle, plural } from "./format.js";

/** `rows`: the selected model rows; `onMove(rows)` resolves to the server's {moved, refused}; `onBack()`. */
export function cleanupPreview({ rows, onMove, onBack }) {
  const frees = rows.reduce((sum, row) => sum + row.frees, 0);
  const move = h("button", {
    className: "usage-stats-button usage-stats-button-primary", type: "button", "data-testid": "usage-stats-cleanup-confirm",
    text: `Move ${plural(rows.length, "file")} to quarantine`,
  });
  const back = h("button", { className: "usage-stats-button", type: "button", text: "Back to the list", "data-testid": "usage-stats-cleanup-back", on: { click: onBack } });
  const outcome = h("div", { className: "usage-stats-cleanup-outcome", role: "status", "data-testid": "usage-stats-cleanup-outcome" });
  const list = h("ul", { className: "usage-stats-cleanup-moves", "data-testid": "usage-stats-cleanup-moves" }, rows.map(moveLine));
  move.addEventListener("click", async () => {
    move.disabled = true;
    outcome.replaceChildren(h("p", { text: "Moving…" }));
    try {
      const result = await onMove(rows);
      outcome.replaceChildren(...resultLines(result));
      move.hidden = true;
    } catch (error) {
      outcome.replaceChildren(h("p", { className: "usage-stats-cleanup-refused", text: `Nothing moved: ${error.message}` }));
      move.disabled = false;
    }
  });
  return h("section", { className: "usage-stats-cleanup-preview", "aria-label": "What will move", "data-testid": "usage-stats-cleanup-preview" }, [
    h("h3", { className: "usage-stats-cleanup-preview-title", "data-testid": "usage-stats-cleanup-preview-total",
      text: `${plural(rows.length, "file")} will move to the quarantine folder and free ${formatBytes(frees)}` }),
    h("p", { className: "usage-stats-note", text: "Nothing is deleted: ComfyUI stops listing the files, and the Quarantine tab puts them back where they were." }),
    list,
    outcome,
    h("div", { className: "usage-stats-cleanup-actions" }, [move, back]),
  ]);
}

function moveLine(row) {
  return h("li", { className: "usage-stats-cleanup-move", "data-testid": "usage-stats-cleanup-move" }, [
    h("span", { className: "usage-stats-cleanup-move-type", text: modelTypeTitle(row.type) }),
    h("span", { className: "usage-stats-cleanup-move-name", text: row.name }),
    h("span", { className: "usage-stats-cleanup-move-size", text: formatBytes(row.size ?? 0) }),
    h("span", { className: "usage-stats-cleanup-move-frees", title: row.sizeNote || undefined,
      text: row.frees ? `frees ${formatBytes(row.frees)}` : "frees nothing" }),
  ]);
}

function resultLines({ moved, refused }) {
  const freed = moved.reduce((sum, item) => sum + (item.size ?? 0), 0);
  return [
    h("p", { className: "usage-stats-cleanup-moved", text: `Moved ${plural(moved.length, "file")} (${formatBytes(freed)}) to the quarantine folder.` }),
    ...refused.map((item) => h("p", { className: "usage-stats-cleanup-refused", text: `Not moved: ${item.model_name}: ${item.error}` })),
  ];
}
