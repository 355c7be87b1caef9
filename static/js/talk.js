/**
 * Talk page entry point: wires the buttons, the microphone, the player and the socket together.
 */
import { MicrophoneChooser, isMicBlocked, micErrorMessage } from "./devices.js";
import { gettext } from "./i18n.js";
import { LevelMeter } from "./meter.js";
import { PushToTalk } from "./ptt.js";
import { SettingsPanel } from "./settings-panel.js";
import { audioSupport, browserAudioFeatures } from "./conversation/capability.js";
import { ConversationClient } from "./conversation/client.js";
import { gateDelay, limitRefusal, outcomeAfterClose, refusalText, startGate } from "./conversation/limit-refusal.js";
import { recordingAfter } from "./conversation/recording.js";
import { statusAfterSpeaking, statusAfterTool, statusWhenLive } from "./conversation/tool-status.js";
import { isHigh, meterRows } from "./conversation/usage-meter.js";
import { Status } from "./status.js";
import { Transcript } from "./transcript.js";

const root = document.getElementById("talk");
const startButton = document.getElementById("start");
const stopButton = document.getElementById("stop");
const muteButton = document.getElementById("mute");
const pttButton = document.getElementById("ptt");
const errorBox = document.getElementById("error");
const noticeBox = document.getElementById("notice");
const recordingIndicator = document.getElementById("recording-indicator");
const speaking = document.getElementById("speaking");
const assistantVoice = document.getElementById("assistant-voice");
const textForm = document.getElementById("text-form");
const textInput = document.getElementById("text-input");
const settingsForm = document.getElementById("settings-form");
const usageMeter = document.getElementById("usage-meter");
const transcript = new Transcript(document.getElementById("transcript"));
const meter = new LevelMeter(document.getElementById("level"));

/** Fresh counters for one conversation: batches captured, bytes sent, 24 kHz samples played, and so on. */
const freshStats = () => ({ framesCaptured: 0, bytesSent: 0, framesPlayed: 0, underruns: 0, jitterMs: 0, truncates: 0, messages: {} });

/** Test hook and debugging aid: the page's state and the current conversation's counters, kept current. */
const app = {
  state: "idle",
  conversationId: root.dataset.conversationId || null,
  level: 0,
  lastTruncate: null,
  stats: freshStats(),
  /** Effective settings ({turn_detection, voice, language}): the saved ones until `ready` says otherwise. */
  settings: savedSettings(),
  muted: false,
  pttHeld: false,
  /** Whether the server records the live conversation (from `ready` and `settings_applied`). */
  recording: false,
  /** Test hook: drops the live socket as a network failure would; the page then resumes the conversation. */
  dropSocket: () => session?.client?.dropSocket(),
  /** The microphone in use, as the browser applied it ({deviceId, echoCancellation, ...}; {} when none). */
  microphoneSettings: () => session?.capture?.trackSettings ?? {},
  /** The current conversation's bubbles as {itemId, role, text}, and tool lines with role "tool" (plus name, state). */
  transcriptItems: () => transcript.items(),
  /** The last limit refusal ({limit, message, resetsAt}) and until when Start waits for it (or null). */
  limit: null,
  startBlockedUntil: null,
};
window.voiceApp = app;

/** Every state the status line went through, newest last (capped): a test and debugging aid. */
app.states = [];
const status = new Status(document.getElementById("status"), (state) => {
  app.state = state;
  if (app.states.at(-1) !== state) app.states.push(state);
  if (app.states.length > 200) app.states.shift();
});

/** Everything that belongs to one live conversation; replaced on each Start. */
let session = null;

/** The settings the form was rendered with: what the next conversation will use. */
function savedSettings() {
  const field = (name) => settingsForm?.elements.namedItem(name)?.value ?? "";
  return { turn_detection: field("turn_detection") || "server_vad", voice: field("voice"), language: field("language") };
}

const isPushToTalk = () => app.settings?.turn_detection === "push_to_talk";

/** Shows a plain-language problem in #error, or hides the box when `message` is empty. */
function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

/** Shows information that is not a problem (e.g. the voice could not change) in #notice. */
function showNotice(message) {
  noticeBox.textContent = message;
  noticeBox.hidden = !message;
}

