/**
 * The talk page's meter: today's audio minutes and cost (and this month's cost) against the user's limits.
 *
 * Turns a `usage` message (docs/browser-protocol.md) into rows of words and shares. Pure, no DOM:
 * unit-tested with `node --test tests/js/`.
 */
import { gettext, interpolate } from "../i18n.js";
import { formatUsd, toNumber } from "../usage/series.js";

/** Share of a limit at which a row is marked as nearly used up (the server warns there too). */
export const HIGH = 0.8;

/** Minutes with one decimal ("3.5"), in the page's locale. */
export function formatMinutesValue(minutes, locale = "en") {
  return toNumber(minutes).toLocaleString(locale, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
}

/**
 * One row per dimension: {dimension, text, share} where share is used/limit capped at 1, or null when
 * there is no limit (the page then shows no bar). Returns [] for a message without figures.
 */
export function meterRows(usage, locale = "en") {
  if (!usage?.today || !usage.limits) return [];
  const limits = usage.limits;
  const share = (used, limit) => (limit === null || limit === undefined || toNumber(limit) <= 0
    ? null : Math.min(1, toNumber(used) / toNumber(limit)));
  const row = (dimension, label, used, limit, format) => ({
    dimension,
    share: share(used, limit),
    text: limit === null || limit === undefined
      ? interpolate(gettext("%(label)s: %(used)s (no limit)"), { label, used: format(used) })
      : interpolate(gettext("%(label)s: %(used)s of %(limit)s"), { label, used: format(used), limit: format(limit) }),
  });
  const minutes = (value) => interpolate(gettext("%(minutes)s min"), { minutes: formatMinutesValue(value, locale) });
  const usd = (value) => formatUsd(value, locale, toNumber(value) === 0 ? 0.5 : value);
  return [
    row("audio_per_day", gettext("Audio today"), usage.today.audio_minutes, limits.audio_minutes_per_day, minutes),
    row("cost_per_day", gettext("Cost today"), usage.today.cost_usd, limits.cost_per_day_usd, usd),
    row("cost_per_month", gettext("Cost this month"), usage.month?.cost_usd ?? 0, limits.cost_per_month_usd, usd),
  ];
}

/** Whether a row's bar is in the warning zone. */
export function isHigh(row) {
  return row.share !== null && row.share >= HIGH;
}
