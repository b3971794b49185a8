/**
 * Settings whose truth is on the server, shown in ComfyUI's settings dialog. At start-up the dialog is brought
 * in line with the server (another tab, user or script may have changed a value); a change made in the dialog
 * is sent to the server at once, and a value the server refuses is put back, with its reason in a toast.
 * Shared by the config (settings.js) and the idle-unload settings (memory_settings.js).
 */
import { app } from "../../../scripts/app.js";

/**
 * `fields`: ComfyUI setting params plus `field` (the server's name) and optional `toSetting` / `toServer`
 * conversions; `read()` resolves to the server's values, `write(changes)` sends some.
 * Returns the params for registerExtension({ settings }) and `sync()`.
 */
export function serverSettings({ fields, read, write }) {
  let syncing = false;

  async function sync() {
    const store = app.extensionManager?.setting;
    if (!store?.set) return;
    const values = await read();
    syncing = true;
    try {
      for (const spec of fields) {
        const value = spec.toSetting ? spec.toSetting(values[spec.field]) : values[spec.field];
        if (store.get(spec.id) !== value) await store.set(spec.id, value);
      }
    } finally {
      syncing = false;
    }
  }

  async function send(spec, value, previous) {
    if (syncing || previous === undefined || value === previous) return; // registration replays the stored value
    try {
      await write({ [spec.field]: spec.toServer ? spec.toServer(value) : value });
    } catch (error) {
      app.extensionManager?.toast?.add({
        severity: "error", summary: `${spec.name}: not saved`, detail: inDialogWords(error.message), life: 6000,
      });
      await sync().catch(() => {});
    }
  }

  /** The server names fields ("safe_days must be greater than consider_days"); the dialog shows labels. */
  function inDialogWords(message) {
    return fields.reduce((text, { field, name }) => text.replace(new RegExp(`\\b${field}\\b`, "g"), name), message);
  }

  const settings = fields.map(({ field, toSetting, toServer, ...params }) => ({
    ...params,
    onChange: (value, previous) => send({ field, toServer, name: params.name }, value, previous),
  }));
  return { settings, sync };
}