/** Shows the "Recording" mark while the server records the live conversation. */
function showRecording(recording) {
  app.recording = recording;
  if (recordingIndicator) recordingIndicator.hidden = !recording;
}

/** Enables Start or Stop, whichever makes sense now; typing waits for `ready`. */
function setRunning(running) {
  startButton.disabled = running || !support.ok || Boolean(app.startBlockedUntil);
  stopButton.disabled = !running;
  if (!running) setTextEnabled(false);
}

function setTextEnabled(enabled) {
  for (const control of textForm.elements) control.disabled = !enabled;
}

/** Lights "you are speaking" (from the server's VAD, or while push-to-talk is held). */
function setSpeaking(active) {
  speaking.dataset.active = String(active);
}

/** Shows the push-to-talk button only in push-to-talk mode, usable only once the conversation is ready. */
function applyMode() {
  const ptt = isPushToTalk();
  pttButton.hidden = !ptt;
  root.dataset.mode = ptt ? "push-to-talk" : "vad";
  const usable = ptt && Boolean(session?.ready);
  pttButton.disabled = !usable;
  pushToTalk.setEnabled(usable);
  status.setVariant(ptt ? "ptt" : "");
  if (!ptt && session) session.pttOpen = false;
}

/** Whether this browser and page can record audio at all (https or localhost, AudioWorklet, getUserMedia). */
const support = audioSupport(browserAudioFeatures(window));

/**
 * The audio modules, loaded on first use: they extend AudioWorkletNode, so importing them up front
 * would break the whole page (and its explanation) in a browser or insecure page without it.
 */
let audioModules = null;
function loadAudio() {
  audioModules ??= Promise.all([import("./audio/capture.js"), import("./audio/player.js")])
    .then(([capture, player]) => ({ ...capture, ...player }));
  return audioModules;
}

/** Opens the mic and the audio graph first (so a blocked mic never opens a socket), then connects. */
async function start() {
  if (!support.ok) return;
  setRunning(true);
  showError("");
  showNotice("");
  status.set("connecting");
  // Continuing a stored conversation adds to its transcript; a new one starts below a divider.
  if (!continueId) transcript.separate(root.dataset.textNewConversation || gettext("New conversation"));
  Object.assign(app.stats, freshStats()); // In place, so a reference held by a test stays live.
  app.lastTruncate = null;
  const s = {
    client: null, context: null, capture: null, player: null, ready: false, itemId: null,
    interrupted: new Set(), closed: false, pttOpen: false, pttSequence: Promise.resolve(),
    // Items the current upstream session spoke: after a rollover or resume the new session holds older
    // replies as text only, and refuses a truncate for them.
    truncatable: new Set(),
  };
  session = s;
  let stream = null;
  try {
    s.context = new AudioContext({ latencyHint: "interactive" }); // Native rate: Firefox refuses a forced 24 kHz with a mic.
    const { CaptureNode, PlayerNode, openMicrophone } = await loadAudio();
    stream = await openMicrophone(microphones.deviceId);
    microphones.refresh(); // Labels become readable once permission is granted.
    if (session !== s) return stream.getTracks().forEach((t) => t.stop()); // Stop was pressed meanwhile.
    s.capture = await CaptureNode.create(s.context, root.dataset.captureWorklet, stream);
    s.player = await PlayerNode.create(s.context, root.dataset.playbackWorklet);
    await s.context.resume();
  } catch (error) {
    stream?.getTracks().forEach((t) => t.stop());
    if (!stream && isMicBlocked(error)) finish(s, "mic-blocked", "");
    else finish(s, "error", stream ? gettext("Audio could not be started in this browser. Try a recent Chrome, Edge, Firefox or Safari.") : micErrorMessage(error));
    return;
  }
  if (session !== s) { s.capture.stop(); return; } // Stopped while loading.
  attachCapture(s, s.capture);
  s.player.addEventListener("playback", (event) => onPlayback(s, event.detail));
  s.player.addEventListener("processorerror", () => broken(s));
  s.client = connect(s);
}

const broken = (s) => finish(s, "error", gettext("Audio processing stopped unexpectedly. Press Start to try again."));

