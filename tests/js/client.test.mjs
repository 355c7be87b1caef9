import assert from "node:assert/strict";
import { test } from "node:test";

import { ConversationClient } from "../../static/js/conversation/client.js";

/** A socket double with TalkSocket's surface: tests play the server by calling its methods. */
class FakeSocket {
  constructor(url) {
    this.url = url;
    this.handlers = new Map();
    this.sent = [];
    this.audio = [];
    this.isOpen = false;
    this.closedWith = null;
  }
  on(type, handler) { this.handlers.set(type, handler); return this; }
  send(message) { this.sent.push(message); }
  sendAudio(buffer) { this.audio.push(buffer); return true; }
  close(code) { this.closedWith = code; this.serverClose(code); }
  // Server side:
  accept() { this.isOpen = true; this.handlers.get("open")?.({}); }
  message(msg) { this.handlers.get("message")?.(msg); }
  serverClose(code) { this.isOpen = false; this.handlers.get("close")?.({ code }); }
}

/** Timers that run only when the test says so. */
class FakeTimers {
  constructor() { this.pending = new Map(); this.next = 1; }
  setTimeout(fn, ms) { const id = this.next++; this.pending.set(id, { fn, ms }); return id; }
  clearTimeout(id) { this.pending.delete(id); }
  /** Runs the timer due with `ms`, returning whether one was found. */
  fire(ms) {
    for (const [id, t] of this.pending) {
      if (t.ms === ms) { this.pending.delete(id); t.fn(); return true; }
    }
    return false;
  }
}

function setup(options = {}) {
  const sockets = [];
  const states = [];
  const messages = [];
  const timers = new FakeTimers();
  const client = new ConversationClient({
    path: "/ws/talk/",
    makeSocket: (url) => { const s = new FakeSocket(url); sockets.push(s); return s; },
    makeUrl: (path, id, returning) => (id ? `${path}?conversation=${id}${returning ? "&resume=1" : ""}` : path),
    timers,
    random: () => 0.5, // no jitter: delays are the nominal ones
    onState: (s) => states.push(s),
    onMessage: (m) => messages.push(m.type),
    ...options,
  });
  return { client, sockets, states, messages, timers };
}

const ready = (id = "c1", extra = {}) => ({ type: "ready", conversation_id: id, ...extra });

test("it is live only after ready, and sends audio only then", () => {
  const { client, sockets, states } = setup();
  client.start();
  sockets[0].accept();
  assert.equal(client.sendAudio(new ArrayBuffer(4)), false);
  sockets[0].message(ready());
  assert.equal(client.sendAudio(new ArrayBuffer(4)), true);
  assert.deepEqual(states.map((s) => s.state), ["connecting", "live"]);
});

test("a dropped socket reconnects to the same conversation after 500 ms, then 1 s, and resumes", () => {
  const { client, sockets, states, timers } = setup();
  client.start();
  sockets[0].accept();
  sockets[0].message(ready("c1"));
  sockets[0].serverClose(1006);
  assert.deepEqual(states.at(-1), { state: "reconnecting", reason: "socket", attempt: 1, delayMs: 500, code: 1006 });
  assert.equal(client.sendAudio(new ArrayBuffer(4)), false); // frames while reconnecting are dropped
  assert.ok(timers.fire(500));
  assert.equal(sockets[1].url, "/ws/talk/?conversation=c1&resume=1"); // a reconnect, not a continue
  sockets[1].serverClose(1006); // the server is still down
  assert.deepEqual(states.at(-1), { state: "reconnecting", reason: "unreachable", attempt: 2, delayMs: 1000, code: 1006 });
  assert.ok(timers.fire(1000));
  sockets[2].accept();
  sockets[2].message({ type: "history", items: [] });
  sockets[2].message(ready("c1", { resumed: true }));
  assert.deepEqual(states.at(-1), { state: "live", resumed: true, continued: false });
  assert.equal(client.attempt, 0); // the next drop starts the schedule again
});

