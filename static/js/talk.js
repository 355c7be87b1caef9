/**
 * Talk page entry point: wires the buttons, the microphone, the player and the socket together.
 */
import { CaptureNode, openMicrophone } from "./audio/capture.js";
import { PlayerNode } from "./audio/player.js";
import { TalkSocket, socketUrl } from "./socket.js";
import { Status } from "./status.js";
import { Transcript } from "./transcript.js";

const root = document.getElementById("talk");
const startButton = document.getElementById("start");
const stopButton = document.getElementById("stop");
const errorBox = document.getElementById("error");
const transcript = new Transcript(document.getElementById("transcript"));

/** Fresh counters for one conversation: batches captured, bytes sent, 24 kHz samples played, and so on. */
const freshStats = () => ({ framesCaptured: 0, bytesSent: 0, framesPlayed: 0, underruns: 0, truncates: 0, messages: {} });

/** Test hook and debugging aid: the page's state and the current conversation's counters, kept current. */
const app = {
  state: "idle",
  conversationId: root.dataset.conversationId || null,
  level: 0,
  lastTruncate: null,
  stats: freshStats(),
};
window.voiceApp = app;

const status = new Status(document.getElementById("status"), (state) => { app.state = state; });

/** Everything that belongs to one live conversation; replaced on each Start. */
let session = null;

/** Returns the plain-language message for a failure to open the microphone. */
function micErrorMessage(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "The microphone is blocked. Allow it with the icon at the left of the address bar (or in the browser's site settings), then press Start again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Connect one, then press Start again.";
    case "NotReadableError":
      return "The microphone is in use by another application. Close it, then press Start again.";
    default:
      return "The microphone could not be opened. Check that this page is served over HTTPS and that a microphone is connected.";
  }
}

/** Shows a plain-language problem in #error, or hides the box when `message` is empty. */
function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

/** Enables Start or Stop, whichever makes sense now. */
function setRunning(running) {
  startButton.disabled = running;
  stopButton.disabled = !running;
}

/** Opens the mic and the audio graph first (so a blocked mic never opens a socket), then connects. */
async function start() {
  setRunning(true);
  showError("");
  status.set("connecting");
  transcript.separate(root.dataset.textNewConversation || "New conversation");
  Object.assign(app.stats, freshStats()); // In place, so a reference held by a test stays live.
  app.lastTruncate = null;
  const s = { socket: null, context: null, capture: null, player: null, ready: false, itemId: null, interrupted: new Set(), closed: false };
  session = s;
  let stream = null;
  try {
    s.context = new AudioContext({ latencyHint: "interactive" }); // Native rate: Firefox refuses a forced 24 kHz with a mic.
    stream = await openMicrophone();
    if (session !== s) return stream.getTracks().forEach((t) => t.stop()); // Stop was pressed meanwhile.
    s.capture = await CaptureNode.create(s.context, root.dataset.captureWorklet, stream);
    s.player = await PlayerNode.create(s.context, root.dataset.playbackWorklet);
    await s.context.resume();
  } catch (error) {
    stream?.getTracks().forEach((t) => t.stop());
    finish(s, "error", stream ? "Audio could not be started in this browser. Try a recent Chrome, Edge, Firefox or Safari." : micErrorMessage(error));
    return;
  }
  if (session !== s) { stream.getTracks().forEach((t) => t.stop()); return; } // Stopped while loading.
  s.capture.onbatch = (pcm, level) => onBatch(s, pcm, level);
  s.player.addEventListener("playback", (event) => onPlayback(s, event.detail));
  const broken = () => finish(s, "error", "Audio processing stopped unexpectedly. Press Start to try again.");
  s.capture.addEventListener("processorerror", broken);
  s.player.addEventListener("processorerror", broken);
  s.socket = connect(s);
}