/** Routes a capture node's batches to session `s` and notices when its microphone goes away. */
function attachCapture(s, capture) {
  capture.onbatch = (pcm, level) => onBatch(s, pcm, level);
  capture.addEventListener("processorerror", () => broken(s));
  const track = capture.stream.getAudioTracks()[0];
  track?.addEventListener("ended", () => {
    // Unplugged or revoked: fall back to the default microphone without ending the conversation.
    if (session === s && s.capture === capture) switchMicrophone("", gettext("The microphone was disconnected; switched to the default one."));
  });
}

/** Zero-filled buffers by size, for muted frames: the socket copies them, so one of each size is enough. */
const silence = new Map();
function silent(byteLength) {
  if (!silence.has(byteLength)) silence.set(byteLength, new ArrayBuffer(byteLength));
  return silence.get(byteLength);
}

/**
 * Sends one 40 ms batch as one binary frame once the server said `ready`. Muted, the server VAD gets
 * silence (so it still sees time pass); in push-to-talk only frames between press and release go out.
 */
function onBatch(s, pcm, level) {
  app.stats.framesCaptured++;
  app.level = level;
  meter.set(app.muted ? 0 : level);
  if (!s.ready) return;
  let frame = pcm;
  if (isPushToTalk()) {
    if (!s.pttOpen || app.muted) return;
  } else if (app.muted) {
    frame = silent(pcm.byteLength);
  }
  // While reconnecting the client drops frames rather than queue them: stale speech must not arrive late.
  if (s.client.sendAudio(frame)) app.stats.bytesSent += frame.byteLength;
}

/** Mirrors the worklet's counters and moves the status when the assistant starts or stops being heard. */
function onPlayback(s, detail) {
  app.stats.framesPlayed = detail.played;
  app.stats.underruns = detail.underruns;
  app.stats.jitterMs = detail.jitterMs;
  if (session !== s) return;
  assistantVoice.dataset.active = String(Boolean(detail.active));
  if (!s.ready || !detail.changed) return;
  if (detail.active && ["thinking", "listening", "working"].includes(status.state)) status.set("assistant-speaking");
  else if (!detail.active && status.state === "assistant-speaking") status.set(statusAfterSpeaking(transcript.toolsRunning()));
}

/** Barge-in: silence the assistant now, then tell the server how much of its item was heard. */
async function bargeIn(s) {
  const { itemId, playedMs } = await s.player.interrupt();
  if (!itemId) return; // Playback had already finished: nothing to truncate.
  s.interrupted.add(itemId); // Frames still in flight for this item must not play.
  if (!s.truncatable.has(itemId)) return; // Spoken by an earlier upstream session: stopping playback is enough.
  s.client.send({ type: "truncate", item_id: itemId, audio_end_ms: playedMs });
  app.stats.truncates++;
  app.lastTruncate = { itemId, playedMs };
}

/** Push-to-talk pressed: interrupt the assistant if it is being heard, then `press`, then let frames through. */
function pttPress() {
  const s = session;
  if (!s?.ready || !isPushToTalk()) return;
  if (app.muted) {
    showNotice(gettext("You are muted. Unmute to talk."));
    return;
  }
  app.pttHeld = true;
  s.pttPressed = true;
  setSpeaking(true);
  status.set("user-speaking");
  s.pttSequence = s.pttSequence.then(async () => {
    if (s.player.status.active) await bargeIn(s);
    s.client.send({ type: "press" });
    s.pttOpen = true;
  });
}

/** Push-to-talk released: stop the frames, then `commit` what was said. */
function pttRelease() {
  app.pttHeld = false;
  const s = session;
  if (!s?.pttPressed) return;
  s.pttPressed = false;
  setSpeaking(false);
  s.pttSequence = s.pttSequence.then(() => {
    s.pttOpen = false;
    if (s.closed) return;
    s.client.send({ type: "commit" });
    if (status.state === "user-speaking") status.set("thinking");
  });
}

const pushToTalk = new PushToTalk(pttButton, { onPress: pttPress, onRelease: pttRelease });

/** The conversation the next Start continues: the one the page was opened with, or one that failed. */
let continueId = root.dataset.conversationId || null;

/** Opens the conversation client for session `s`; it resumes on a new socket by itself after a drop. */
function connect(s) {
  const client = new ConversationClient({
    path: root.dataset.wsPath,
    conversationId: continueId,
    onState: (change) => onClientState(s, change),
    onMessage: (msg) => onMessage(s, msg),
    onAudio: (buffer) => {
      if (s.itemId && !s.interrupted.has(s.itemId)) s.player.enqueue(s.itemId, buffer);
    },
  });
  continueId = null; // Start after Stop opens a new conversation.
  client.start();
  return client;
}

