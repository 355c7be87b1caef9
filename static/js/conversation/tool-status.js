/**
 * What the status line says while the assistant uses a tool: pure rules, unit-tested with `node --test`.
 *
 * A tool runs after the answer that called it is done, so without this the status would read "Listening"
 * while the server is busy on the user's behalf.
 */

/** States a tool starting may replace: the user is not speaking and nothing is being played. */
const QUIET = new Set(["listening", "thinking", "working"]);

/**
 * The status after a `tool_started` or `tool_finished` message, given the current one and whether a tool
 * of the conversation still runs; any other message leaves it as it is.
 */
export function statusAfterTool(current, msg, stillRunning) {
  if (msg?.type === "tool_started") return QUIET.has(current) ? "working" : current;
  if (msg?.type === "tool_finished" && current === "working" && !stillRunning) {
    // Once its tools are done the assistant answers again; a cancelled call gets no answer.
    return msg.status === "completed" ? "thinking" : "listening";
  }
  return current;
}

/** The status once the assistant's voice stops: back to working if a tool it called is still running. */
export function statusAfterSpeaking(stillRunning) {
  return stillRunning ? "working" : "listening";
}

/**
 * The status once the conversation is live again (a new socket, a resumed conversation): working if its
 * history shows a tool still running on the server, else listening.
 */
export function statusWhenLive(current, stillRunning) {
  if (stillRunning) return QUIET.has(current) || current === "connecting" || current === "reconnecting" ? "working" : current;
  return "listening";
}
