/**
 * Settings whose truth is on the server, shown in ComfyUI's settings dialog. The server describes each field
 * (default, range, help) and the dialog's entries are built from that description, so the two cannot drift;
 * only what is UI text (labels, ids, order, units) is written in JS. At start-up the dialog is brought in line
 * with the server's values (another tab, user or script may have changed one); a change made in the dialog is
 * sent to the server at once, and a value the server refuses is put back, with its reason in a toast.
 * Shared by the config (settings.js) and the idle-unload settings (memory_settings.js).
 */
import { app } from "../../../scripts/app.js";

/**
 * `fields`: ComfyUI setting params without default or range, plus `field` (the server's name) and optional
 * `toSetting` / `toServer` conversions; `read()` resolves to the server's answer `{ config, fields }`,
 * `write(changes)` sends some. Resolves to the params for registerExtension({ settings }) and `sync()` once the
 * server has described its fields; rejects when it cannot, since an entry has no default of its own.
 */
export async function serverSettings({ fields, read, write }) {
  let unshown = await read();  // the first sync shows this answer, so a page load reads each config once
  const described = withServerDescription(fields, unshown.fields);
  let syncing = false;

  async function sync() {
    const store = app.extensionManager?.setting;
    if (!store?.set) return;
    const { config: values } = unshown ?? await read();
    unshown = null;
    syncing = true;
    try {
      for (const spec of described) {
        const value = inDialogUnits(spec, values[spec.field]);
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
    return described.reduce((text, { field, name }) => text.replace(new RegExp(`\\b${field}\\b`, "g"), name), message);
  }

  const settings = described.map(({ field, toSetting, toServer, ...params }) => ({
    ...params,
    onChange: (value, previous) => send({ field, toServer, name: params.name }, value, previous),
  }));
  return { settings, sync };
}

/**
 * Each entry with the server's default, range and (where the entry has none) help as its tooltip, in the
 * dialog's units (a timeout the server keeps in seconds reads as minutes). An entry the server does not
 * describe is left out rather than given a guess.
 */
function withServerDescription(fields, descriptions) {
  const byName = new Map(descriptions.map((description) => [description.name, description]));
  return fields.filter((spec) => byName.has(spec.field)).map((spec) => {
    const { default: value, min, max, help } = byName.get(spec.field);
    const range = min == null || max == null ? {} : { attrs: { ...spec.attrs, min: inDialogUnits(spec, min), max: inDialogUnits(spec, max) } };
    return { ...spec, ...range, defaultValue: inDialogUnits(spec, value), tooltip: spec.tooltip ?? (help || undefined) };
  });
}

const inDialogUnits = (spec, value) => (spec.toSetting ? spec.toSetting(value) : value);