/** Puts the conversation's id in the address bar, so a reload continues it instead of starting afresh. */
function rememberConversation(id) {
  const url = new URL(window.location.href);
  if (url.searchParams.get("conversation") === id) return;
  url.searchParams.set("conversation", id);
  window.history.replaceState(window.history.state, "", url);
}

/** Follows the client's state: live, reconnecting (audio held back), ended or failed. */
function onClientState(s, change) {
  if (session !== s || s.closed) return;
  switch (change.state) {
    case "connecting":
      status.set("connecting");
      break;
    case "live":
      s.ready = true;
      if (s.fatal) { s.fatal = false; showError(""); } // The problem that ended the last socket is over.
      status.element.dataset.attempt = "";
      applyMode();
      setTextEnabled(true);
      status.set(statusWhenLive(status.state, transcript.toolsRunning()));
      break;
    case "reconnecting":
      s.ready = false;
      s.pttOpen = false;
      setSpeaking(false);
      setTextEnabled(false);
      applyMode();
      if (change.reason !== "upstream") {
        // The server cancels a reply in progress when the socket drops: stop playing what is left of it.
        s.player.interrupt();
        s.itemId = null;
        assistantVoice.dataset.active = "false";
        if (change.reason === "unreachable") checkStillSignedIn(s);
      }
      status.element.dataset.attempt = String(change.attempt ?? "");
      status.set(change.reason === "unreachable" ? "unreachable" : "reconnecting");
      break;
    case "ended":
      finish(s, "idle", "");
      break;
    case "failed":
      onFailed(s, change);
      break;
  }
}

/** The socket closed for good: say why in plain words, and let Start continue the conversation where that helps. */
function onFailed(s, change) {
  if (outcomeAfterClose(change.code, s.limitRefusal) === "limit") {
    onLimit(s, s.limitRefusal);
    return;
  }
  if (change.outcome === "login") {
    finish(s, "error", change.message);
    goToLogin();
    return;
  }
  let message = s.fatal ? null : change.message; // A fatal `error` already said why, in better words.
  if (change.exhausted) {
    message = change.reachable
      ? gettext("The connection to the server was lost and could not be restored. Press Start to continue the conversation.")
      : gettext("Cannot reach the server. Check your connection, then press Start to continue the conversation.");
  }
  // The conversation is stored: Start continues it, unless it is gone, another tab has it now, or the
  // server ended it for flooding (Start then begins a new one; the history page can still continue it).
  const gone = [4004, 4410].includes(change.code);
  const continuable = app.conversationId && !["replaced", "refused"].includes(change.outcome) && !gone;
  finish(s, "error", message);
  if (continuable) continueId = app.conversationId;
  if (gone) forgetConversation();
}

/**
 * A limit refused the start or ended the conversation: say which and when it resets in local time, never
 * reconnect, and keep Start disabled until then when pressing it could only be refused again.
 */
function onLimit(s, refusal) {
  const now = new Date();
  const language = document.documentElement.lang || undefined;
  app.limit = refusal;
  const gate = startGate(refusal, now);
  app.startBlockedUntil = gate.until;
  finish(s, "error", refusalText(refusal, now, { locale: language }));
  // A conversation that ran is stored: once Start works again it continues it, as after any 4429.
  if (app.conversationId) continueId = app.conversationId;
  clearTimeout(startGateTimer);
  const delay = gateDelay(gate, now);
  if (delay !== null) startGateTimer = setTimeout(() => liftStartGate(refusal), delay);
}

let startGateTimer = null;

/** The limit's window has ended (or setTimeout's longest wait): enable Start again if the reset has come. */
function liftStartGate(refusal) {
  const gate = startGate(refusal, new Date());
  if (gate.disabled) { // setTimeout cannot wait a whole month: wait again.
    startGateTimer = setTimeout(() => liftStartGate(refusal), gateDelay(gate, new Date()));
    return;
  }
  app.startBlockedUntil = null;
  if (!session) {
    setRunning(false);
    showError("");
  }
}

