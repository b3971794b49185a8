/**
 * The summary header of the chosen range: prompts, success rate, average run time, failed and rejected
 * prompts, a per-day chart of every prompt or of the row the user picked, and the last hour at a glance.
 */
import { h } from "./dom.js";
import { dailyChart } from "./chart.js";
import { duration, percent, plural } from "./format.js";

/** "Last hour: 5 prompts, 1 failed · running 1, queued 2" (the queue part only while ComfyUI is busy). */
function lastHour(live) {
  const failed = live.failures + live.interrupted;
  const busy = live.queue.running || live.queue.pending ? ` · running ${live.queue.running}, queued ${live.queue.pending}` : "";
  return `Last hour: ${plural(live.prompts, "prompt")}${failed ? `, ${failed} failed` : ""}${busy}`;
}

export function overview({ summary, live, selection, days, onClearSelection }) {
  const failed = summary.failures + summary.interrupted;
  const stats = [
    ["Prompts", summary.prompts.toLocaleString(), "prompts ComfyUI accepted"],
    ["Success", percent(summary.success_rate), "finished prompts that succeeded"],
    ["Avg time", duration(summary.avg_ms), summary.p95_ms === null ? "" : `95% of runs took at most ${duration(summary.p95_ms)}`],
    ["Failed", failed.toLocaleString(), `${summary.failures} errors, ${summary.interrupted} interrupted`],
    ["Rejected", summary.rejected.toLocaleString(), "prompts ComfyUI refused before running; they never count as use"],
  ];
  const caption = selection ? `${selection.label}: prompts per day` : "All prompts per day";
  const clear = selection
    ? h("button", { className: "usage-stats-link", type: "button", text: "Show all", "data-testid": "usage-stats-clear-selection", on: { click: onClearSelection } })
    : null;
  return h("section", { className: "usage-stats-overview", "aria-label": "Summary", "data-testid": "usage-stats-overview" }, [
    h("dl", { className: "usage-stats-stats" }, stats.map(([term, value, title]) => h("div", { title, "data-stat": term }, [
      h("dt", { text: term }),
      h("dd", { text: value }),
    ]))),
    h("div", { className: "usage-stats-chart-caption" }, [h("span", { "data-testid": "usage-stats-chart-caption", text: caption }), clear]),
    dailyChart(selection?.series ?? summary.per_day, caption, days),
    h("p", { className: "usage-stats-live", "data-testid": "usage-stats-live", text: lastHour(live) }),
  ]);
}
