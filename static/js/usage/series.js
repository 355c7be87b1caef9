/**
 * The usage dashboard's figures shaped for its charts, and money and minutes written out. No DOM.
 */

/** A number from a figure the server sent: costs come as decimal strings; anything unreadable is 0. */
export function toNumber(value) {
  const number = typeof value === "number" ? value : Number.parseFloat(value);
  return Number.isFinite(number) ? number : 0;
}

/**
 * The per-day token chart's labels and stacked series (input not cached, cached input, output), one
 * value per day in the order given.
 */
export function daySeries(days) {
  const rows = Array.isArray(days) ? days : [];
  return {
    labels: rows.map((row) => String(row.day)),
    input: rows.map((row) => toNumber(row.input)),
    cached: rows.map((row) => toNumber(row.cached)),
    output: rows.map((row) => toNumber(row.output)),
  };
}

/** The per-user chart's labels and costs in dollars, the biggest first (the server sends them so). */
export function userSeries(users) {
  const rows = Array.isArray(users) ? users : [];
  return {
    labels: rows.map((row) => String(row.name)),
    cost: rows.map((row) => toNumber(row.cost)),
  };
}

/**
 * Dollars as the conversation page writes them: "$0.0123" under a dollar (replies cost fractions of a
 * cent), "$12.35" from a dollar up. An axis passes its largest value as `scale`, so all its ticks agree.
 */
export function formatUsd(value, locale = "en", scale = value) {
  const amount = toNumber(value);
  const places = Math.abs(toNumber(scale)) < 1 ? 4 : 2;
  return "$" + amount.toLocaleString(locale, { minimumFractionDigits: places, maximumFractionDigits: places });
}

/** Milliseconds of audio as minutes to a hundredth, as the tables show them ("1.50"). */
export function formatMinutes(ms, locale = "en") {
  // Whole milliseconds, so the rounding is exact (half up, as the server rounds): no 14.949999… from floats.
  const minutes = Math.floor((Math.round(toNumber(ms)) + 300) / 600) / 100;
  return minutes.toLocaleString(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

/** A whole number of tokens with the locale's grouping ("12,345"). */
export function formatTokens(value, locale = "en") {
  return Math.round(toNumber(value)).toLocaleString(locale);
}
