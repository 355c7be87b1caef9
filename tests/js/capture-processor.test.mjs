import assert from "node:assert/strict";
import { test } from "node:test";

import { feed, frequencyOf, loadProcessor, rms, sine } from "./worklet-harness.mjs";

const CAPTURE = "../../static/js/audio/capture-processor.js";

/** The 24 kHz PCM16 samples the capture worklet posted, joined. */
function posted(processor) {
  const batches = processor.sent.map((m) => new Int16Array(m.pcm));
  const out = new Int16Array(batches.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of batches) { out.set(b, at); at += b.length; }
  return out;
}

for (const rate of [48000, 44100, 16000]) {
  test(`a second of microphone at ${rate} Hz becomes a second of 24 kHz PCM16 in 40 ms batches`, async () => {
    const capture = loadProcessor(CAPTURE, rate);
    feed(capture, sine(440, 1.0, rate));
    const pcm = posted(capture);
    assert.ok(capture.sent.every((m) => m.pcm.byteLength === 1920)); // 960 samples = 40 ms each
    // Only whole 128-sample quanta of the second were fed, and the last partial batch is still held.
    assert.ok(Math.abs(pcm.length - 24000) <= 960, `${pcm.length} samples`);
    assert.ok(Math.abs(frequencyOf(pcm, 24000) - 440) < 5, `${frequencyOf(pcm, 24000)} Hz`);
    assert.ok(Math.abs(rms(pcm.subarray(2400), 0x8000) - 0.5 / Math.SQRT2) < 0.02); // (after the filter settles)
  });
}

test("each batch carries the level of its own 40 ms, for the meter", async () => {
  const capture = loadProcessor(CAPTURE, 48000);
  feed(capture, new Float32Array(48000 * 0.2)); // silence first
  feed(capture, sine(440, 0.4, 48000, 0.8));
  const levels = capture.sent.map((m) => m.level);
  assert.equal(levels[0], 0);
  assert.ok(Math.abs(levels.at(-1) - 0.8 / Math.SQRT2) < 0.03, `${levels.at(-1)}`);
});

test("a tone above 12 kHz is damped before it can fold into the speech band", async () => {
  const capture = loadProcessor(CAPTURE, 48000);
  feed(capture, sine(15000, 1.0, 48000, 0.5));
  const pcm = posted(capture);
  // Decimated without the low-pass, a 15 kHz tone comes out as a 9 kHz alias at nearly full level; the
  // 2nd-order filter (cut-off 10.5 kHz) leaves under a third, ample for speech, which has little energy there.
  const ratio = rms(pcm.subarray(2400), 0x8000) / (0.5 / Math.SQRT2);
  assert.ok(ratio < 1 / 3, `${ratio}`);
});

test("samples past full scale are clipped, never wrapped around", async () => {
  const capture = loadProcessor(CAPTURE, 24000);
  feed(capture, new Float32Array(960 * 2).fill(1.7));
  feed(capture, new Float32Array(960 * 2).fill(-1.7));
  const pcm = posted(capture);
  assert.equal(Math.max(...pcm), 0x7fff);
  assert.equal(Math.min(...pcm), -0x8000);
});
