/**
 * A per-day bar chart in SVG: one bar per day (per week beyond MAX_BARS days), the failed part of each bar
 * in the error colour. Colours are CSS classes over ComfyUI's palette variables; labels are text nodes.
 */
import { plural } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const MAX_BARS = 120;
const MIN_SLOTS = 30; // a short history draws thin bars at the right, like the last days of a month
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

export function dailyChart(series, label) {
  const bars = buckets(series);
  const peak = Math.max(1, ...bars.map((bar) => bar.prompts));
  const width = WIDTH / Math.max(MIN_SLOTS, bars.length);
  const left = WIDTH - width * bars.length;
  const shapes = bars.map((bar, index) => {
    const failed = bar.failures + (bar.interrupted ?? 0);
    const total = (bar.prompts / peak) * (HEIGHT - 2);
    const bad = (Math.min(failed, bar.prompts) / peak) * (HEIGHT - 2);
    const x = left + index * width;
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
  return chart;
}
