/**
 * Where the statistics go when several ComfyUI machines share one model store: a status line for the panel
 * ("Shared store: 3 machines · gpu-2 silent since 2 days ago"), hidden without a shared store. It says plainly
 * when the shared store is unreachable or a read of it failed, because nothing is suggested for removal then
 * (the views fall back to this machine's own statistics). Read when the panel asks (it opens, a prompt
 * finished, Refresh), like the memory line. Also the fleet's part of a model or pack row: which machines used it.
 */
import { h } from "./dom.js";
import { fetchShared } from "./api.js";
import { plural, relativeTime } from "./format.js";
import { oneAtATime } from "./schedule.js";

/**
 * The status line (`element`) and `update()`, which reads GET /shared again; the line reads it once now.
 * `onMachines(machines)` hears the fleet's machines ({id, name}) after each read, for the machine picker.
 */
export function fleetStatus({ onMachines } = {}) {
  const line = h("p", { className: "usage-stats-fleet", "data-testid": "usage-stats-fleet", role: "status", hidden: true });
  const update = oneAtATime(async () => {
    try {
      const shared = await fetchShared();
      render(line, shared);
      onMachines?.(shared.machines ?? []);
    } catch (error) {
      line.hidden = false;
      line.textContent = `Shared store: status unavailable (${error.message})`;
    }
  });
  update();
  return { element: line, update };
}

function render(line, shared) {
  line.hidden = !shared.configured;
  if (!shared.configured) return;
  line.dataset.reachable = String(shared.reachable);
  line.toggleAttribute("data-failing", Boolean(shared.error));
  if (!shared.reachable) {
    line.textContent = "Shared store unreachable: nothing is suggested for removal until it answers"
      + (shared.owed ? ` · ${plural(shared.owed, "batch", "batches")} waiting to be sent` : "");
    line.title = shared.error ?? "";
    return;
  }
  if (shared.error) {  // it answers, but a read of it failed: a bug the log shows with its traceback
    line.textContent = "Reading the shared store failed: views fall back to this machine's statistics, "
      + "and nothing in them is suggested for removal";
    line.title = shared.error;
    return;
  }
  const silent = shared.machines.filter((machine) => machine.silent);
  line.textContent = [
    `Shared store: ${plural(shared.machines.length, "machine")}`,
    ...silent.map((machine) => `${machine.name} silent since ${relativeTime(machine.last_report)}`),
  ].join(" · ");
  line.title = shared.machines.map((machine) => `${machine.name}: last report ${relativeTime(machine.last_report)}`).join("\n");
}

/**
 * Which machines of the fleet used a model or a pack: "on gpu-2" or "on 3 machines", each machine's last use and
 * last report in the tooltip. Null when no machine did, and without a shared store (rows carry `machines` only then).
 */
export function usedOnCell(machines) {
  if (!machines?.length) return null;
  return h("span", {
    className: "usage-stats-used-on", "data-testid": "usage-stats-used-on",
    text: machines.length === 1 ? `on ${machines[0].name}` : `on ${plural(machines.length, "machine")}`,
    title: machines.map((machine) => `${machine.name}: last used ${relativeTime(machine.last_used)}, `
      + `last report ${relativeTime(machine.last_report)}`).join("\n"),
  });
}
