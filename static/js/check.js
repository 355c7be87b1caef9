/**
 * The pre-flight check page: microphone, level, sample-rate path, server round trip, the voice service
 * behind the server, and echo cancellation.
 */
import { audioSupport, browserAudioFeatures } from "./conversation/capability.js";
import { isMicBlocked, remembered } from "./devices.js";
import { gettext, interpolate } from "./i18n.js";
import { LevelMeter, levelPercent } from "./meter.js";
import { socketUrl } from "./socket.js";

const root = document.getElementById("check");
const runButton = document.getElementById("run-checks");
const statusLine = document.getElementById("check-status");
const meter = new LevelMeter(document.getElementById("check-level"));

/** The page promises five seconds of listening: count them in audio actually captured, not wall-clock time. */
const LISTEN_MS = 5000;
const BATCH_MS = 40;
/** A browser that captures nothing still gets a verdict: give up on the five seconds after this long. */
const LISTEN_DEADLINE_MS = 8000;
const BATCH_BYTES = 1920; // 40 ms of 24 kHz PCM16.
/** The server bounds its own check; this only guards against an answer that never comes. */
const UPSTREAM_ANSWER_MS = 30000;
const PINGS = 5;
const SLOW_MS = 300;

/** Words for each result, shown next to the check's name. */
const outcomeText = () => ({
  running: gettext("Checking…"),
  pass: gettext("Passed"),
  warn: gettext("Warning"),
  fail: gettext("Failed"),
});

/** Sets one row's result, what was found and (for warn/fail) what to do about it; all as text. */
function report(check, result, detail, fix = "") {
  const row = document.querySelector(`#check-results [data-check="${check}"]`);
  row.dataset.result = result;
  row.querySelector(".check-outcome").textContent = outcomeText()[result] ?? result;
  row.querySelector(".check-detail").textContent = detail;
  row.querySelector(".check-fix").textContent = fix;
}

const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The capture module, loaded on first use: it extends AudioWorkletNode, which old browsers lack. */
const loadCapture = () => import("./audio/capture.js");

/** Opens the remembered microphone, or the default one when it is gone. */
async function openChosenMicrophone() {
  const { openMicrophone } = await loadCapture();
  const deviceId = remembered();
  try {
    return await openMicrophone(deviceId);
  } catch (error) {
    if (deviceId && (error.name === "OverconstrainedError" || error.name === "NotFoundError")) return openMicrophone("");
    throw error;
  }
}

/** What to do when the microphone cannot be opened, in plain words. */
function micFix(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return gettext("Allow the microphone with the icon at the left of the address bar (or in the browser's site settings), then run the checks again.");
    case "NotFoundError":
    case "OverconstrainedError":
      return gettext("Connect a microphone, then run the checks again.");
    case "NotReadableError":
      return gettext("Another application is using the microphone. Close it, then run the checks again.");
    default:
      return gettext("Check that this page is served over HTTPS and that a microphone is connected.");
  }
}

/** Microphone permission: the stream, or null after reporting why there is none. */
async function checkMicrophone() {
  const support = audioSupport(browserAudioFeatures(window));
  if (!support.ok) {
    report("mic", "fail", support.message,
      support.reason === "insecure"
        ? gettext("Open the app over https:// (or on this computer at http://localhost).")
        : gettext("Use a recent Chrome, Edge, Firefox or Safari."));
    return null;
  }
  try {
    const stream = await openChosenMicrophone();
    const label = stream.getAudioTracks()[0]?.label || gettext("the microphone");
    report("mic", "pass", interpolate(gettext("Allowed: using %(name)s."), { name: label }));
    return stream;
  } catch (error) {
    const detail = isMicBlocked(error) ? gettext("The microphone is blocked for this site.") : gettext("The microphone could not be opened.");
    report("mic", "fail", detail, micFix(error));
    return null;
  }
}

/**
 * Runs the real capture worklet for a few seconds: the level it measures, and whether it turns the
 * context's native rate into 1920-byte batches 25 times a second. Without a microphone a test tone
 * stands in, so the resampling path is still checked.
 */
