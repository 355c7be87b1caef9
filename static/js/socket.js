/**
 * The talk WebSocket: binary frames are PCM16 audio, text frames are small JSON control messages.
 */

import { gettext, interpolate } from "./i18n.js";

/** Plain-language explanations of the server's close codes (see docs/browser-protocol.md), in the page's language. */
function closeMessages() {
  // The service refused the app's setup: what to fix is for the operator (the log, staff pages), not the page.
  const notAvailable = gettext("The voice service is not available right now; please try again later or tell the site's operator.");
  return {
    1000: gettext("The conversation ended."),
    1001: gettext("The server is restarting. Press Start to try again in a moment."),
    1006: gettext("The connection to the server was lost. Check your network, then press Start to try again."),
    1008: gettext("The server ended this conversation because this page sent far more than a conversation needs. It is saved in your history; press Start for a new one."),
    1011: gettext("The server ran into a problem. Press Start to try again."),
    4000: gettext("This conversation was opened in another tab or window, so it stopped here."),
    4001: gettext("You are not signed in any more. Sign in again, then press Start."),
    4004: gettext("That conversation does not exist, or it is not yours."),
    4410: gettext("This conversation was deleted in another window."),
    4430: gettext("An administrator ended this conversation."),
    4400: notAvailable,
    4401: notAvailable,
    4404: notAvailable,
    4429: gettext("The voice service is busy or over its quota. Wait a minute, then press Start again."),
    4502: gettext("The voice service could not be reached or dropped the session. Press Start to try again."),
    4503: gettext("The voice service is busy right now. Wait a little, then press Start to try again."),
  };
}

/**
 * Audio waiting in the socket past which new frames are dropped (two seconds of PCM16 at 24 kHz): after a
 * network stall, old audio is no use to the conversation, and its backlog arriving at once would look
 * like a flood to the server (docs/browser-protocol.md, "Flood limits").
 */
export const MAX_BUFFERED_AUDIO_BYTES = 96_000;

/** Returns the plain-language message for a close code, with a generic fallback. */
export function closeMessage(code) {
  return closeMessages()[code]
    ?? interpolate(gettext("The connection closed unexpectedly (code %(code)s). Press Start to try again."), { code });
}

/** The browser's IANA time zone ("Europe/Berlin"), or "" when it cannot say. */
export function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    return "";
  }
}

/**
 * Builds the absolute ws:// or wss:// URL for a socket path, continuing `conversationId` when given.
 * `returning` marks a reconnect the page makes by itself after a drop: the server then answers a turn the
 * user spoke just before it, which the reply never reached. `timeZone` (the browser's own by default) is
 * what tools such as the current time answer in; the server checks it and falls back to its own.
 */
export function socketUrl(path, conversationId, returning = false, timeZone = browserTimeZone()) {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (conversationId) url.searchParams.set("conversation", conversationId);
  if (conversationId && returning) url.searchParams.set("resume", "1");
  if (timeZone) url.searchParams.set("tz", timeZone);
  return url.href;
}

/** Wraps a WebSocket and dispatches JSON messages by `type` and binary frames as audio. */
export class TalkSocket {
  constructor(url) {
    this.handlers = new Map();
    this.ws = new WebSocket(url);
    this.ws.binaryType = "arraybuffer"; // Audio goes straight to the player; Blobs would need an async read.
    this.ws.onopen = () => this.emit("open", {});
    this.ws.onmessage = (event) => this.onFrame(event.data);
    // The browser reports only "error" then "close"; the close code carries the useful information.
    this.ws.onclose = (event) => this.emit("close", { code: event.code, reason: event.reason, message: closeMessage(event.code) });
  }

  /** Registers `handler` for a message type, or for "audio", "open", "close"; returns this for chaining. */
  on(type, handler) {
    this.handlers.set(type, handler);
    return this;
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Sends a JSON control message if the socket is open. */
  send(message) {
    if (this.isOpen) this.ws.send(JSON.stringify(message));
  }

  /** Sends one binary audio frame if the socket is open and not backed up; returns whether it was sent. */
  sendAudio(buffer) {
    if (!this.isOpen || this.ws.bufferedAmount > MAX_BUFFERED_AUDIO_BYTES) return false;
    this.ws.send(buffer);
    return true;
  }

  /** Closes the socket; 1000 tells the server the user ended the conversation on purpose. */
  close(code = 1000) {
    if (this.ws.readyState <= WebSocket.OPEN) this.ws.close(code);
  }

  onFrame(data) {
    if (data instanceof ArrayBuffer) {
      this.emit("audio", data);
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return; // The server only sends JSON objects; ignore anything else rather than break the page.
    }
    if (message && typeof message.type === "string") {
      this.emit("message", message);
      this.emit(message.type, message);
    }
  }

  emit(type, payload) {
    this.handlers.get(type)?.(payload);
  }
}
