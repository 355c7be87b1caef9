import assert from "node:assert/strict";
import { test } from "node:test";

import {
  MAX_ATTEMPTS, backoffDelay, closeOutcome, nextDelay, nominalDelay, shouldRetry,
} from "../../static/js/conversation/retry.js";

test("only 1001, 1006, 1011 and 1012 are retried", () => {
  for (const code of [1001, 1006, 1011, 1012]) assert.equal(shouldRetry(code), true, code);
  for (const code of [1000, 4000, 4001, 4004, 4400, 4401, 4404, 4410, 4430, 4429, 4502, 4503, 1008, 4999]) {
    assert.equal(shouldRetry(code), false, code);
  }
});

test("each close code leads to the documented outcome", () => {
  assert.equal(closeOutcome(1000), "ended");
  assert.equal(closeOutcome(4001), "login");
  assert.equal(closeOutcome(4000), "replaced");
  for (const code of [4004, 4400, 4401, 4404, 4410, 4430]) assert.equal(closeOutcome(code), "fatal");
  for (const code of [4429, 4502, 4999]) assert.equal(closeOutcome(code), "offer-start");
  assert.equal(closeOutcome(4503), "busy"); // the deployment is full or cooling down: try again in N s
});

test("1008 (the page sent faster than the server allows) is final: no reconnect, no continuing", () => {
  assert.equal(closeOutcome(1008), "refused");
  assert.equal(shouldRetry(1008), false);
});

test("the nominal delay doubles from 500 ms and stops at 8 s", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(nominalDelay), [500, 1000, 2000, 4000, 8000, 8000, 8000]);
});

test("jitter stays within a quarter of the nominal delay either way", () => {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const nominal = nominalDelay(attempt);
    assert.equal(backoffDelay(attempt, () => 0), nominal * 0.75);
    assert.equal(backoffDelay(attempt, () => 0.5), nominal);
    assert.ok(backoffDelay(attempt, () => 0.999999) <= nominal * 1.25);
  }
});

test("jittered delays differ between pages so a restart is not met by a stampede", () => {
  let seed = 1;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const delays = new Set(Array.from({ length: 20 }, () => backoffDelay(3, random)));
  assert.ok(delays.size > 10);
});

test("all tries fit in about 20 to 30 seconds, then there are no more", () => {
  const total = (random) => Array.from({ length: MAX_ATTEMPTS }, (_, i) => nextDelay(i + 1, random)).reduce((a, b) => a + b, 0);
  assert.ok(total(() => 0) >= 15_000, total(() => 0));
  assert.ok(total(() => 0.999999) <= 30_000, total(() => 0.999999));
  assert.equal(nextDelay(MAX_ATTEMPTS + 1), null);
});
