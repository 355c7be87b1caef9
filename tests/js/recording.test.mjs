import assert from "node:assert/strict";
import { test } from "node:test";

import { recordingAfter } from "../../static/js/conversation/recording.js";

test("ready says whether the conversation is recorded", () => {
  assert.equal(recordingAfter(false, { type: "ready", recording: true }), true);
  assert.equal(recordingAfter(true, { type: "ready", recording: false }), false);
});

test("a ready without the flag comes from a server that does not record", () => {
  assert.equal(recordingAfter(true, { type: "ready" }), false);
  assert.equal(recordingAfter(true, { type: "ready", recording: "yes" }), false);
});

test("settings_applied turns it on or off, and changes nothing without the flag", () => {
  assert.equal(recordingAfter(true, { type: "settings_applied", recording: false }), false);
  assert.equal(recordingAfter(false, { type: "settings_applied", recording: true }), true);
  assert.equal(recordingAfter(true, { type: "settings_applied", settings: {} }), true);
});

test("other messages leave it as it was", () => {
  for (const msg of [{ type: "user_item", recording: false }, { type: "reconnecting" }, { type: "error", fatal: true }, null]) {
    assert.equal(recordingAfter(true, msg), true);
    assert.equal(recordingAfter(false, msg), false);
  }
});
