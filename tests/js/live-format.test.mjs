import assert from "node:assert/strict";
import { test } from "node:test";

import { clock, formatCost, formatTokens, rowCells } from "../../static/js/staff/live-format.js";

test("durations read like a clock, hours only when there are some", () => {
  assert.equal(clock(0), "0:00");
  assert.equal(clock(7), "0:07");
  assert.equal(clock(754), "12:34");
  assert.equal(clock(3723), "1:02:03");
  assert.equal(clock(-5), "0:00");
  assert.equal(clock(undefined), "0:00");
});

test("a cost shows four places in dollars, and a dash while there is none", () => {
  assert.equal(formatCost("0.012345"), "$0.0123");
  assert.equal(formatCost("2"), "$2.0000");
  assert.equal(formatCost(null), "—");
  assert.equal(formatCost(undefined), "—");
  assert.equal(formatCost("not a number"), "—");
});

test("token counts are whole numbers, never negative or missing", () => {
  assert.equal(formatTokens(1234), "1234");
  assert.equal(formatTokens(null), "0");
  assert.equal(formatTokens(-3), "0");
});

test("a row becomes its cells in column order, the duration counting on since the fetch", () => {
  const row = {
    conversation_id: "c1", username: "<b>ada</b>", started_label: "10:00:00", duration_s: 65, tokens: 321,
    cost: null, worker: "host:12:abc", deployment: "gpt-realtime", end_url: "/staff/live/c1/end/",
  };
  const out = rowCells(row, 5);
  assert.deepEqual(out.cells, ["<b>ada</b>", "10:00:00", "1:10", "321", "—", "host:12:abc", "gpt-realtime"]);
  assert.equal(out.conversationId, "c1");
  assert.equal(out.username, "<b>ada</b>"); // text as it is: the page sets it with textContent
  assert.equal(out.endUrl, "/staff/live/c1/end/");
});
