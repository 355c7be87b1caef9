/**
 * Whether this page can record audio at all, told apart from the server being unreachable.
 *
 * Pure: the page passes what the browser offers, so the rules are unit-tested with `node --test`.
 */
import { gettext } from "../i18n.js";

/** What a browser offers for recording: read from `window` by `browserAudioFeatures`. */
export function browserAudioFeatures(win = globalThis) {
  return {
    secureContext: Boolean(win.isSecureContext),
    audioWorklet: typeof win.AudioWorkletNode === "function",
    getUserMedia: typeof win.navigator?.mediaDevices?.getUserMedia === "function",
  };
}

/**
 * `{ok: true}`, or `{ok: false, reason, message}`: "insecure" when the page is not https or localhost
 * (browsers then hide both the microphone and AudioWorklet), "unsupported" when the browser lacks them.
 */
export function audioSupport(features) {
  if (!features.secureContext) {
    return {
      ok: false,
      reason: "insecure",
      message: gettext("This page cannot record audio: browsers only allow the microphone on secure pages (https://, or http://localhost). Open the app over https."),
    };
  }
  if (!features.audioWorklet || !features.getUserMedia) {
    return {
      ok: false,
      reason: "unsupported",
      message: gettext("This browser cannot record audio here: it lacks microphone access or AudioWorklet. Use a recent Chrome, Edge, Firefox or Safari."),
    };
  }
  return { ok: true, reason: "", message: "" };
}
