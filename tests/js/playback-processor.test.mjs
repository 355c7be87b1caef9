import assert from "node:assert/strict";
import { test } from "node:test";

import { frequencyOf, loadProcessor, rms, sine } from "./worklet-harness.mjs";

const PLAYBACK = "../../static/js/audio/playback-processor.js";

/** PCM16 (as the socket delivers it) of `seconds` of a 24 kHz tone. */
function pcm16(seconds, frequency = 440) {
  const tone = sine(frequency, seconds, 24000);
  return Int16Array.from(tone, (s) => Math.round(s * 0x7fff)).buffer;
}

/** Runs the worklet for `seconds` of output at its rate and returns what it played, joined. */
function play(processor, rate, seconds) {
  const quanta = Math.round((seconds * rate) / 128);
  const out = new Float32Array(quanta * 128);
  for (let q = 0; q < quanta; q++) {
    const quantum = new Float32Array(128);
    processor.process([], [[quantum]]);
    out.set(quantum, q * 128);
  }
  return out;
}

const status = (processor) => processor.sent.filter((m) => m.type === "status").at(-1);

for (const rate of [48000, 44100]) {
  test(`a second of 24 kHz reply plays as a second at ${rate} Hz, and every sample is counted as played`, () => {
    const player = loadProcessor(PLAYBACK, rate);
    player.onMessage({ type: "audio", itemId: "a1", pcm: pcm16(1.0) });
    player.onMessage({ type: "end", itemId: "a1" });
    const out = play(player, rate, 1.2);
    assert.ok(Math.abs(frequencyOf(out.subarray(rate * 0.1, rate * 0.9), rate) - 440) < 5);
    assert.ok(Math.abs(rms(out.subarray(rate * 0.1, rate * 0.9)) - 0.5 / Math.SQRT2) < 0.02);
    assert.ok(rms(out.subarray(rate * 1.1)) < 0.01); // then silence
    const last = status(player);
    assert.equal(last.played, 24000);
    assert.equal(last.underruns, 0);
    assert.equal(last.active, false); // finished: nothing playing, nothing expected
  });
}

test("playback waits for the jitter buffer, then starts", () => {
  const player = loadProcessor(PLAYBACK, 48000);
  player.onMessage({ type: "audio", itemId: "a1", pcm: pcm16(0.02) }); // 20 ms: under the 60 ms buffer
  assert.equal(rms(play(player, 48000, 0.1)), 0);
  player.onMessage({ type: "audio", itemId: "a1", pcm: pcm16(0.1) });
  assert.ok(rms(play(player, 48000, 0.05)) > 0.1);
});

test("audio that stops coming before its end is an underrun, and the jitter buffer grows", () => {
  const player = loadProcessor(PLAYBACK, 48000);
  player.onMessage({ type: "audio", itemId: "a1", pcm: pcm16(0.1) });
  play(player, 48000, 0.2);
  const after = status(player);
  assert.equal(after.underruns, 1);
  assert.equal(after.jitterMs, 100); // 60 ms + one 40 ms step
});

test("an interrupt reports how much of the item was heard and throws the rest away", () => {
  const player = loadProcessor(PLAYBACK, 48000);
  player.onMessage({ type: "audio", itemId: "a1", pcm: pcm16(2.0) });
  play(player, 48000, 0.5);
  player.onMessage({ type: "interrupt", id: 7 });
  const cut = player.sent.find((m) => m.type === "interrupted");
  assert.equal(cut.id, 7);
  assert.equal(cut.itemId, "a1");
  assert.ok(Math.abs(cut.playedSamples - 12000) <= 256, `${cut.playedSamples}`); // 0.5 s at 24 kHz
  assert.ok(rms(play(player, 48000, 0.2).subarray(480)) < 0.01); // nothing more comes out (after the fade)
  assert.equal(status(player).buffered, 0);
});

test("the played count follows each item across a boundary", () => {
  const player = loadProcessor(PLAYBACK, 48000);
  player.onMessage({ type: "audio", itemId: "a1", pcm: pcm16(0.5) });
  player.onMessage({ type: "audio", itemId: "a2", pcm: pcm16(0.5) });
  play(player, 48000, 0.75);
  player.onMessage({ type: "interrupt", id: 1 });
  const cut = player.sent.find((m) => m.type === "interrupted");
  assert.equal(cut.itemId, "a2");
  assert.ok(Math.abs(cut.playedSamples - 6000) <= 256, `${cut.playedSamples}`); // 0.25 s of a2
});

test("a reply longer than the ring keeps what fits and counts what it dropped", () => {
  const player = loadProcessor(PLAYBACK, 48000);
  player.onMessage({ type: "audio", itemId: "a1", pcm: pcm16(59.0) });
  player.onMessage({ type: "audio", itemId: "a1", pcm: pcm16(2.0) });
  player.report();
  const s = status(player);
  assert.equal(s.buffered, 24000 * 60);
  assert.equal(s.dropped, 24000);
});