async function checkAudioPath(context, stream) {
  if (!context.audioWorklet) {
    report("rate", "fail", gettext("This browser has no AudioWorklet, which the app needs to prepare your voice."),
      gettext("Use a recent Chrome, Edge, Firefox or Safari."));
    return;
  }
  let source = stream;
  let tone = null;
  if (!source) {
    tone = context.createOscillator();
    const destination = context.createMediaStreamDestination();
    tone.connect(destination);
    tone.start();
    source = destination.stream;
  }
  let capture;
  try {
    const { CaptureNode } = await loadCapture();
    capture = await CaptureNode.create(context, root.dataset.captureWorklet, source);
    await context.resume();
  } catch {
    report("rate", "fail", gettext("The audio worklet could not be started."), gettext("Use a recent Chrome, Edge, Firefox or Safari."));
    return;
  }
  const batches = { count: 0, wrongSize: 0, first: 0, last: 0, peak: 0 };
  capture.onbatch = (pcm, level) => {
    const now = performance.now();
    if (!batches.count) batches.first = now;
    batches.last = now;
    batches.count++;
    if (pcm.byteLength !== BATCH_BYTES) batches.wrongSize++;
    if (stream) {
      batches.peak = Math.max(batches.peak, level);
      meter.set(level);
    }
  };
  const started = performance.now();
  const heardMs = () => batches.count * BATCH_MS;
  while (heardMs() < LISTEN_MS && performance.now() - started < LISTEN_DEADLINE_MS) {
    if (stream) {
      const left = Math.max(1, Math.ceil((LISTEN_MS - heardMs()) / 1000));
      statusLine.textContent = interpolate(gettext("Say a few words now… (%(seconds)s s)"), { seconds: left });
    }
    await wait(100);
  }
  capture.stop();
  root.dataset.listenedMs = String(heardMs()); // What the check really heard: the browser test reads it.
  tone?.stop();
  meter.reset();
  statusLine.textContent = "";

  if (stream) reportLevel(batches.peak);
  reportRate(context.sampleRate, batches);
}

function reportLevel(peak) {
  const level = levelPercent(peak); // The meter's 0–100 scale, which the user just watched.
  if (peak < 0.002) {
    report("level", "fail", gettext("We heard only silence: check the microphone or its volume."),
      gettext("Check that the right microphone is chosen and not muted (some headsets and laptops have a mute switch), and raise its input volume in your system's sound settings."));
  } else if (peak < 0.01) {
    report("level", "warn", interpolate(gettext("We heard you, but very quietly (loudest: %(level)s out of 100)."), { level }),
      gettext("Move closer to the microphone or raise its input volume in your system's sound settings."));
  } else {
    report("level", "pass", gettext("Your microphone works: we heard you clearly."));
  }
}

function reportRate(nativeRate, batches) {
  const path = nativeRate === 24000
    ? gettext("Your browser records at 24000 Hz, the rate the assistant uses.")
    : interpolate(gettext("Your browser records at %(rate)s Hz; the page converts it to the 24000 Hz the assistant uses."), { rate: nativeRate });
  if (batches.count < 2) {
    report("rate", "fail", `${path} ${gettext("But no audio came through.")}`,
      gettext("Reload the page and try again; if it still fails, use a recent Chrome, Edge, Firefox or Safari."));
    return;
  }
  // 25 batches a second is real time; well off it means the computer is struggling to keep up.
  const perSecond = (batches.count - 1) / ((batches.last - batches.first) / 1000);
  if (batches.wrongSize) {
    report("rate", "fail", `${path} ${gettext("Some of the audio came out garbled.")}`, gettext("Reload the page and try again."));
  } else if (perSecond < 22 || perSecond > 28) {
    report("rate", "warn", `${path} ${gettext("But the audio did not arrive steadily.")}`,
      gettext("The computer may be busy. Close other tabs or applications that use audio."));
  } else {
    report("rate", "pass", `${path} ${gettext("Audio arrives steadily.")}`);
  }
}

function checkEcho(stream) {
  if (!stream) {
    report("echo", "fail", gettext("Not checked: the microphone is not available."), gettext("Allow the microphone, then run the checks again."));
    return;
  }
  const echo = stream.getAudioTracks()[0]?.getSettings().echoCancellation;
  if (echo === true) {
    report("echo", "pass", gettext("Echo cancellation is on: the assistant should not hear itself."));
  } else if (echo === false) {
    report("echo", "warn", gettext("Echo cancellation is off, so the assistant may hear itself through your speakers and interrupt itself."),
      gettext("Use headphones, or choose far-field noise reduction in the conversation settings."));
  } else {
    report("echo", "warn", gettext("This browser does not say whether echo cancellation is on."),
      gettext("Use headphones to be safe."));
  }
}

