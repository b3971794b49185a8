/**
 * Everything the panel can change: pins, quarantine, restore, empty, pack disable/enable, reset. Each asks
 * first where it moves or deletes something, says exactly what (how many files, how many bytes), reports
 * the outcome in a toast, and reloads the panel. The server checks every request again; this is the
 * human half of the confirmation.
 */
import { app } from "../../../scripts/app.js";
import {
  emptyQuarantine, fetchHistoryImport, quarantineModels, resetStats, restoreFromQuarantine, setKept, setPackEnabled,
  startHistoryImport,
} from "./api.js";
import { formatBytes, plural } from "./format.js";

/** ComfyUI's own confirm dialog where the frontend has one, else the browser's. Resolves to true only on yes. */
export async function confirmWith({ title, message, type = "default" }) {
  const dialog = app.extensionManager?.dialog;
  const answer = dialog?.confirm ? await dialog.confirm({ title, message, type }) : window.confirm(message);
  return answer === true;
}

export function notify(severity, summary, detail) {
  app.extensionManager?.toast?.add({ severity, summary, detail, life: 5000 });
}

/** The actions, bound to `reload` (called after each attempt, whatever its outcome). */
export function createActions(reload) {
  async function run(work, summary) {
    try {
      const result = await work();
      const detail = summary(result);
      if (detail) notify("success", ...detail);
    } catch (error) {
      notify("error", "Not done", error.message);
    }
    await reload();
  }

  return {
    keepModel: (model, keep) => run(
      () => setKept({ kind: "model", model_type: model.model_type, name: model.model_name }, keep), () => null),
    keepPack: (pack, keep) => run(() => setKept({ kind: "package", name: pack.package }, keep), () => null),

    async quarantine(models) {
      const bytes = models.reduce((sum, model) => sum + (model.counted_bytes ?? 0), 0);
      const message = `Move ${plural(models.length, "file")} (${formatBytes(bytes)}) to the quarantine folder? `
        + "ComfyUI will no longer list them. Nothing is deleted: you can restore them from the Quarantine tab.";
      if (!(await confirmWith({ title: "Move to quarantine?", message }))) return false;
      await run(() => quarantineModels(models.map(({ model_type, model_name }) => ({ model_type, model_name }))), (result) => [
        "Moved to quarantine",
        `${plural(result.moved.length, "file")} moved${result.refused.length ? `; ${result.refused.length} refused: ${result.refused[0].error}` : ""}.`,
      ]);
      return true;
    },

    restore: (entries) => run(() => restoreFromQuarantine(entries.map((entry) => entry.id)), (result) => [
      "Restored", `${plural(result.restored.length, "file")} back where ${result.restored.length === 1 ? "it was" : "they were"}.`,
    ]),

    async empty(quarantine) {
      const message = `Delete ${plural(quarantine.files, "file")} (${formatBytes(quarantine.bytes)}) in quarantine for good? `
        + "This cannot be undone.";
      if (!(await confirmWith({ title: "Empty the quarantine?", message, type: "delete" }))) return;
      await run(() => emptyQuarantine(quarantine.bytes), (result) => ["Quarantine emptied", `${formatBytes(result.bytes)} freed.`]);
    },

    async setPackEnabled(pack, enabled) {
      const verb = enabled ? "Enable" : "Disable";
      const message = `${verb} ${pack.package}? ${enabled ? "It moves back into custom_nodes" : "It moves into custom_nodes/.disabled"}; `
        + "restart ComfyUI to apply.";
      if (!(await confirmWith({ title: `${verb} pack?`, message }))) return;
      await run(() => setPackEnabled(pack.package, enabled), () => [`${verb}d ${pack.package}`, "Restart ComfyUI to apply."]);
    },

    /** Opt-in: read the prompts saved in past output images; follows the job and reports what it added. */
    async importHistory() {
      const message = "Read the prompts ComfyUI saved in your output images (PNG) from before tracking started, "
        + "and add them to the history at each image's date? Each prompt is counted once, however often you import.";
      if (!(await confirmWith({ title: "Import history from your outputs?", message }))) return;
      await run(async () => {
        let status = await startHistoryImport();
        while (status.state === "running") {
          await new Promise((resolve) => setTimeout(resolve, 500));
          status = await fetchHistoryImport();
        }
        if (status.state !== "done") throw new Error(status.error ?? `the import was ${status.state}`);
        return { ...status.result, skipped: status.skipped_count };
      }, (result) => ["History imported", `${plural(result.imported, "past prompt")} added from ${plural(result.images, "image")}`
        + `${result.skipped ? `; ${plural(result.skipped, "file")} skipped (empty, or not a regular file)` : ""}.`]);
    },

    async reset(recorded) {
      const message = `This deletes the record of ${plural(recorded, "prompt")}: every node, pack and model usage count and `
        + "last-used date. Installed files are not touched. This cannot be undone.";
      if (!(await confirmWith({ title: "Reset usage stats?", message, type: "delete" }))) return;
      await run(() => resetStats(), () => ["Usage stats reset", "Recording starts again with the next prompt."]);
    },
  };
}
