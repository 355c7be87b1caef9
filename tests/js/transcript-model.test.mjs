import assert from "node:assert/strict";
import { test } from "node:test";

import {
  currentItems, emptyTranscript, itemEntry, reduce, separate, toolsRunning, transcriptOf,
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

test("tool calls in the history are finished tool lines in their place", () => {
  const model = reduce(emptyTranscript(), { type: "history", items: [
    { item_id: "u1", role: "user", text: "What time is it?", interrupted: false, status: "" },
    { item_id: "fc1", role: "tool", text: "It is 14:05.", interrupted: false, status: "", call_id: "c1", name: "current_time" },
    { item_id: "fc2", role: "tool", text: "The tool broke.", interrupted: false, status: "failed", call_id: "c2", name: "lookup" },
    { item_id: "fc3", role: "tool", text: "Cancelled.", interrupted: false, status: "cancelled", call_id: "c3", name: "recall" },
    { item_id: "fc4", role: "tool", text: "Interrupted: the conversation ended while this ran.", interrupted: false,
      status: "interrupted", call_id: "c4", name: "recall" },
    { item_id: "a1", role: "assistant", text: "It is five past two.", interrupted: false, status: "" },
  ] });
  assert.deepEqual(texts(model), [
    "user:What time is it?", "tool:It is 14:05.", "tool:The tool broke.",
    "tool:Cancelled: you went on before it finished.", "tool:Interrupted: the conversation stopped while it ran.",
    "assistant:It is five past two.",
  ]);
  assert.deepEqual(currentItems(model).filter((e) => e.role === "tool").map((e) => [e.toolState, e.name, e.done]), [
    ["completed", "current_time", true], ["failed", "lookup", true], ["cancelled", "recall", true],
    ["interrupted", "recall", true],
  ]);
  assert.equal(toolsRunning(model), false);
});

test("a tool still running when the history was taken stays running until its tool_finished", () => {
  const history = { type: "history", items: [
    { item_id: "u1", role: "user", text: "Remember the boat?", interrupted: false, status: "" },
    { item_id: "fc1", role: "tool", text: "", interrupted: false, status: "", call_id: "c1", name: "recall" },
  ] };
  const model = reduce(emptyTranscript(), history);
  assert.deepEqual(currentItems(model).map((e) => [e.role, e.toolState ?? "", e.text]),
    [["user", "", "Remember the boat?"], ["tool", "running", "Working on it…"]]);
  assert.equal(toolsRunning(model), true);
  const done = reduce(model, { type: "tool_finished", item_id: "fc1", call_id: "c1", name: "recall", ok: true,
    status: "completed", summary: "Found 1 earlier conversation mentioning “boat”." });
  assert.deepEqual(texts(done), ["user:Remember the boat?", "tool:Found 1 earlier conversation mentioning “boat”."]);
  assert.equal(toolsRunning(done), false);
});

const aLookup = [
  { type: "user_item", item_id: "u1" },
  { type: "transcript_done", role: "user", item_id: "u1", text: "What did I tell you about my boat?" },
  { type: "response_done", response_id: "r1", status: "completed" },
  { type: "tool_started", item_id: "fc1", call_id: "c1", name: "recall", text: "Looking through your past conversations…" },
];

test("tool_started adds a running tool line after what was said, in the server's order", () => {
  const model = run(emptyTranscript(), ...aLookup);
  assert.deepEqual(texts(model), ["user:What did I tell you about my boat?", "tool:Looking through your past conversations…"]);
  const [, line] = currentItems(model);
  assert.deepEqual([line.toolState, line.name, line.callId, line.done], ["running", "recall", "c1", false]);
  assert.equal(toolsRunning(model), true);
  // A working text the server left out still says something.
  const bare = reduce(emptyTranscript(), { type: "tool_started", item_id: "fc9", call_id: "c9", name: "x" });
  assert.deepEqual(texts(bare), ["tool:Working on it…"]);
});

test("tool_finished shows what the tool found, then the reply comes below it", () => {
  const model = run(emptyTranscript(), ...aLookup,
    { type: "tool_finished", item_id: "fc1", call_id: "c1", name: "recall", ok: true, status: "completed",
      summary: "Found 1 earlier conversation mentioning “boat”." },
    { type: "assistant_item", item_id: "a1", response_id: "r2" },
    { type: "transcript_done", role: "assistant", item_id: "a1", text: "On 2026-11-20 you said: my boat is called Seabird." });
  assert.deepEqual(texts(model), [
    "user:What did I tell you about my boat?", "tool:Found 1 earlier conversation mentioning “boat”.",
    "assistant:On 2026-11-20 you said: my boat is called Seabird.",
  ]);
  assert.equal(currentItems(model)[1].toolState, "completed");
  assert.equal(toolsRunning(model), false);
});

test("a tool that failed, was cancelled or was interrupted says so in the page's words", () => {
  const finish = (fields) => run(emptyTranscript(), ...aLookup, { type: "tool_finished", item_id: "fc1", call_id: "c1",
    name: "recall", ...fields });
  const line = (model) => currentItems(model)[1];
  const failed = line(finish({ ok: false, status: "completed", summary: "The tool recall failed." }));
  assert.deepEqual([failed.toolState, failed.text], ["failed", "The tool recall failed."]);
  assert.equal(line(finish({ ok: false, status: "completed", summary: "" })).text, "The tool did not work.");
  const cancelled = line(finish({ ok: false, status: "cancelled", summary: "Cancelled." }));
  assert.deepEqual([cancelled.toolState, cancelled.text], ["cancelled", "Cancelled: you went on before it finished."]);
  const interrupted = line(finish({ ok: false, status: "interrupted", summary: "Interrupted." }));
  assert.deepEqual([interrupted.toolState, interrupted.text],
    ["interrupted", "Interrupted: the conversation stopped while it ran."]);
  // A status the page does not know is not taken for success.
  assert.equal(line(finish({ ok: false, status: "exploded", summary: "?" })).toolState, "failed");
});

test("tool messages without an item id, or naming a bubble, change nothing", () => {
  const model = run(emptyTranscript(), ...aTurn);
  assert.equal(reduce(model, { type: "tool_started", call_id: "c1", name: "recall", text: "…" }), model);
  assert.equal(reduce(model, { type: "tool_finished", call_id: "c1", ok: true, status: "completed" }), model);
  const same = reduce(model, { type: "tool_finished", item_id: "u1", ok: true, status: "completed", summary: "x" });
  assert.deepEqual(texts(same), texts(model));
});

test("a finished tool line is not set running again by a late tool_started", () => {
  const done = run(emptyTranscript(), ...aLookup,
    { type: "tool_finished", item_id: "fc1", call_id: "c1", name: "recall", ok: true, status: "completed", summary: "Found it." });
  const again = reduce(done, aLookup[3]);
  assert.equal(currentItems(again)[1].text, "Found it.");
  assert.equal(toolsRunning(again), false);
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
