/**
 * The transcript as data: what the server's messages do to the list of bubbles, notes and dividers.
 *
 * Pure functions over plain objects (no DOM), so the rules are unit-tested with `node --test`;
 * transcript.js draws the result. A model is never changed in place: each message returns a new
 * model, and entries that did not change keep their identity, so drawing only touches what changed.
 */
import { gettext } from "../i18n.js";

/** A model with no entries; `start` is where the current conversation's entries begin. */
export function emptyTranscript() {
  return { entries: [], start: 0, seq: 0 };
}

/** A model holding `entries` (e.g. read from server-rendered bubbles) as the current conversation. */
export function transcriptOf(entries) {
  return { entries: [...entries], start: 0, seq: entries.length };
}

/** A bubble entry for one conversation item. */
export function itemEntry(role, itemId, fields = {}) {
  return {
    kind: "item", key: itemId, role, text: "", pending: false, done: false,
    interrupted: false, problem: "", transcriptFailed: false, ...fields,
  };
}

/** Plain words for an answer that did not finish, from the response's status and reason. */
export function responseProblem(status, reason = "") {
  if (status === "incomplete") {
    if (reason === "max_output_tokens") return gettext("(cut short: the answer reached its length limit)");
    if (reason === "content_filter") return gettext("(cut short by the content filter)");
    return gettext("(cut short)");
  }
  if (status === "failed") return gettext("(this answer failed)");
  return "";
}

/** Plain words for a server `note` whose message is empty. */
export function noteText(code) {
  if (code === "session_renewed") return gettext("Session renewed");
  if (code === "history_trimmed") return gettext("Older turns were left out of the assistant's memory");
  return "";
}

/** The words for a user turn the service could not transcribe. */
export const transcriptFailedText = () => gettext("(could not be transcribed)");
/** The words shown when an item's final transcript is empty. */
export const noTranscriptText = () => gettext("(no transcript)");

/** Adds a divider before a new conversation (only when something is above it) and starts a new segment. */
export function separate(model, label) {
  if (!model.entries.length) return { ...model, start: 0 };
  const seq = model.seq + 1;
  const entries = [...model.entries, { kind: "divider", key: `divider-${seq}`, text: label }];
  return { entries, start: entries.length, seq };
}

/** The index of item `key` in the current conversation, or -1. */
function indexOf(model, key) {
  for (let i = model.start; i < model.entries.length; i++) {
    if (model.entries[i].key === key && model.entries[i].kind === "item") return i;
  }
  return -1;
}

/** Returns the model with item `key` created (at the end) or updated by `change(entry) → entry`. */
function upsert(model, role, key, change) {
  const i = indexOf(model, key);
  const entries = [...model.entries];
  if (i < 0) entries.push(change(role === "tool" ? toolEntry(key) : itemEntry(role, key)));
  else entries[i] = change(entries[i]);
  return { ...model, entries };
}

/** Appends a quiet line (not a bubble) to the current conversation. */
export function addNote(model, text) {
  const seq = model.seq + 1;
  return { ...model, entries: [...model.entries, { kind: "note", key: `note-${seq}`, text }], seq };
}

/** What the page says while a tool runs when the server gave no words of its own. */
export const workingText = () => gettext("Working on it…");

/** The states of a tool line: running, then how it ended. */
const TOOL_ENDINGS = new Set(["completed", "failed", "cancelled", "interrupted"]);

/**
 * The words a tool line shows once it ended: what it found (`summary`, from the tool: shown as text only),
 * or what stopped it in the page's own words (the server's words for those are not translated).
 */
export function toolText(state, summary = "") {
  if (state === "cancelled") return gettext("Cancelled: you went on before it finished.");
  if (state === "interrupted") return gettext("Interrupted: the conversation stopped while it ran.");
  if (summary) return summary;
  return state === "failed" ? gettext("The tool did not work.") : gettext("Done.");
}

/** A tool line's state from a `tool_finished` message: its status, with a completed call that failed as "failed". */
function finishedState(msg) {
  if (msg.status === "completed" || !TOOL_ENDINGS.has(msg.status)) return msg.ok === true ? "completed" : "failed";
  return msg.status;
}

/** A tool line (role "tool"): a function call the assistant made, its working text, then what it found. */
export function toolEntry(itemId, fields = {}) {
  return itemEntry("tool", itemId, { name: "", callId: "", toolState: "running", working: "", ...fields });
}

