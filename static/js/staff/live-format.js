/**
 * The live-sessions table as text: one row of `/staff/live.json` into the strings of its cells.
 *
 * Pure functions, no DOM: unit-tested with `node --test tests/js/`.
 */

/** A duration in whole seconds as a clock reads it: 0:07, 12:34 or 1:02:03 (negative counts as zero). */
export function clock(seconds) {
  const total = Math.max(0, Math.floor(Number(seconds) || 0));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** A running cost in USD (a decimal string, or null while usage has no cost) to four places, or a dash. */
export function formatCost(cost) {
  if (cost === null || cost === undefined || cost === "") return "—";
  const value = Number(cost);
  return Number.isFinite(value) ? `$${value.toFixed(4)}` : "—";
}

/** A token count as a whole number, or 0 when missing. */
export function formatTokens(tokens) {
  const value = Math.floor(Number(tokens));
  return Number.isFinite(value) && value > 0 ? String(value) : "0";
}

/**
 * The cells of one row, in the table's column order, and what its End form needs.
 * `elapsedS` is how long ago the JSON was fetched, so the duration keeps counting between refreshes.
 */
export function rowCells(row, elapsedS = 0) {
  return {
    conversationId: String(row.conversation_id),
    username: String(row.username ?? ""),
    endUrl: String(row.end_url ?? ""),
    cells: [
      String(row.username ?? ""),
      String(row.started_label ?? ""),
      clock((Number(row.duration_s) || 0) + elapsedS),
      formatTokens(row.tokens),
      formatCost(row.cost),
      String(row.worker ?? ""),
      String(row.deployment ?? ""),
    ],
  };
}
