import assert from "node:assert/strict";
import { test } from "node:test";

import { activeLine, byStart } from "../../static/js/recording/active-line.js";

test("no line is active before the first one starts, or without lines", () => {
  assert.equal(activeLine([], 5), -1);
  assert.equal(activeLine([2, 4], 0), -1);
  assert.equal(activeLine([2, 4], 1.999), -1);
});

test("a line is active from its start until the next one starts", () => {
  const starts = [0, 2.5, 6, 8];
  assert.equal(activeLine(starts, 0), 0);
  assert.equal(activeLine(starts, 2.4), 0);
  assert.equal(activeLine(starts, 2.5), 1);
  assert.equal(activeLine(starts, 5.99), 1);
  assert.equal(activeLine(starts, 6), 2);
  assert.equal(activeLine(starts, 100), 3);
});

test("of lines starting at the same moment, the last one is active", () => {
  assert.equal(activeLine([1, 3, 3, 3, 7], 3), 3);
  assert.equal(activeLine([1, 3, 3, 3, 7], 6), 3);
});

test("a time that is not a number makes no line active", () => {
  assert.equal(activeLine([0, 1], NaN), -1);
  assert.equal(activeLine([0, 1], undefined), -1);
});

test("it agrees with a linear scan on random timelines", () => {
  for (let round = 0; round < 200; round++) {
    const starts = Array.from({ length: round % 12 }, () => Math.floor(Math.random() * 20)).sort((a, b) => a - b);
    const time = Math.random() * 22 - 1;
    let expected = -1;
    starts.forEach((start, index) => { if (start <= time) expected = index; });
    assert.equal(activeLine(starts, time), expected, `${starts} at ${time}`);
  }
});

test("entries are ordered by start, ties in page order, entries without a start dropped", () => {
  const entries = [
    { id: "a", startMs: 5000 }, { id: "b", startMs: 1000 }, { id: "c", startMs: NaN },
    { id: "d", startMs: 5000 }, { id: "e", startMs: 0 },
  ];
  assert.deepEqual(byStart(entries).map((e) => e.id), ["e", "b", "a", "d"]);
});