/** The entry a `history` tool item becomes; one with neither status nor summary is still running on the server. */
function historyToolEntry(item) {
  const fields = { name: String(item.name ?? ""), callId: String(item.call_id ?? "") };
  if (!item.status && !item.text) {
    return toolEntry(item.item_id, { ...fields, text: workingText(), working: workingText() });
  }
  const state = TOOL_ENDINGS.has(item.status) ? item.status : item.status ? "failed" : "completed";
  return toolEntry(item.item_id, { ...fields, toolState: state, text: toolText(state, String(item.text ?? "")), done: true });
}

/** The entry a `history` item becomes: everything the server stored, finished. */
function historyEntry(item) {
  if (item.role === "tool") return historyToolEntry(item);
  // The server stores a user turn it could not transcribe as "transcription_failed" (older builds said "failed").
  const failedTranscript = item.role === "user" && (item.status === "transcription_failed" || item.status === "failed");
  return itemEntry(item.role, item.item_id, {
    text: item.text || (failedTranscript ? "" : noTranscriptText()),
    done: true,
    interrupted: Boolean(item.interrupted),
    problem: item.role === "assistant" ? responseProblem(item.status) : "",
    transcriptFailed: failedTranscript,
  });
}

/** Applies one server message to the model; messages that do not touch the transcript return it unchanged. */
export function reduce(model, msg) {
  switch (msg?.type) {
    case "history": {
      // The server's list is the truth: replace the current conversation's entries, so a resume never duplicates.
      const items = Array.isArray(msg.items) ? msg.items.filter((item) => item && item.item_id) : [];
      const seen = new Set();
      const fresh = [];
      for (const item of items) {
        if (seen.has(item.item_id)) continue;
        seen.add(item.item_id);
        fresh.push(historyEntry(item));
      }
      return { ...model, entries: [...model.entries.slice(0, model.start), ...fresh] };
    }
    case "user_item":
      if (indexOf(model, msg.item_id) >= 0) return model;
      return upsert(model, "user", msg.item_id, (e) => ({ ...e, text: "…", pending: true }));
    case "assistant_item":
      if (indexOf(model, msg.item_id) >= 0) return model;
      return upsert(model, "assistant", msg.item_id, (e) => e);
    case "transcript":
      return upsert(model, msg.role, msg.item_id, (e) => ({
        ...e, text: (e.pending ? "" : e.text) + (msg.delta ?? ""), pending: false,
      }));
    case "transcript_done":
      return upsert(model, msg.role, msg.item_id, (e) => {
        // An empty final transcript keeps what was shown rather than blanking it.
        let text = msg.text || (e.pending ? "" : e.text);
        if (!text && !msg.failed) text = noTranscriptText();
        return { ...e, text, pending: false, done: true, transcriptFailed: Boolean(msg.failed) || e.transcriptFailed };
      });
    case "truncated":
      if (indexOf(model, msg.item_id) < 0) return model;
      return upsert(model, "assistant", msg.item_id, (e) => ({ ...e, interrupted: true }));
    case "response_done": {
      if (msg.status !== "failed" && msg.status !== "incomplete") return model;
      const problem = msg.message || responseProblem(msg.status, msg.reason);
      if (!msg.item_id) return addNote(model, problem);
      return upsert(model, "assistant", msg.item_id, (e) => ({ ...e, problem }));
    }
    case "tool_started":
      if (!msg.item_id) return model;
      return upsert(model, "tool", msg.item_id, (e) => {
        if (e.role !== "tool" || e.done) return e; // A line that already ended (e.g. from a resumed history) stays so.
        const working = typeof msg.text === "string" && msg.text ? msg.text : workingText();
        return { ...e, name: String(msg.name ?? ""), callId: String(msg.call_id ?? ""), toolState: "running", working, text: working };
      });
    case "tool_finished":
      if (!msg.item_id) return model;
      return upsert(model, "tool", msg.item_id, (e) => {
        if (e.role !== "tool") return e;
        const toolState = finishedState(msg);
        return {
          ...e, name: String(msg.name ?? e.name), callId: String(msg.call_id ?? e.callId), toolState, done: true,
          text: toolText(toolState, typeof msg.summary === "string" ? msg.summary : ""),
        };
      });
    case "note": {
      const text = msg.message || noteText(msg.code);
      return text ? addNote(model, text) : model;
    }
    default:
      return model;
  }
}

/** Whether a tool line of the current conversation is still running. */
export function toolsRunning(model) {
  return currentItems(model).some((e) => e.role === "tool" && e.toolState === "running");
}

/** The current conversation's item entries, in order (what a test or a resume compares). */
export function currentItems(model) {
  return model.entries.slice(model.start).filter((e) => e.kind === "item");
}