/** Sends one 40 ms batch as one binary frame once the server said `ready`. */
function onBatch(s, pcm, level) {
  app.stats.framesCaptured++;
  app.level = level;
  if (s.ready && s.socket.sendAudio(pcm)) app.stats.bytesSent += pcm.byteLength;
}

/** Mirrors the worklet's counters and moves the status when the assistant starts or stops being heard. */
function onPlayback(s, detail) {
  app.stats.framesPlayed = detail.played;
  app.stats.underruns = detail.underruns;
  if (session !== s || !s.ready || !detail.changed) return;
  if (detail.active && (status.state === "thinking" || status.state === "listening")) status.set("assistant-speaking");
  else if (!detail.active && status.state === "assistant-speaking") status.set("listening");
}

/** Barge-in: silence the assistant now, then tell the server how much of its item was heard. */
async function bargeIn(s) {
  const { itemId, playedMs } = await s.player.interrupt();
  if (!itemId) return; // Playback had already finished: nothing to truncate.
  s.interrupted.add(itemId); // Frames still in flight for this item must not play.
  s.socket.send({ type: "truncate", item_id: itemId, audio_end_ms: playedMs });
  app.stats.truncates++;
  app.lastTruncate = { itemId, playedMs };
}

/** The conversation the page was opened to continue; only the first Start continues it. */
let continueId = root.dataset.conversationId || null;

/** Opens the socket for session `s` and routes each server message to the page. */
function connect(s) {
  const socket = new TalkSocket(socketUrl(root.dataset.wsPath, continueId));
  continueId = null; // Start after Stop opens a new conversation.
  socket
    .on("message", (msg) => { app.stats.messages[msg.type] = (app.stats.messages[msg.type] || 0) + 1; })
    .on("audio", (buffer) => {
      if (s.itemId && !s.interrupted.has(s.itemId)) s.player.enqueue(s.itemId, buffer);
    })
    .on("ready", (msg) => {
      s.ready = true;
      app.conversationId = msg.conversation_id;
      status.set("listening");
    })
    .on("speech_started", () => {
      status.set("user-speaking");
      bargeIn(s);
    })
    .on("speech_stopped", () => status.set("thinking"))
    .on("user_item", (msg) => {
      if (!s.fatal) showError(""); // A new turn makes an earlier non-fatal problem stale.
      transcript.ensure("user", msg.item_id, "…");
    })
    .on("assistant_item", (msg) => {
      s.itemId = msg.item_id;
      transcript.ensure("assistant", msg.item_id);
    })
    .on("transcript", (msg) => transcript.append(msg.role, msg.item_id, msg.delta))
    .on("transcript_done", (msg) => transcript.finish(msg.role, msg.item_id, msg.text))
    .on("audio_done", (msg) => s.player.end(msg.item_id))
    .on("response_done", () => {
      s.player.end();
      // A response without audio never moves the status to speaking, so return to listening here.
      if (status.state === "thinking" && !s.player.status.active) status.set("listening");
    })
    .on("truncated", (msg) => transcript.markInterrupted(msg.item_id))
    .on("error", (msg) => {
      showError(msg.message || "Something went wrong.");
      if (msg.fatal) { s.fatal = true; status.set("error"); }
    })
    .on("close", ({ code, message }) => {
      if (s.closed) return; // We closed it ourselves with Stop.
      finish(s, code === 1000 ? "idle" : "error", s.fatal ? null : code === 1000 ? "" : message);
    });
  return socket;
}

/** Tears down one session: mic off, playback silenced, socket closed; the transcript stays. */
function finish(s, state, message) {
  if (s.closed) return;
  s.closed = true;
  s.capture?.stop();
  s.socket?.close(1000);
  s.context?.close().catch(() => {});
  if (session === s) {
    session = null;
    setRunning(false);
    status.set(state);
    if (message !== null) showError(message);
  }
}

startButton.addEventListener("click", () => { start(); });
stopButton.addEventListener("click", () => { if (session) finish(session, "idle", ""); });
setRunning(false);
