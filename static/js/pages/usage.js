/**
 * The staff usage dashboard's two charts, drawn with the vendored Chart.js (a classic script that
 * defines `Chart` before this module runs) from the figures in the page's `usage-data` JSON. The
 * tables under the charts hold the same figures for screen readers and for copying.
 */
import { gettext } from "../i18n.js";
import { daySeries, formatTokens, formatUsd, userSeries } from "../usage/series.js";

const Chart = globalThis.Chart;
const dataElement = document.getElementById("usage-data");
const locale = document.documentElement.lang || "en";

/** A colour from the stylesheet, so the charts follow its light and dark palettes. */
function cssColour(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/** Options both charts share: the page's colours, no animation for those who asked for less motion. */
function baseOptions() {
  const text = cssColour("--text", "#1b1f24");
  const grid = cssColour("--border", "#cfd5dc");
  const calm = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: calm ? false : { duration: 300 },
    color: text,
    scales: {
      x: { ticks: { color: text }, grid: { color: grid } },
      y: { ticks: { color: text }, grid: { color: grid }, beginAtZero: true },
    },
    plugins: { legend: { labels: { color: text } } },
  };
}

function drawDays(canvas, days) {
  const series = daySeries(days);
  const options = baseOptions();
  options.scales.x.stacked = true;
  options.scales.y.stacked = true;
  options.scales.y.ticks.callback = (value) => formatTokens(value, locale);
  options.plugins.tooltip = {
    callbacks: { label: (item) => `${item.dataset.label}: ${formatTokens(item.parsed.y, locale)}` },
  };
  return new Chart(canvas, {
    type: "bar",
    data: {
      labels: series.labels,
      datasets: [
        { label: gettext("Input tokens (not cached)"), data: series.input,
          backgroundColor: cssColour("--chart-1", "#0b5cad") },
        { label: gettext("Cached input tokens"), data: series.cached,
          backgroundColor: cssColour("--chart-2", "#6aa9e9") },
        { label: gettext("Output tokens"), data: series.output,
          backgroundColor: cssColour("--chart-3", "#c2410c") },
      ],
    },
    options,
  });
}

function drawUsers(canvas, users) {
  const series = userSeries(users);
  const options = baseOptions();
  options.indexAxis = "y";  // horizontal bars: user names stay readable however long
  options.scales.x.beginAtZero = true;
  options.scales.x.ticks.callback = (value, index, ticks) => formatUsd(value, locale, ticks[ticks.length - 1].value);
  options.plugins.legend = { display: false };
  options.plugins.tooltip = { callbacks: { label: (item) => formatUsd(item.parsed.x, locale) } };
  return new Chart(canvas, {
    type: "bar",
    data: {
      labels: series.labels,
      datasets: [{ label: gettext("Estimated cost (USD)"), data: series.cost,
                   backgroundColor: cssColour("--chart-1", "#0b5cad") }],
    },
    options,
  });
}

if (dataElement && Chart) {
  // json_script wrote it: parse the element's text, never evaluate it as markup.
  const data = JSON.parse(dataElement.textContent);
  const charts = {};
  const days = document.getElementById("chart-days");
  const users = document.getElementById("chart-users");
  if (days) charts.days = drawDays(days, data.days);
  if (users) charts.users = drawUsers(users, data.users);
  // For tests and the console: the drawn charts.
  window.usageCharts = charts;
}
