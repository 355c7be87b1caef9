/**
 * Transcript bubbles: one per conversation item, in the order the items took their place.
 */

import { gettext } from "./i18n.js";

/** The label above a bubble, in the page's language. */
function label(role) {
  if (role === "user") return gettext("You");
  if (role === "assistant") return gettext("Assistant");
  return role;
}

/** Keeps one bubble per item id inside the transcript region; all text goes in through textContent. */
export class Transcript {
  constructor(container) {
    this.container = container;
    this.bubbles = new Map();
  }

  /** Returns the bubble for `itemId`, creating it at the end when the item is new. */
  ensure(role, itemId, placeholder = "") {
    let bubble = this.bubbles.get(itemId);
    if (bubble) return bubble;
    bubble = document.createElement("div");
    bubble.className = "bubble pending";
    bubble.dataset.role = role;
    bubble.dataset.itemId = itemId;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = label(role);
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = placeholder;
    bubble.append(who, text);
    this.bubbles.set(itemId, bubble);
    this.stickToBottom(() => this.container.append(bubble));
    return bubble;
  }

  /** Appends a transcript piece; a user transcript fills the bubble made earlier by user_item. */
  append(role, itemId, delta) {
    const bubble = this.ensure(role, itemId);
    const text = bubble.querySelector(".text");
    // The "…" placeholder is replaced by the first real piece of text.
    if (bubble.classList.contains("pending")) {
      text.textContent = "";
      bubble.classList.remove("pending");
    }
    this.stickToBottom(() => text.append(delta));
  }

  /** Replaces the bubble's text with the item's final transcript. */
  finish(role, itemId, finalText) {
    const bubble = this.ensure(role, itemId);
    bubble.classList.remove("pending");
    bubble.classList.add("done");
    // An empty final transcript (nothing was recognised) keeps whatever was shown rather than blanking it.
    if (finalText || !bubble.querySelector(".text").textContent) {
      bubble.querySelector(".text").textContent = finalText || gettext("(no transcript)");
    }
  }

  /** Marks an assistant bubble as cut short by the user. */
  markInterrupted(itemId) {
    const bubble = this.bubbles.get(itemId);
    if (!bubble || bubble.classList.contains("interrupted")) return;
    bubble.classList.add("interrupted");
    const note = document.createElement("span");
    note.className = "note";
    note.textContent = gettext("(interrupted)");
    bubble.append(note);
  }

  /** Adds a visual break before a new conversation, keeping the previous one readable above it. */
  separate(label) {
    if (!this.container.lastElementChild) return;
    const divider = document.createElement("p");
    divider.className = "divider";
    divider.textContent = label;
    this.container.append(divider);
  }

  /** Runs a DOM change and keeps the view pinned to the newest text unless the user scrolled up to read. */
  stickToBottom(change) {
    const c = this.container;
    const atBottom = c.scrollHeight - c.scrollTop - c.clientHeight < 40;
    change();
    if (atBottom) c.scrollTop = c.scrollHeight;
  }
}
