/**
 * Transcript bubbles drawn from the transcript model (conversation/transcript-model.js).
 *
 * The model decides what the transcript holds; this view only keeps the DOM in step with it,
 * and all model and user text goes in through textContent.
 */
import { gettext } from "./i18n.js";
import {
  emptyTranscript, itemEntry, noTranscriptText, reduce, separate, toolEntry, toolsRunning, transcriptFailedText,
  transcriptOf,
} from "./conversation/transcript-model.js";

/** The label above a bubble, in the page's language. */
function label(role) {
  if (role === "user") return gettext("You");
  if (role === "assistant") return gettext("Assistant");
  return role;
}

/** Reads the server-rendered bubbles and tool lines of a stored conversation into entries, adopting their elements. */
function readStored(container, elements) {
  const entries = [];
  for (const node of container.children) {
    if (node.matches(".tool-line[data-item-id]")) {
      const entry = toolEntry(node.dataset.itemId, {
        text: node.querySelector(".text")?.textContent ?? "",
        done: true,
        name: node.dataset.toolName ?? "",
        toolState: node.dataset.state || "completed",
      });
      entries.push(entry);
      elements.set(entry.key, node);
    } else if (node.matches(".bubble[data-item-id]")) {
      const entry = itemEntry(node.dataset.role, node.dataset.itemId, {
        text: node.querySelector(".text")?.textContent ?? "",
        done: true,
        interrupted: node.classList.contains("interrupted"),
        problem: node.querySelector(".problem")?.textContent ?? "",
        transcriptFailed: node.classList.contains("transcript-failed"),
      });
      entries.push(entry);
      elements.set(entry.key, node);
    }
  }
  return entries;
}

export class Transcript {
  constructor(container) {
    this.container = container;
    this.elements = new Map(); // key → element
    this.drawn = new Map(); // key → the entry the element shows
    const stored = readStored(container, this.elements);
    this.model = stored.length ? transcriptOf(stored) : emptyTranscript();
    for (const entry of this.model.entries) this.drawn.set(entry.key, entry);
  }

  /** Applies one server message. */
  apply(message) {
    this.set(reduce(this.model, message));
  }

  /** Adds a visual break before a new conversation, keeping the previous one readable above it. */
  separate(text) {
    this.set(separate(this.model, text));
  }

  /**
   * The current conversation's bubbles as {itemId, role, text}, and its tool lines as {itemId, role: "tool",
   * text, name, state}: a test and debugging aid.
   */
  items() {
    return this.model.entries.slice(this.model.start)
      .filter((e) => e.kind === "item")
      .map((e) => (e.role === "tool"
        ? { itemId: e.key, role: e.role, text: e.text, name: e.name, state: e.toolState }
        : { itemId: e.key, role: e.role, text: e.text }));
  }

  /** Whether a tool the assistant called is still running. */
  toolsRunning() {
    return toolsRunning(this.model);
  }

  set(model) {
    if (model === this.model) return;
    this.model = model;
    this.stickToBottom(() => this.draw());
  }

  /** Creates, updates, orders and removes elements so the container shows the model. */
  draw() {
    const keep = new Set();
    let previous = null;
    for (const entry of this.model.entries) {
      keep.add(entry.key);
      let element = this.elements.get(entry.key);
      if (!element || this.drawn.get(entry.key)?.kind !== entry.kind) {
        element?.remove();
        element = document.createElement(entry.kind === "item" ? "div" : "p");
        this.elements.set(entry.key, element);
        this.drawn.delete(entry.key);
      }
      if (this.drawn.get(entry.key) !== entry) {
        fill(element, entry);
        this.drawn.set(entry.key, entry);
      }
      const wanted = previous ? previous.nextSibling : this.container.firstChild;
      if (wanted !== element) this.container.insertBefore(element, wanted);
      previous = element;
    }
    for (const [key, element] of this.elements) {
      if (!keep.has(key)) {
        element.remove();
        this.elements.delete(key);
        this.drawn.delete(key);
      }
    }
  }

  /** Runs a DOM change and keeps the view pinned to the newest text unless the user scrolled up to read. */
  stickToBottom(change) {
    const c = this.container;
    const atBottom = c.scrollHeight - c.scrollTop - c.clientHeight < 40;
    change();
    if (atBottom) c.scrollTop = c.scrollHeight;
  }
}

/** The note under a tool line that did not give the assistant a result. */
function toolNote(state) {
  if (state === "failed") return gettext("(it did not work; the assistant was told why)");
  return "";
}

/**
 * Makes `element` show a tool line: a small line with an icon (styled by its state), not a bubble.
 * Its words come from the tool and the model, so they go in as textContent only.
 */
function fillTool(element, entry) {
  element.className = "tool-line";
  element.classList.toggle("done", entry.done);
  element.dataset.role = "tool";
  element.dataset.itemId = entry.key;
  element.dataset.state = entry.toolState;
  element.dataset.toolName = entry.name;
  const icon = document.createElement("span");
  icon.className = "tool-icon";
  icon.setAttribute("aria-hidden", "true");
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = entry.text;
  const parts = [icon, text];
  const words = toolNote(entry.toolState);
  if (words) {
    const note = document.createElement("span");
    note.className = "note";
    note.textContent = words;
    parts.push(note);
  }
  element.replaceChildren(...parts);
}

/** Makes `element` show `entry`: a bubble, a tool line, a quiet note or a divider. */
function fill(element, entry) {
  if (entry.kind === "item" && entry.role === "tool") {
    fillTool(element, entry);
    return;
  }
  if (entry.kind === "divider") {
    element.className = "divider";
    element.textContent = entry.text;
    return;
  }
  if (entry.kind === "note") {
    element.className = "transcript-note";
    element.textContent = entry.text;
    return;
  }
  element.className = "bubble";
  element.classList.toggle("pending", entry.pending);
  element.classList.toggle("done", entry.done);
  element.classList.toggle("interrupted", entry.interrupted);
  element.classList.toggle("transcript-failed", entry.transcriptFailed);
  element.classList.toggle("cut-short", Boolean(entry.problem));
  element.dataset.role = entry.role;
  element.dataset.itemId = entry.key;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = label(entry.role);
  const text = document.createElement("p");
  text.className = "text";
  text.textContent = entry.text || (entry.done && !entry.transcriptFailed ? noTranscriptText() : "");
  const parts = [who, text];
  const note = (className, words) => {
    const span = document.createElement("span");
    span.className = className;
    span.textContent = words;
    parts.push(span);
  };
  if (entry.transcriptFailed) note("note transcript-failed-note", transcriptFailedText());
  if (entry.interrupted) note("note", gettext("(interrupted)"));
  if (entry.problem) note("note problem", entry.problem);
  element.replaceChildren(...parts);
}
