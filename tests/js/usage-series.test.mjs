import assert from "node:assert/strict";
import { test } from "node:test";

import {
  daySeries, formatMinutes, formatTokens, formatUsd, toNumber, userSeries,
} from "../../static/js/usage/series.js";

test("costs sent as decimal strings become numbers, and anything unreadable is zero", () => {
  assert.equal(toNumber("0.201280"), 0.20128);
  assert.equal(toNumber(42), 42);
  assert.equal(toNumber(""), 0);
  assert.equal(toNumber(null), 0);
  assert.equal(toNumber("abc"), 0);
});

test("the day series keeps every day in order, quiet days as zeros", () => {
  const series = daySeries([
    { day: "2026-03-01", input: 100, cached: 20, output: 300, cost: "0.1" },
    { day: "2026-03-02", input: 0, cached: 0, output: 0, cost: "0.000000" },
    { day: "2026-03-03", input: 5, cached: 1, output: 7, cost: "0.2" },
  ]);
  assert.deepEqual(series.labels, ["2026-03-01", "2026-03-02", "2026-03-03"]);
  assert.deepEqual(series.input, [100, 0, 5]);
  assert.deepEqual(series.cached, [20, 0, 1]);
  assert.deepEqual(series.output, [300, 0, 7]);
});

test("no days or users make empty series, not errors", () => {
  assert.deepEqual(daySeries(undefined), { labels: [], input: [], cached: [], output: [] });
  assert.deepEqual(userSeries(null), { labels: [], cost: [] });
});

test("the user series has names and costs in dollars", () => {
  const series = userSeries([{ name: "ada", cost: "1.500000" }, { name: "<b>bob</b>", cost: "0.010000" }]);
  assert.deepEqual(series, { labels: ["ada", "<b>bob</b>"], cost: [1.5, 0.01] });
});

test("dollars show four places under a dollar and cents from a dollar up", () => {
  assert.equal(formatUsd("0.000049"), "$0.0000");
  assert.equal(formatUsd("0.263392"), "$0.2634");
  assert.equal(formatUsd("12.345678"), "$12.35");
  assert.equal(formatUsd(1234.5), "$1,234.50");
  assert.equal(formatUsd("12.345678", "de"), "$12,35");
});

test("an axis writes every tick with the places of its largest value", () => {
  assert.equal(formatUsd(0.2, "en", 1.4), "$0.20");
  assert.equal(formatUsd(0, "en", 1.4), "$0.00");
  assert.equal(formatUsd(0.02, "en", 0.05), "$0.0200");
});

test("minutes are milliseconds over 60,000 to a hundredth, rounded half up", () => {
  assert.equal(formatMinutes(90_000), "1.50");
  assert.equal(formatMinutes(0), "0.00");
  assert.equal(formatMinutes(300), "0.01");
  assert.equal(formatMinutes(299), "0.00");
  assert.equal(formatMinutes(90_000, "de"), "1,50");
});

test("tokens are whole numbers grouped by the locale", () => {
  assert.equal(formatTokens(12345), "12,345");
  assert.equal(formatTokens("12345", "de"), "12.345");
});
