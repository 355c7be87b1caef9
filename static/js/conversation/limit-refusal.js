/**
 * A per-user limit refusal, told apart from a busy voice service, and when Start may be pressed again.
 *
 * Both close with 4429; only a limit sends an `error` with code `limit_reached` (and `resets_at`) first
 * (docs/browser-protocol.md, "Limits"). Pure functions, no DOM: unit-tested with `node --test tests/js/`.
 */
import { gettext, interpolate, ngettext } from "../i18n.js";
import { closeOutcome } from "./retry.js";

export const CLOSE_THROTTLED = 4429;

/** The refusal an `error` message carries ({limit, message, resetsAt: Date | null}), or null when it is not one. */
export function limitRefusal(msg) {
  if (!msg || msg.type !== "error" || msg.code !== "limit_reached") return null;
  const resetsAt = msg.resets_at ? new Date(msg.resets_at) : null;
  return {
    limit: String(msg.limit ?? ""),
    message: String(msg.message ?? ""),
    resetsAt: resetsAt && !Number.isNaN(resetsAt.getTime()) ? resetsAt : null,
  };
}

/**
 * What the page does after close `code`, given the refusal received before it (or null): "limit"
 * (show why and until when; never reconnect) for a 4429 after a limit refusal, else closeOutcome(code).
 */
export function outcomeAfterClose(code, refusal) {
  return code === CLOSE_THROTTLED && refusal ? "limit" : closeOutcome(code);
}

/**
 * Whether Start stays disabled after `refusal`, and until when. A windowed limit would refuse every
 * Start before it resets, so Start waits (a button that can only fail asks for the microphone and
 * disappoints); a limit with no reset time (conversations at once, the longest conversation) is lifted
 * by something the user does, so Start stays enabled.
 */
export function startGate(refusal, now) {
  if (!refusal?.resetsAt || refusal.resetsAt.getTime() <= now.getTime()) return { disabled: false, until: null };
  return { disabled: true, until: refusal.resetsAt };
}

/** The calendar day of `date` in `timeZone` (the browser's when undefined), as YYYY-MM-DD. */
function dayKey(date, timeZone) {
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(date);
}

/**
 * When a limit resets, in the user's local time: "in 42 minutes" within the hour, "at 00:00" later
 * today, "tomorrow at 00:00", else "on 1 Dec at 00:00". `timeZone` is for tests.
 */
export function resetPhrase(resetsAt, now, { locale = undefined, timeZone = undefined } = {}) {
  const ms = resetsAt.getTime() - now.getTime();
  if (ms <= 0) return gettext("now");
  if (ms <= 60 * 60_000) {
    const minutes = Math.max(1, Math.ceil(ms / 60_000));
    return interpolate(ngettext("in %(minutes)s minute", "in %(minutes)s minutes", minutes), { minutes });
  }
  const time = new Intl.DateTimeFormat(locale, { timeZone, hour: "2-digit", minute: "2-digit" }).format(resetsAt);
  const day = dayKey(resetsAt, timeZone);
  if (day === dayKey(now, timeZone)) return interpolate(gettext("at %(time)s"), { time });
  if (day === dayKey(new Date(now.getTime() + 24 * 60 * 60_000), timeZone)) {
    return interpolate(gettext("tomorrow at %(time)s"), { time });
  }
  const date = new Intl.DateTimeFormat(locale, { timeZone, day: "numeric", month: "short" }).format(resetsAt);
  return interpolate(gettext("on %(date)s at %(time)s"), { date, time });
}

/** Which limit was reached, in the page's language; a limit this page does not know keeps the server's words. */
export function limitReason(refusal) {
  switch (refusal.limit) {
    case "audio_per_day": return gettext("You have reached your daily audio limit.");
    case "cost_per_day": return gettext("You have reached your daily cost limit.");
    case "cost_per_month": return gettext("You have reached your monthly cost limit.");
    case "new_per_hour": return gettext("You have started as many conversations in the last hour as you may.");
    case "concurrent": return gettext("You already have as many conversations going as you may. End one (or close its tab and wait a moment) to start another.");
    case "conversation_minutes": return gettext("This conversation reached the longest a conversation may run. It is saved: press Start to continue it.");
    default: return refusal.message || gettext("You have reached one of your limits.");
  }
}

/** The words the page shows after a limit refusal: the reason, and when Start works again. */
export function refusalText(refusal, now, options = {}) {
  const reason = limitReason(refusal);
  const gate = startGate(refusal, now);
  if (!gate.disabled) return reason;
  const when = resetPhrase(gate.until, now, options);
  return `${reason} ${interpolate(gettext("It resets %(when)s; you can press Start again then."), { when })}`;
}

/** How long to wait before re-checking the gate: setTimeout cannot wait past about 24.8 days. */
export function gateDelay(gate, now) {
  if (!gate.disabled) return null;
  return Math.min(2_147_000_000, Math.max(0, gate.until.getTime() - now.getTime()));
}
