/**
 * Which transcript line a recording is playing: pure arithmetic on the lines' start times, no DOM.
 */

/**
 * The index of the last start at or before `time`, or -1 before the first (or for a time that is not
 * a number). `starts` must be sorted ascending; any unit works as long as `time` uses the same one.
 */
export function activeLine(starts, time) {
  if (typeof time !== "number" || Number.isNaN(time)) return -1;
  let low = 0;
  let high = starts.length; // the answer is low - 1 once low === high
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (starts[middle] <= time) low = middle + 1;
    else high = middle;
  }
  return low - 1;
}

/**
 * The entries ordered by their `startMs`, ties kept in page order: a recording's timeline need not
 * follow the transcript's order exactly (a reply can start before the user's words are transcribed).
 */
export function byStart(entries) {
  return entries
    .filter((entry) => Number.isFinite(entry.startMs))
    .map((entry, index) => ({ entry, index }))
    .sort((a, b) => a.entry.startMs - b.entry.startMs || a.index - b.index)
    .map(({ entry }) => entry);
}
