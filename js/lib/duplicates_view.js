/**
 * The Duplicates tab: start or cancel the search for exact duplicates, its progress while it runs, and
 * each group of identical files with the space its extra copies waste. The view polls only the job's
 * status while it runs (never the whole panel), and stops polling once it is gone from the page.
 */
import { h } from "./dom.js";
import { cancelDuplicates, fetchDuplicates, scanDuplicates } from "./api.js";
import { formatBytes, modelTypeTitle, plural } from "./format.js";
import { nothingToShow } from "./cells.js";
import { notify } from "./actions.js";

const POLL_MS = 500;

export function duplicatesView({ status }) {
  const root = h("div", { className: "usage-stats-tab-body", "data-testid": "usage-stats-duplicates" });

  function show(current) {
    root.dataset.state = current.state;
    root.replaceChildren(controls(current), ...body(current));
    if (current.state === "running") setTimeout(poll, POLL_MS);
  }

  async function poll() {
    if (!root.isConnected) return;
    try {
      show(await fetchDuplicates());
    } catch (error) {
      notify("error", "Duplicate search", error.message);
    }
  }

  async function act(request) {
    try {
      show(await request());
    } catch (error) {
      notify("error", "Duplicate search", error.message);
    }
    await poll();
  }

  function controls(current) {
    const running = current.state === "running";
    return h("div", { className: "usage-stats-quarantine-header" }, [
      h("span", { className: "usage-stats-quarantine-total", "data-testid": "usage-stats-duplicates-summary", text: summary(current) }),
      h("button", {
        className: "usage-stats-button", type: "button", "data-testid": running ? "usage-stats-cancel-duplicates" : "usage-stats-find-duplicates",
        text: running ? "Cancel" : current.state === "idle" ? "Find duplicates" : "Search again",
        on: { click: () => act(running ? cancelDuplicates : scanDuplicates) },
      }),
    ]);
  }

  show(status);
  return root;
}

function summary(current) {
  const { done, total } = current.progress;
  if (current.state === "running") return `Comparing files… ${total ? Math.floor((100 * done) / total) : 0}% of ${formatBytes(total)}`;
  if (current.state === "cancelled") return "Search cancelled.";
  if (current.state === "failed") return `Search failed: ${current.error}`;
  if (current.state !== "done") {
    return current.every_file
      ? "Every model file is read once and hashed (a shared store: machines that list one file under other names then know it is one file)."
      : "Files of equal size are compared by content; only those are read.";
  }
  const { groups, wasted_bytes: wasted } = current.result;
  return groups.length ? `${plural(groups.length, "group")} of identical files · ${formatBytes(wasted)} in extra copies` : "No duplicates found.";
}

function body(current) {
  if (current.state !== "done" || !current.result.groups.length) return [];
  return [h("div", { role: "list", "aria-label": "Groups of identical files" }, current.result.groups.map(groupView))];
}

/** One group: its size and waste, then each copy (a copy may be listed under several names). */
function groupView(group) {
  return h("div", { className: "usage-stats-duplicate-group", role: "listitem", "data-testid": "usage-stats-duplicate-group" }, [
    h("div", { className: "usage-stats-meta", text: `${plural(group.files.length, "copy", "copies")} of ${formatBytes(group.size)} · ${formatBytes(group.wasted_bytes)} wasted` }),
    h("ul", { className: "usage-stats-reasons" }, group.files.map((names) => h("li", {
      text: names.map((name) => `${name.model_name} (${modelTypeTitle(name.model_type)})`).join(" = "),
    }))),
  ]);
}
