/**
 * Whether the live conversation is being recorded, from the server's messages. Pure: no DOM.
 *
 * `ready` and `settings_applied` carry `recording` (bool). A `ready` without it comes from a server
 * that does not record; a `settings_applied` without it changes nothing.
 */

/** Whether the conversation is recorded after server message `msg`, given whether it was before. */
export function recordingAfter(recording, msg) {
  const said = typeof msg?.recording === "boolean" ? msg.recording : null;
  if (msg?.type === "ready") return said ?? false;
  if (msg?.type === "settings_applied") return said ?? recording;
  return recording;
}