/** Opens the check socket and measures the median of a few ping round trips; returns the open socket or null. */
async function checkSocket() {
  let socket;
  try {
    socket = new WebSocket(socketUrl(root.dataset.wsCheckPath));
  } catch {
    report("socket", "fail", gettext("The connection could not be opened."), gettext("Reload the page and try again."));
    return null;
  }
  const times = [];
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("timeout")), 5000);
      socket.onopen = () => { clearTimeout(timer); resolve(); };
      socket.onclose = (event) => { clearTimeout(timer); reject(new Error(`closed ${event.code}`)); };
    });
    for (let i = 0; i < PINGS; i++) {
      const t = performance.now();
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("timeout")), 3000);
        socket.onmessage = (event) => {
          let message = null;
          try { message = JSON.parse(event.data); } catch { return; }
          if (message?.type === "pong" && message.t === t) { clearTimeout(timer); resolve(); }
        };
        socket.onclose = () => { clearTimeout(timer); reject(new Error("closed")); };
        socket.send(JSON.stringify({ type: "ping", t }));
      });
      times.push(performance.now() - t);
    }
  } catch {
    report("socket", "fail",
      times.length ? gettext("The connection to the server stopped answering.") : gettext("Could not connect to the server."),
      gettext("Check your internet connection. Some company networks and proxies block WebSockets: try another network."));
    socket.onclose = null;
    if (socket.readyState <= WebSocket.OPEN) socket.close(1000);
    return null;
  }
  times.sort((a, b) => a - b);
  const median = Math.round(times[Math.floor(times.length / 2)]);
  const detail = interpolate(gettext("Round trip to the server: %(ms)s ms (median of %(count)s)."), { ms: median, count: times.length });
  if (median > SLOW_MS) {
    report("socket", "warn", detail, gettext("The connection is slow, so answers will feel delayed. A wired or stronger connection helps."));
  } else {
    report("socket", "pass", detail);
  }
  return socket;
}

/** What to do about an upstream check failure, by its code. */
function upstreamFix(code) {
  if (["upstream_auth", "upstream_not_found", "upstream_config"].includes(code)) {
    return gettext("Conversations cannot start until this is fixed. Tell the person who runs this app.");
  }
  if (code === "rate_limited" || code === "check_running") return gettext("Wait a minute, then run the checks again.");
  return gettext("Try again in a minute. If it keeps failing, tell the person who runs this app.");
}

/** Asks the server to open (and close) a session with the voice service, and reports its answer. */
async function checkUpstream(socket) {
  if (!socket) {
    report("upstream", "fail", gettext("Not checked: there is no connection to the server."), gettext("Fix the connection first."));
    return;
  }
  let answer;
  try {
    answer = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("timeout")), UPSTREAM_ANSWER_MS);
      socket.onmessage = (event) => {
        let message = null;
        try { message = JSON.parse(event.data); } catch { return; }
        if (message?.type === "upstream_check") { clearTimeout(timer); resolve(message); }
      };
      socket.onclose = () => { clearTimeout(timer); reject(new Error("closed")); };
      socket.send(JSON.stringify({ type: "upstream_check" }));
    });
  } catch {
    report("upstream", "fail", gettext("The server did not say whether the voice service answers."), upstreamFix(""));
    return;
  } finally {
    socket.onclose = null;
    socket.onmessage = null;
    if (socket.readyState <= WebSocket.OPEN) socket.close(1000);
  }
  if (answer.ok) report("upstream", "pass", gettext("The voice service answers and accepts this app."));
  else report("upstream", "fail", answer.message || gettext("The voice service could not be reached."), upstreamFix(answer.code));
}

async function run() {
  runButton.disabled = true;
  for (const row of document.querySelectorAll("#check-results [data-check]")) report(row.dataset.check, "running", "");
  // Made before any await, while the click still counts as a user gesture, so audio may start.
  const context = new AudioContext({ latencyHint: "interactive" });
  let stream = null;
  try {
    stream = await checkMicrophone();
    if (!stream) {
      const reason = gettext("Not checked: the microphone is not available.");
      report("level", "fail", reason, gettext("Allow the microphone, then run the checks again."));
    }
    await checkAudioPath(context, stream);
    checkEcho(stream);
    await checkUpstream(await checkSocket());
    statusLine.textContent = gettext("Checks finished.");
  } finally {
    stream?.getTracks().forEach((track) => track.stop());
    context.close().catch(() => {});
    runButton.disabled = false;
  }
}

runButton.addEventListener("click", () => { run(); });
runButton.disabled = false; // Rendered disabled: a click before this script ran would do nothing.
