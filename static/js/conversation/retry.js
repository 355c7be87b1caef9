/**
 * When and how soon the talk page reconnects after its socket closes (see docs/browser-protocol.md, "Close codes").
 *
 * Pure functions, no DOM: unit-tested with `node --test tests/js/`.
 */

/** Close codes after which the page resumes the conversation on a new socket. */
// 1012: the server is restarting (it stored the conversation first); the next process continues it.
export const RETRY_CODES = Object.freeze([1001, 1006, 1011, 1012]);

/** First delay, doubling on each attempt up to the cap; with MAX_ATTEMPTS the tries span about 18–29 s. */
export const BASE_DELAY_MS = 500;
export const MAX_DELAY_MS = 8000;
export const MAX_ATTEMPTS = 6;
/** ±25 % jitter, so many pages dropped by one server restart do not come back in the same instant. */
export const JITTER = 0.25;

/**
 * What the page does after a close `code`:
 * "retry" (resume on a new socket), "ended" (the user stopped), "login" (signed out),
 * "replaced" (another tab took the conversation), "fatal" (a setup problem retrying cannot fix),
 * "refused" (the page sent faster than the server allows: the server ended the conversation, and
 * the page neither reconnects nor continues it), "busy" (the voice service is full or slowing down: the
 * server's `error` says "try again in N s" and Start continues the conversation), "offer-start"
 * (transient upstream trouble: the user may press Start again).
 */
export function closeOutcome(code) {
  if (RETRY_CODES.includes(code)) return "retry";
  if (code === 1000) return "ended";
  if (code === 1008) return "refused";
  if (code === 4001) return "login";
  if (code === 4000) return "replaced";
  if (code === 4503) return "busy";
  // 4430: an administrator ended the conversation; reconnecting would only undo that.
  if ([4004, 4400, 4401, 4404, 4410, 4430].includes(code)) return "fatal";
  return "offer-start"; // 4429, 4502, and codes this page does not know.
}

/** Whether the page should reconnect by itself after close `code`. */
export function shouldRetry(code) {
  return closeOutcome(code) === "retry";
}

/** The nominal delay before reconnect `attempt` (1-based): 500, 1000, 2000, 4000, 8000, 8000 ms. */
export function nominalDelay(attempt) {
  const n = Math.max(1, Math.floor(attempt));
  return Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (n - 1));
}

/** The delay before reconnect `attempt` with jitter; `random` returns a number in [0, 1). */
export function backoffDelay(attempt, random = Math.random) {
  const nominal = nominalDelay(attempt);
  return Math.round(nominal * (1 - JITTER + 2 * JITTER * random()));
}

/** The delays of every attempt, or null once `attempt` is past the last one. */
export function nextDelay(attempt, random = Math.random) {
  return attempt > MAX_ATTEMPTS ? null : backoffDelay(attempt, random);
}
