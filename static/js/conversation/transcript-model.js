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
  if (i < 0) entries.push(change(itemEntry(role, key)));
  else entries[i] = change(entries[i]);
  return { ...model, entries };
}

/** Appends a quiet line (not a bubble) to the current conversation. */
export function addNote(model, text) {
  const seq = model.seq + 1;
  return { ...model, entries: [...model.entries, { kind: "note", key: `note-${seq}`, text }], seq };
}

/** The entry a `history` item becomes: everything the server stored, finished. */
function historyEntry(item) {
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
      // Tool calls (role "tool") are not bubbles: until the page draws tool lines of its own, they are left out.
      const items = Array.isArray(msg.items) ? msg.items.filter((item) => item && item.item_id && item.role !== "tool") : [];
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
    case "note": {
      const text = msg.message || noteText(msg.code);
      return text ? addNote(model, text) : model;
    }
    default:
      return model;
  }
}

/** The current conversation's item entries, in order (what a test or a resume compares). */
export function currentItems(model) {
  return model.entries.slice(model.start).filter((e) => e.kind === "item");
}
