import assert from "node:assert/strict";
import { test } from "node:test";

import { audioSupport, browserAudioFeatures } from "../../static/js/conversation/capability.js";

test("an insecure page is told it needs https or localhost", () => {
  const result = audioSupport({ secureContext: false, audioWorklet: false, getUserMedia: false });
  assert.equal(result.ok, false);
  assert.equal(result.reason, "insecure");
  assert.match(result.message, /https/);
  assert.match(result.message, /localhost/);
});

test("a secure page in a browser without AudioWorklet or getUserMedia is told to change browser", () => {
  for (const features of [
    { secureContext: true, audioWorklet: false, getUserMedia: true },
    { secureContext: true, audioWorklet: true, getUserMedia: false },
  ]) {
    const result = audioSupport(features);
    assert.equal(result.reason, "unsupported");
    assert.match(result.message, /cannot record audio/);
  }
});

test("a secure page with both can record", () => {
  assert.deepEqual(audioSupport({ secureContext: true, audioWorklet: true, getUserMedia: true }).ok, true);
});

test("the features are read from a window-like object", () => {
  const win = { isSecureContext: true, AudioWorkletNode: class {}, navigator: { mediaDevices: { getUserMedia() {} } } };
  assert.deepEqual(browserAudioFeatures(win), { secureContext: true, audioWorklet: true, getUserMedia: true });
  assert.deepEqual(browserAudioFeatures({}), { secureContext: false, audioWorklet: false, getUserMedia: false });
});