test("it gives up after the last attempt and says whether the server was ever reached", () => {
  const { client, sockets, states, timers } = setup();
  client.start();
  for (const delay of [500, 1000, 2000, 4000, 8000, 8000]) {
    sockets.at(-1).serverClose(1006);
    assert.equal(states.at(-1).delayMs, delay);
    assert.ok(timers.fire(delay));
  }
  sockets.at(-1).serverClose(1006);
  assert.deepEqual(
    { state: states.at(-1).state, exhausted: states.at(-1).exhausted, reachable: states.at(-1).reachable },
    { state: "failed", exhausted: true, reachable: false },
  );
  assert.equal(sockets.length, 7);
});

for (const code of [1000, 4000, 4001, 4004, 4400, 4401, 4404, 4429, 4502, 4503]) {
  test(`close code ${code} is never retried`, () => {
    const { client, sockets, states, timers } = setup();
    client.start();
    sockets[0].accept();
    sockets[0].message(ready());
    sockets[0].serverClose(code);
    assert.equal(states.at(-1).state, code === 1000 ? "ended" : "failed");
    assert.equal(timers.pending.size, 0);
    assert.equal(sockets.length, 1);
  });
}

test("the server replacing its upstream session pauses audio until the next ready", () => {
  const { client, sockets, states, messages } = setup();
  client.start();
  sockets[0].accept();
  sockets[0].message(ready());
  sockets[0].message({ type: "reconnecting", attempt: 1, delay_ms: 250 });
  assert.deepEqual(states.at(-1), { state: "reconnecting", reason: "upstream", attempt: 1, delayMs: 250 });
  assert.equal(client.sendAudio(new ArrayBuffer(4)), false);
  sockets[0].message(ready());
  assert.equal(client.sendAudio(new ArrayBuffer(4)), true);
  assert.deepEqual(messages, ["ready", "reconnecting", "ready"]);
});

test("Stop closes with 1000 and cancels a pending reconnect", () => {
  const { client, sockets, states, timers } = setup();
  client.start();
  sockets[0].accept();
  sockets[0].message(ready());
  sockets[0].serverClose(1011);
  client.stop();
  assert.equal(states.at(-1).state, "ended");
  assert.equal(timers.pending.size, 0);
  assert.equal(timers.fire(500), false);
  assert.equal(sockets.length, 1);
});

test("the drop hook is treated as a lost connection, not a refusal", () => {
  const { client, sockets, states } = setup();
  client.start();
  sockets[0].accept();
  sockets[0].message(ready());
  client.dropSocket();
  assert.equal(sockets[0].closedWith, 4999);
  assert.equal(states.at(-1).state, "reconnecting");
  assert.equal(states.at(-1).code, 1006);
});

test("a socket that never opens is dropped after the connect timeout and retried", () => {
  const { client, sockets, states, timers } = setup({ connectTimeoutMs: 10_000 });
  client.start();
  assert.ok(timers.fire(10_000));
  assert.equal(sockets[0].closedWith, 1000);
  assert.deepEqual([states.at(-1).state, states.at(-1).reason], ["reconnecting", "unreachable"]);
});

test("events of a replaced socket are ignored", () => {
  const { client, sockets, messages, timers } = setup();
  client.start();
  sockets[0].accept();
  sockets[0].message(ready());
  sockets[0].serverClose(1006);
  timers.fire(500);
  sockets[0].message({ type: "transcript", delta: "late" });
  assert.deepEqual(messages, ["ready"]);
});

test("continuing a conversation opens it plainly; only the reconnects after a drop say they are returning", () => {
  const { client, sockets, timers } = setup({ conversationId: "c9" });
  client.start();
  assert.equal(sockets[0].url, "/ws/talk/?conversation=c9");
  sockets[0].accept();
  sockets[0].message(ready("c9"));
  sockets[0].serverClose(1012);
  assert.ok(timers.fire(500));
  assert.equal(sockets[1].url, "/ws/talk/?conversation=c9&resume=1");
  sockets[1].accept();
  sockets[1].message(ready("c9"));
  client.stop();
});
