import assert from "node:assert/strict";
import { test } from "node:test";

/** The browser's WebSocket, as far as TalkSocket uses it: tests set how much is still waiting to go out. */
class FakeWebSocket {
  static OPEN = 1;
  constructor(url) { this.url = url; this.readyState = FakeWebSocket.OPEN; this.bufferedAmount = 0; this.sent = []; }
  send(data) { this.sent.push(data); }
  close() { this.readyState = 3; }
}
globalThis.WebSocket = FakeWebSocket;

globalThis.window = { location: { href: "https://talk.example/talk/" } };
const { MAX_BUFFERED_AUDIO_BYTES, TalkSocket, browserTimeZone, closeMessage, socketUrl } = await import("../../static/js/socket.js");

test("audio frames go out while little is waiting and are dropped while the socket is backed up", () => {
  const socket = new TalkSocket("ws://localhost/ws/talk/");
  const frame = new ArrayBuffer(1920);
  assert.equal(socket.sendAudio(frame), true);
  socket.ws.bufferedAmount = MAX_BUFFERED_AUDIO_BYTES + 1;
  assert.equal(socket.sendAudio(frame), false);
  socket.ws.bufferedAmount = 0;
  assert.equal(socket.sendAudio(frame), true);
  assert.equal(socket.ws.sent.length, 2);
});

test("the backlog the page may build up stays well inside the server's audio burst of 10 s", () => {
  assert.ok(MAX_BUFFERED_AUDIO_BYTES / 48 <= 2_000);
});

test("a 1008 close says the conversation was ended for sending too much, and where it is", () => {
  assert.match(closeMessage(1008), /sent far more/);
  assert.match(closeMessage(1008), /history/);
});

test("a socket URL continues the conversation asked for, and marks only a page's own reconnect as returning", () => {
  assert.equal(socketUrl("/ws/talk/", null, false, ""), "wss://talk.example/ws/talk/");
  assert.equal(socketUrl("/ws/talk/", "c1", false, ""), "wss://talk.example/ws/talk/?conversation=c1");
  assert.equal(socketUrl("/ws/talk/", "c1", true, ""), "wss://talk.example/ws/talk/?conversation=c1&resume=1");
  assert.equal(socketUrl("/ws/talk/", null, true, ""), "wss://talk.example/ws/talk/");
});

test("a socket URL carries the browser's time zone, encoded, for the tools that answer in it", () => {
  assert.equal(socketUrl("/ws/talk/", "c1", false, "America/Argentina/Buenos_Aires"),
    "wss://talk.example/ws/talk/?conversation=c1&tz=America%2FArgentina%2FBuenos_Aires");
  const url = new URL(socketUrl("/ws/talk/"));
  assert.equal(url.searchParams.get("tz"), Intl.DateTimeFormat().resolvedOptions().timeZone);
  assert.equal(browserTimeZone(), Intl.DateTimeFormat().resolvedOptions().timeZone);
});

test("a browser that cannot tell its time zone sends none", () => {
  const saved = Intl.DateTimeFormat;
  Intl.DateTimeFormat = () => { throw new RangeError("no time zones here"); };
  try {
    assert.equal(browserTimeZone(), "");
    assert.equal(socketUrl("/ws/talk/", "c1"), "wss://talk.example/ws/talk/?conversation=c1");
  } finally {
    Intl.DateTimeFormat = saved;
  }
});
