import assert from "node:assert/strict";
import { test } from "node:test";

import {
  currentItems, emptyTranscript, itemEntry, reduce, separate, transcriptOf,
} from "../../static/js/conversation/transcript-model.js";

const run = (model, ...messages) => messages.reduce(reduce, model);
const texts = (model) => currentItems(model).map((e) => `${e.role}:${e.text}`);

const aTurn = [
  { type: "user_item", item_id: "u1" },
  { type: "transcript", role: "user", item_id: "u1", delta: "Hello" },
  { type: "transcript_done", role: "user", item_id: "u1", text: "Hello there" },
  { type: "assistant_item", item_id: "a1", response_id: "r1" },
  { type: "transcript", role: "assistant", item_id: "a1", delta: "Hi, " },
  { type: "transcript", role: "assistant", item_id: "a1", delta: "how can I help?" },
];

test("a turn builds one bubble per item in order, deltas appended and the final text winning", () => {
  const model = run(emptyTranscript(), ...aTurn);
  assert.deepEqual(texts(model), ["user:Hello there", "assistant:Hi, how can I help?"]);
  assert.equal(currentItems(model)[0].done, true);
});

test("a user bubble shows a placeholder until its transcript comes", () => {
  const model = run(emptyTranscript(), { type: "user_item", item_id: "u1" });
  assert.deepEqual(currentItems(model).map((e) => [e.text, e.pending]), [["…", true]]);
  const next = reduce(model, { type: "transcript", role: "user", item_id: "u1", delta: "Hi" });
  assert.equal(currentItems(next)[0].text, "Hi");
});

test("history after a resume replaces the bubbles without duplicating any", () => {
  const before = run(emptyTranscript(), ...aTurn);
  const history = {
    type: "history",
    items: [
      { item_id: "u1", role: "user", text: "Hello there", interrupted: false, status: "" },
      { item_id: "a1", role: "assistant", text: "Hi, how can I", interrupted: true, status: "" },
      { item_id: "a1", role: "assistant", text: "duplicate", interrupted: false, status: "" },
    ],
  };
  const after = reduce(before, history);
  assert.deepEqual(texts(after), ["user:Hello there", "assistant:Hi, how can I"]);
  assert.equal(currentItems(after)[1].interrupted, true);
  // The same turn told again after the resume updates the bubble instead of adding one.
  const again = run(after, { type: "user_item", item_id: "u1" }, { type: "assistant_item", item_id: "a1" });
  assert.equal(currentItems(again).length, 2);
});

test("tool calls in the history are not drawn as bubbles", () => {
  const model = reduce(emptyTranscript(), { type: "history", items: [
    { item_id: "u1", role: "user", text: "What time is it?", interrupted: false, status: "" },
    { item_id: "fc1", role: "tool", text: "It is 14:05.", interrupted: false, status: "", call_id: "c1", name: "current_time" },
    { item_id: "a1", role: "assistant", text: "It is five past two.", interrupted: false, status: "" },
  ] });
  assert.deepEqual(texts(model), ["user:What time is it?", "assistant:It is five past two."]);
});

test("history keeps the earlier conversations above the divider", () => {
  let model = run(emptyTranscript(), ...aTurn);
  model = separate(model, "New conversation");
  model = run(model, { type: "user_item", item_id: "u2" });
  model = reduce(model, { type: "history", items: [{ item_id: "u2", role: "user", text: "Again", interrupted: false, status: "" }] });
  assert.deepEqual(model.entries.map((e) => e.kind), ["item", "item", "divider", "item"]);
  assert.deepEqual(texts(model), ["user:Again"]);
});

test("a history item that failed or was cut short says so in plain words", () => {
  const model = reduce(emptyTranscript(), {
    type: "history",
    items: [
      { item_id: "a1", role: "assistant", text: "Part", interrupted: false, status: "incomplete" },
      { item_id: "a2", role: "assistant", text: "", interrupted: false, status: "failed" },
    ],
  });
  const [cut, failed] = currentItems(model);
  assert.match(cut.problem, /cut short/);
  assert.match(failed.problem, /failed/);
});

