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
const { MAX_BUFFERED_AUDIO_BYTES, TalkSocket, closeMessage, socketUrl } = await import("../../static/js/socket.js");

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
  assert.equal(socketUrl("/ws/talk/"), "wss://talk.example/ws/talk/");
  assert.equal(socketUrl("/ws/talk/", "c1"), "wss://talk.example/ws/talk/?conversation=c1");
  assert.equal(socketUrl("/ws/talk/", "c1", true), "wss://talk.example/ws/talk/?conversation=c1&resume=1");
  assert.equal(socketUrl("/ws/talk/", null, true), "wss://talk.example/ws/talk/");
});