/** Shows today's use against the limits (from `ready` or `usage`); words by textContent, one bar per limit. */
function showUsage(usage) {
  const rows = meterRows(usage, document.documentElement.lang || "en");
  if (!usageMeter || !rows.length) return;
  app.usage = usage;
  for (const row of rows) {
    const element = usageMeter.querySelector(`[data-dimension="${row.dimension}"]`);
    if (!element) continue;
    element.querySelector(".usage-text").textContent = row.text;
    const bar = element.querySelector("meter");
    bar.hidden = row.share === null;
    bar.value = row.share ?? 0;
    element.dataset.high = String(isHigh(row));
  }
  usageMeter.hidden = false;
}

/** Takes a conversation that no longer exists out of the address bar, so a reload does not ask for it. */
function forgetConversation() {
  app.conversationId = null;
  const url = new URL(window.location.href);
  if (!url.searchParams.has("conversation")) return;
  url.searchParams.delete("conversation");
  window.history.replaceState(window.history.state, "", url);
}

/** Sends the user to sign in, coming back to this conversation afterwards. */
function goToLogin() {
  const next = app.conversationId ? `${window.location.pathname}?conversation=${encodeURIComponent(app.conversationId)}` : window.location.pathname;
  window.location.assign(`${root.dataset.loginUrl}?next=${encodeURIComponent(next)}`);
}

/**
 * A socket refused before it opens looks like a network failure to the page (the browser reports
 * 1006, never 4001). When a retry fails that way, ask the page itself: a redirect means signed out.
 */
async function checkStillSignedIn(s) {
  let response;
  try {
    response = await fetch(window.location.pathname, { method: "HEAD", redirect: "manual", cache: "no-store" });
  } catch {
    return; // The server is unreachable: keep retrying.
  }
  if (response.type === "opaqueredirect" && session === s && !s.closed) {
    finish(s, "error", gettext("You are not signed in any more. Sign in again, then press Start."));
    goToLogin();
  }
}

/** Routes one server message: the transcript model takes what is about the transcript, the page the rest. */
function onMessage(s, msg) {
  app.stats.messages[msg.type] = (app.stats.messages[msg.type] || 0) + 1;
  if (session !== s || s.closed) return;
  transcript.apply(msg);
  showRecording(recordingAfter(app.recording, msg));
  switch (msg.type) {
    case "ready":
      s.truncatable.clear(); // A new upstream session: nothing it holds has been spoken yet.
      app.conversationId = msg.conversation_id;
      rememberConversation(msg.conversation_id);
      if (msg.settings) app.settings = msg.settings;
      if (msg.continued) showNotice(gettext("Continuing the conversation: the assistant remembers what was said."));
      if (msg.usage) showUsage(msg.usage);
      break;
    case "usage":
      showUsage(msg);
      break;
    case "settings_applied":
      if (msg.settings) app.settings = msg.settings;
      applyMode();
      if (msg.voice_locked) {
        showNotice(gettext("Settings applied. The voice can't change once the assistant has spoken in a conversation: the new voice will be used in your next conversation."));
      } else {
        showNotice(gettext("Settings applied to this conversation."));
      }
      if (status.state === "listening") status.set("listening"); // Refresh the words for the mode.
      break;
    case "speech_started":
      setSpeaking(true);
      status.set("user-speaking");
      bargeIn(s);
      break;
    case "speech_stopped":
      setSpeaking(false);
      status.set("thinking");
      break;
    case "user_item":
      if (!s.fatal) showError(""); // A new turn makes an earlier non-fatal problem stale.
      break;
    case "assistant_item":
      s.itemId = msg.item_id;
      s.truncatable.add(msg.item_id);
      break;
    case "audio_done":
      s.player.end(msg.item_id);
      break;
    case "response_done":
      s.player.end();
      // A response without audio never moves the status to speaking, so return to listening here.
      if (status.state === "thinking" && !s.player.status.active) status.set("listening");
      break;
    case "history":
      // A conversation taken up again while a tool it called still runs: the status says so.
      if (s.ready && transcript.toolsRunning()) status.set(statusWhenLive(status.state, true));
      break;
    case "tool_started":
    case "tool_finished": {
      // The transcript shows which tool and what it found; the status says the assistant is busy meanwhile.
      const next = statusAfterTool(status.state, msg, transcript.toolsRunning());
      if (next !== status.state) status.set(next);
      break;
    }
    case "limit_warning":
      showNotice(msg.message); // the server's plain words: which limit, and when it resets
      break;
    case "error":
      app.lastError = { code: msg.code, message: msg.message, fatal: Boolean(msg.fatal) };
      s.limitRefusal = limitRefusal(msg) ?? s.limitRefusal; // the 4429 that follows is a limit, not a busy service
      showError(msg.message || gettext("Something went wrong."));
      if (msg.fatal) { s.fatal = true; status.set("error"); }
      else if (status.state === "thinking" && !s.player.status.active) status.set("listening"); // e.g. too_short.
      break;
  }
}