test("a failed or incomplete response puts its message on that assistant bubble", () => {
  let model = run(emptyTranscript(), ...aTurn);
  model = reduce(model, {
    type: "response_done", response_id: "r1", item_id: "a1", status: "incomplete", reason: "max_output_tokens", message: "",
  });
  assert.equal(currentItems(model)[1].problem, "(cut short: the answer reached its length limit)");
  model = reduce(model, { type: "response_done", response_id: "r2", item_id: "a1", status: "failed", reason: "", message: "The service failed." });
  assert.equal(currentItems(model)[1].problem, "The service failed.");
});

test("a completed or cancelled response changes nothing", () => {
  const model = run(emptyTranscript(), ...aTurn);
  for (const status of ["completed", "cancelled"]) {
    assert.equal(reduce(model, { type: "response_done", response_id: "r1", item_id: "a1", status, reason: "", message: "" }), model);
  }
});

test("a response that failed before it had an item becomes a quiet line", () => {
  const model = reduce(emptyTranscript(), { type: "response_done", response_id: "r1", item_id: "", status: "failed", reason: "", message: "" });
  assert.deepEqual(model.entries.map((e) => [e.kind, e.text]), [["note", "(this answer failed)"]]);
});

test("a failed transcription marks the user bubble instead of blanking it", () => {
  const model = run(emptyTranscript(),
    { type: "user_item", item_id: "u1" },
    { type: "transcript_done", role: "user", item_id: "u1", text: "", failed: true });
  const [entry] = currentItems(model);
  assert.equal(entry.transcriptFailed, true);
  assert.equal(entry.pending, false);
  assert.equal(entry.text, "");
});

test("an empty final transcript that did not fail says there is none", () => {
  const model = run(emptyTranscript(), { type: "user_item", item_id: "u1" }, { type: "transcript_done", role: "user", item_id: "u1", text: "" });
  assert.equal(currentItems(model)[0].text, "(no transcript)");
});

test("a note becomes a quiet line, with plain words for known codes", () => {
  let model = reduce(emptyTranscript(), { type: "note", code: "session_renewed", message: "" });
  model = reduce(model, { type: "note", code: "history_trimmed", message: "Older turns were summarised." });
  assert.deepEqual(model.entries.map((e) => [e.kind, e.text]), [["note", "Session renewed"], ["note", "Older turns were summarised."]]);
  assert.notEqual(model.entries[0].key, model.entries[1].key);
});

test("a truncation marks only a known assistant bubble", () => {
  const model = run(emptyTranscript(), ...aTurn);
  assert.equal(currentItems(reduce(model, { type: "truncated", item_id: "a1", audio_end_ms: 900 }))[1].interrupted, true);
  assert.equal(reduce(model, { type: "truncated", item_id: "nope", audio_end_ms: 1 }), model);
});

test("unchanged entries keep their identity, so the page redraws only what changed", () => {
  const model = run(emptyTranscript(), ...aTurn);
  const next = reduce(model, { type: "transcript", role: "assistant", item_id: "a1", delta: "!" });
  assert.equal(next.entries[0], model.entries[0]);
  assert.notEqual(next.entries[1], model.entries[1]);
  assert.equal(reduce(model, { type: "ready" }), model);
});

test("a stored transcript read from the page is the current conversation", () => {
  const model = transcriptOf([itemEntry("user", "u1", { text: "Stored", done: true })]);
  const next = reduce(model, { type: "history", items: [{ item_id: "u1", role: "user", text: "Stored", interrupted: false, status: "" }] });
  assert.deepEqual(texts(next), ["user:Stored"]);
  assert.equal(separate(emptyTranscript(), "x").entries.length, 0);
});

test("a stored user turn that could not be transcribed keeps its quiet marker after history", () => {
  const model = reduce(emptyTranscript(), {
    type: "history", items: [{ item_id: "u1", role: "user", text: "", interrupted: false, status: "transcription_failed" }],
  });
  assert.deepEqual([currentItems(model)[0].transcriptFailed, currentItems(model)[0].text], [true, ""]);
});
