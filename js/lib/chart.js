/**
 * A per-day bar chart in SVG: one bar per day of the chosen range, so the bars span it (a day without
 * prompts is an empty slot, not a missing one), per week beyond MAX_BARS days; the failed part of each bar
 * in the error colour; the first, middle and last dates on an axis below; a message when nothing ran.
 * Colours are CSS classes over ComfyUI's palette variables; labels are text nodes.
 */
import { h } from "./dom.js";
import { plural } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const MAX_BARS = 120;
const DAY_MS = 86_400_000;
const WIDTH = 300;
const HEIGHT = 56;

function svg(tag, attributes = {}, children = []) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
}

/** Days merged into weeks when there are too many to draw one bar each. */
function buckets(series) {
  if (series.length <= MAX_BARS) return series.map((day) => ({ ...day, label: day.day }));
  const weeks = [];
  for (let start = 0; start < series.length; start += 7) {
    const days = series.slice(start, start + 7);
    const sum = (key) => days.reduce((total, day) => total + (day[key] ?? 0), 0);
    weeks.push({ prompts: sum("prompts"), failures: sum("failures") + sum("interrupted"), label: `week of ${days[0].day}` });
  }
  return weeks;
}

/**
 * Every day from the range's first to today ("YYYY-MM-DD", UTC as the server counts), each with its
 * counts or zeros. `days` is the range ("7", "30", "90" or "all": from the first day with data).
 */
export function fillDays(series, days, now = Date.now()) {
  const byDay = new Map(series.map((day) => [day.day, day]));
  const today = Math.floor(now / DAY_MS);
  const first = days === "all" || !Number(days)
    ? Math.min(today, ...series.map((day) => Math.floor(Date.parse(`${day.day}T00:00:00Z`) / DAY_MS)))
    : today - Number(days) + 1;
  const filled = [];
  for (let day = first; day <= today; day += 1) {
    const key = new Date(day * DAY_MS).toISOString().slice(0, 10);
    filled.push(byDay.get(key) ?? { day: key, prompts: 0, failures: 0, interrupted: 0 });
  }
  return filled;
}

const shortDate = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
const axisDate = (day) => shortDate.format(new Date(`${day}T00:00:00Z`));

export function dailyChart(series, label, days = "all") {
  const filled = fillDays(series, days);
  if (!filled.some((day) => day.prompts > 0)) {
    return h("p", { className: "usage-stats-chart-empty", "data-testid": "usage-stats-chart-empty", text: "No prompts in this range." });
  }
  const bars = buckets(filled);
  const peak = Math.max(1, ...bars.map((bar) => bar.prompts));
  const width = WIDTH / bars.length;
  const shapes = bars.map((bar, index) => {
    const failed = bar.failures + (bar.interrupted ?? 0);
    const total = (bar.prompts / peak) * (HEIGHT - 2);
    const bad = (Math.min(failed, bar.prompts) / peak) * (HEIGHT - 2);
    const x = index * width;
    const title = svg("title");
    title.textContent = `${bar.label}: ${plural(bar.prompts, "prompt")}${failed ? `, ${failed.toLocaleString()} failed` : ""}`;
    return svg("g", { class: "usage-stats-chart-day" }, [
      svg("rect", { x, y: 0, width, height: HEIGHT, class: "usage-stats-chart-hit" }),
      svg("rect", { x: x + width * 0.1, y: HEIGHT - total, width: width * 0.8, height: total, class: "usage-stats-chart-bar" }),
      svg("rect", { x: x + width * 0.1, y: HEIGHT - total, width: width * 0.8, height: bad, class: "usage-stats-chart-failed" }),
      title,
    ]);
  });
  const chart = svg("svg", {
    class: "usage-stats-chart", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: "none", role: "img", "data-testid": "usage-stats-chart",
  }, shapes);
  chart.setAttribute("aria-label", label);
  const middle = filled[Math.floor((filled.length - 1) / 2)].day;
  const axis = h("div", { className: "usage-stats-chart-axis", "data-testid": "usage-stats-chart-axis", "aria-hidden": "true" },
    [filled[0].day, middle, filled[filled.length - 1].day].map((day) => h("span", { text: axisDate(day) })));
  return h("div", { className: "usage-stats-chart-box" }, [chart, axis]);
}
