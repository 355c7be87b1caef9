/**
 * A conversation that outlives its socket: opens /ws/talk/, resumes on a new socket after a drop,
 * and reports one state at a time. No DOM: the page decides what each state looks like.
 *
 * States (`onState({state, ...})`):
 *   connecting                     the first socket is opening (or waiting for `ready`)
 *   live                           `ready` arrived: audio and typed messages may flow
 *   reconnecting {attempt, delayMs, reason}
 *                                  reason "socket": the socket dropped and a new one opens in delayMs;
 *                                  "unreachable": the last try never reached the server;
 *                                  "upstream": the server is replacing the voice service session
 *                                  (the socket stays open) until the next `ready`
 *   ended {code}                   the user stopped (or the server closed with 1000)
 *   failed {code, outcome, message, exhausted}
 *                                  closed for good: see retry.js closeOutcome() for `outcome`
 */
import { TalkSocket, closeMessage, socketUrl } from "../socket.js";
import { closeOutcome, nextDelay } from "./retry.js";

/** How long one socket may take to open before the try counts as a drop. */
export const CONNECT_TIMEOUT_MS = 10_000;

export class ConversationClient {
  /**
   * `path` is the socket path; `conversationId` resumes or continues that conversation. The options
   * after `onAudio` exist for tests: a socket factory, timers and the random source of the jitter.
   */
  constructor({
    path, conversationId = null, onState = () => {}, onMessage = () => {}, onAudio = () => {},
    makeSocket = (url) => new TalkSocket(url), makeUrl = socketUrl, timers = globalThis,
    random = Math.random, connectTimeoutMs = CONNECT_TIMEOUT_MS,
  }) {
    Object.assign(this, { path, conversationId, onState, onMessage, onAudio, makeSocket, makeUrl, timers, random, connectTimeoutMs });
    this.state = "idle";
    this.attempt = 0;
    this.socket = null;
    this.timer = null;
    this.stopped = false;
  }

  /** Opens the first socket. */
  start() {
    this.stopped = false;
    this.setState({ state: "connecting" });
    this.open();
  }

  /** Whether audio and control messages go out now: only between `ready` and the next interruption. */
  get live() {
    return this.state === "live" && Boolean(this.socket?.isOpen);
  }

  /** Sends a JSON control message while live; returns whether it went out. */
  send(message) {
    if (!this.live) return false;
    this.socket.send(message);
    return true;
  }

  /** Sends one audio frame while live; otherwise the frame is dropped (never queued) and false returned. */
  sendAudio(buffer) {
    return this.live ? this.socket.sendAudio(buffer) : false;
  }

  /** The user ended the conversation: close with 1000 and never reconnect. */
  stop() {
    if (this.stopped) return;
    this.stopped = true;
    this.timers.clearTimeout(this.timer);
    this.timers.clearTimeout(this.connectTimer);
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000);
    this.setState({ state: "ended", code: 1000 });
  }

  /** Test hook: drop the socket as a network failure would (the page sees a 1006 and resumes). */
  dropSocket() {
    if (!this.socket) return;
    this.socket.dropped = true;
    this.socket.close(4999); // Browsers may only send 1000 or 3000–4999; 4999 means nothing to the server.
  }

  setState(change) {
    this.state = change.state;
    this.onState(change);
  }

  open() {
    // attempt > 0: a reconnect after a drop, not the first socket of this Start.
    const socket = this.makeSocket(this.makeUrl(this.path, this.conversationId, this.attempt > 0));
    this.socket = socket;
    socket.opened = false;
    // A socket stuck opening (a dead network rather than a refused port) counts as a drop.
    this.connectTimer = this.timers.setTimeout(() => {
      if (this.socket === socket && !socket.opened) {
        socket.dropped = true;
        socket.close(1000);
      }
    }, this.connectTimeoutMs);
    socket
      .on("open", () => {
        socket.opened = true;
        this.timers.clearTimeout(this.connectTimer);
      })
      .on("message", (msg) => { if (this.socket === socket) this.onServerMessage(msg); })
      .on("audio", (buffer) => { if (this.socket === socket && this.state === "live") this.onAudio(buffer); })
      .on("close", ({ code }) => { if (this.socket === socket) this.onClose(socket, socket.dropped ? 1006 : code); });
  }

  onServerMessage(msg) {
    if (msg.type === "ready") {
      if (msg.conversation_id) this.conversationId = msg.conversation_id;
      this.attempt = 0;
      this.onMessage(msg);
      this.setState({ state: "live", resumed: Boolean(msg.resumed), continued: Boolean(msg.continued) });
      return;
    }
    if (msg.type === "reconnecting") {
      // The socket is fine; the server is replacing the voice service session. Hold audio until `ready`.
      this.setState({ state: "reconnecting", reason: "upstream", attempt: msg.attempt ?? 1, delayMs: msg.delay_ms ?? 0 });
    }
    this.onMessage(msg);
  }

  onClose(socket, code) {
    this.timers.clearTimeout(this.connectTimer);
    this.socket = null;
    if (this.stopped) return;
    const outcome = closeOutcome(code);
    if (outcome === "retry") {
      this.attempt += 1;
      const delayMs = nextDelay(this.attempt, this.random);
      if (delayMs !== null) {
        const reason = socket.opened ? "socket" : "unreachable";
        this.setState({ state: "reconnecting", reason, attempt: this.attempt, delayMs, code });
        this.timer = this.timers.setTimeout(() => { if (!this.stopped) this.open(); }, delayMs);
        return;
      }
      this.setState({ state: "failed", code, outcome, exhausted: true, reachable: socket.opened, message: closeMessage(code) });
      return;
    }
    if (outcome === "ended") {
      this.stopped = true;
      this.setState({ state: "ended", code });
      return;
    }
    this.stopped = true;
    this.setState({ state: "failed", code, outcome, exhausted: false, reachable: true, message: closeMessage(code) });
  }
}