/** Tears down one session: mic off, playback silenced, socket closed; the transcript stays. */
function finish(s, state, message) {
  if (s.closed) return;
  s.closed = true;
  s.ready = false;
  s.capture?.stop();
  s.client?.stop();
  s.context?.close().catch(() => {});
  if (session === s) {
    session = null;
    app.pttHeld = false;
    setRunning(false);
    setSpeaking(false);
    showRecording(false);
    assistantVoice.dataset.active = "false";
    meter.reset();
    applyMode();
    status.set(state);
    if (message !== null) showError(message);
  }
}

/** Swaps the live conversation's microphone without touching the socket or the player. */
async function switchMicrophone(deviceId, notice = "") {
  const s = session;
  if (!s?.capture || s.closed) return;
  const { CaptureNode, openMicrophone } = await loadAudio();
  let stream;
  try {
    stream = await openMicrophone(deviceId);
  } catch (error) {
    showError(micErrorMessage(error));
    return;
  }
  if (session !== s || s.closed) { stream.getTracks().forEach((t) => t.stop()); return; }
  let capture;
  try {
    capture = await CaptureNode.create(s.context, root.dataset.captureWorklet, stream);
  } catch {
    stream.getTracks().forEach((t) => t.stop());
    return;
  }
  if (session !== s || s.closed) { capture.stop(); return; }
  const old = s.capture;
  s.capture = capture;
  attachCapture(s, capture);
  old.stop();
  microphones.refresh();
  showError("");
  if (notice) showNotice(notice);
}

const microphones = new MicrophoneChooser(document.getElementById("mic-select"), {
  onChange: (deviceId) => switchMicrophone(deviceId),
  onDevicesChanged: () => {
    // The chosen microphone came back, or the one in use went away: follow it.
    const inUse = session?.capture?.trackSettings.deviceId;
    if (session?.capture && inUse && !microphones.has(inUse)) switchMicrophone(microphones.deviceId);
  },
});

function setMuted(muted) {
  app.muted = muted;
  muteButton.setAttribute("aria-pressed", String(muted));
  root.dataset.muted = String(muted);
  meter.set(muted ? 0 : app.level);
  if (muted && app.pttHeld) pushToTalk.cancel();
  if (!muted) showNotice("");
}

/** Sends a typed message; the server echoes it back as the user's transcript. */
function sendText() {
  const s = session;
  const text = textInput.value.trim();
  if (!s?.ready || !text) return;
  const send = () => s.client.send({ type: "text", text });
  // Typing over the assistant interrupts it, like speaking over it.
  if (s.player.status.active) bargeIn(s).then(send);
  else send();
  textInput.value = "";
  textInput.focus();
}

textForm.addEventListener("submit", (event) => {
  event.preventDefault();
  sendText();
});
textInput.addEventListener("keydown", (event) => {
  // Enter sends, Shift+Enter starts a new line; never while an input method is composing a word.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    sendText();
  }
});

if (settingsForm) {
  new SettingsPanel(settingsForm, {
    onSaved: (settings) => {
      if (session?.ready) {
        session.client.send({ type: "apply_settings" }); // The live session answers with settings_applied.
      } else {
        app.settings = { ...app.settings, ...settings };
        applyMode();
      }
    },
  });
}

if (!support.ok) {
  // Said before anyone presses Start: this is not the server's fault, and retrying will not help.
  status.set("no-audio");
  showError(support.message);
}
startButton.addEventListener("click", () => { start(); });
stopButton.addEventListener("click", () => { if (session) finish(session, "idle", ""); });
muteButton.addEventListener("click", () => setMuted(!app.muted));
setRunning(false);
setMuted(false);
applyMode();
