import assert from "node:assert/strict";
import { test } from "node:test";

import { statusAfterSpeaking, statusAfterTool, statusWhenLive } from "../../static/js/conversation/tool-status.js";

const started = { type: "tool_started", item_id: "fc1", call_id: "c1", name: "recall", text: "Looking…" };
const finished = (status, ok = status === "completed") => ({ type: "tool_finished", item_id: "fc1", call_id: "c1", ok, status });

test("a tool starting says the assistant is working, unless someone is speaking", () => {
  assert.equal(statusAfterTool("listening", started, true), "working");
  assert.equal(statusAfterTool("thinking", started, true), "working");
  assert.equal(statusAfterTool("user-speaking", started, true), "user-speaking");
  assert.equal(statusAfterTool("assistant-speaking", started, true), "assistant-speaking");
  assert.equal(statusAfterTool("reconnecting", started, true), "reconnecting");
});

test("the last tool finishing waits for the answer; a cancelled one goes back to listening", () => {
  assert.equal(statusAfterTool("working", finished("completed"), false), "thinking");
  assert.equal(statusAfterTool("working", finished("completed", false), false), "thinking"); // a failure is answered too
  assert.equal(statusAfterTool("working", finished("cancelled"), false), "listening");
  assert.equal(statusAfterTool("working", finished("interrupted"), false), "listening");
});

test("while another tool still runs, or the status moved on, a tool finishing changes nothing", () => {
  assert.equal(statusAfterTool("working", finished("completed"), true), "working");
  assert.equal(statusAfterTool("user-speaking", finished("cancelled"), false), "user-speaking");
  assert.equal(statusAfterTool("listening", { type: "transcript" }, true), "listening");
});

test("when the assistant's voice stops, a tool still running keeps the status on working", () => {
  assert.equal(statusAfterSpeaking(true), "working");
  assert.equal(statusAfterSpeaking(false), "listening");
});

test("a conversation live again says the assistant is working while a tool it called still runs", () => {
  assert.equal(statusWhenLive("reconnecting", true), "working");
  assert.equal(statusWhenLive("connecting", true), "working");
  assert.equal(statusWhenLive("listening", true), "working");
  assert.equal(statusWhenLive("user-speaking", true), "user-speaking");
});

test("a conversation live again with no tool running is listening", () => {
  assert.equal(statusWhenLive("reconnecting", false), "listening");
  assert.equal(statusWhenLive("connecting", false), "listening");
});
