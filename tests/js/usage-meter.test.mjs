import assert from "node:assert/strict";
import { test } from "node:test";

import { isHigh, meterRows } from "../../static/js/conversation/usage-meter.js";

const usage = (limits, today = { audio_minutes: 3.25, cost_usd: "0.012300" }, month = { cost_usd: "1.500000" }) => ({
  type: "usage", today, month, limits, resets_at: { day: "2026-11-26T00:00:00Z", month: "2026-12-01T00:00:00Z" },
});

test("each limited dimension gets its share and words; unlimited ones say so and get no bar", () => {
  const rows = meterRows(usage({ audio_minutes_per_day: 30, cost_per_day_usd: null, cost_per_month_usd: "2.000000" }));
  assert.deepEqual(rows.map((r) => r.dimension), ["audio_per_day", "cost_per_day", "cost_per_month"]);
  assert.equal(rows[0].text, "Audio today: 3.3 min of 30.0 min");
  assert.equal(rows[0].share, 3.25 / 30);
  assert.equal(rows[1].text, "Cost today: $0.0123 (no limit)");
  assert.equal(rows[1].share, null);
  assert.equal(rows[2].text, "Cost this month: $1.50 of $2.00");
  assert.equal(rows[2].share, 0.75);
});

test("a share is capped at a full bar and marked high from 80%", () => {
  const rows = meterRows(usage({ audio_minutes_per_day: 3, cost_per_day_usd: "0.015000", cost_per_month_usd: null }));
  assert.equal(rows[0].share, 1);
  assert.ok(isHigh(rows[0]) && isHigh(rows[1]) && !isHigh(rows[2]));
});

test("nothing used yet reads as zero, and a message without figures draws nothing", () => {
  const rows = meterRows(usage({ audio_minutes_per_day: null, cost_per_day_usd: null, cost_per_month_usd: null },
    { audio_minutes: 0, cost_usd: "0.000000" }, { cost_usd: "0.000000" }));
  assert.equal(rows[0].text, "Audio today: 0.0 min (no limit)");
  assert.equal(rows[1].text, "Cost today: $0.0000 (no limit)");
  assert.deepEqual(meterRows(null), []);
  assert.deepEqual(meterRows({ type: "usage" }), []);
});

test("figures follow the page's locale", () => {
  const rows = meterRows(usage({ audio_minutes_per_day: 30, cost_per_day_usd: "2.000000", cost_per_month_usd: null }), "de");
  assert.equal(rows[0].text, "Audio today: 3,3 min of 30,0 min");
  assert.equal(rows[1].text, "Cost today: $0,0123 of $2,00");
});
