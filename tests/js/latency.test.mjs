import assert from "node:assert/strict";
import { test } from "node:test";

import { outputLatencyMs, outputLatencyReadable } from "../../static/js/audio/latency.js";

const CHROMIUM = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
const FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0";
const SAFARI = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15";

/** A context whose `outputLatency` getter counts its reads. */
function contextReading(seconds) {
  const context = { reads: 0 };
  Object.defineProperty(context, "outputLatency", { get() { context.reads += 1; return seconds; } });
  return context;
}

test("output latency is read in Chromium and Safari, in milliseconds", () => {
  for (const agent of [CHROMIUM, SAFARI]) {
    const context = contextReading(0.085);
    assert.equal(outputLatencyReadable(agent), true);
    assert.equal(Math.round(outputLatencyMs(context, agent)), 85);
    assert.equal(context.reads, 1);
  }
});

test("Firefox's output latency is never read, since reading it can freeze the page", () => {
  const context = contextReading(0.085);
  assert.equal(outputLatencyReadable(FIREFOX), false);
  assert.equal(outputLatencyMs(context, FIREFOX), 0);
  assert.equal(context.reads, 0);
});

test("a browser without outputLatency counts no latency", () => {
  assert.equal(outputLatencyMs({}, CHROMIUM), 0);
  assert.equal(outputLatencyMs({ outputLatency: undefined }, undefined), 0);
});
