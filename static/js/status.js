/**
 * The status indicator: one state at a time, shown as a data attribute and in words.
 */

import { gettext } from "./i18n.js";

/** Default words per state; the template's data-text-* attributes (translated server-side) win. */
function defaultText() {
  return {
    idle: gettext("Press Start to talk."),
    connecting: gettext("Connecting…"),
    listening: gettext("Listening: go ahead and speak."),
    "listening-ptt": gettext("Ready: hold the Talk button, or the Space bar, while you speak."),
    "user-speaking": gettext("Hearing you…"),
    thinking: gettext("Thinking…"),
    working: gettext("Working: the assistant is looking something up…"),
    "assistant-speaking": gettext("Assistant is speaking. Speak to interrupt."),
    "assistant-speaking-ptt": gettext("Assistant is speaking. Hold the Talk button to interrupt."),
    "mic-blocked": gettext("The microphone is blocked. Allow it with the icon at the left of the address bar (or in the browser's site settings), then press Start again."),
    reconnecting: gettext("Reconnecting…"),
    unreachable: gettext("Cannot reach the server. Check your connection; retrying…"),
    "no-audio": gettext("This browser cannot record audio on this page."),
    error: gettext("Stopped."),
  };
}

/** `user-speaking` → `textUserSpeaking`, the dataset key of `data-text-user-speaking`. */
const datasetKey = (key) => `text${key.replace(/(^|-)(\w)/g, (_, __, c) => c.toUpperCase())}`;

/** Shows the conversation state in `#status` (data-state drives the styles) and tells a listener. */
export class Status {
  constructor(element, onChange = () => {}) {
    this.element = element;
    this.onChange = onChange;
    this.text = defaultText();
    for (const key of Object.keys(this.text)) {
      const translated = element.dataset[datasetKey(key)];
      if (translated) this.text[key] = translated;
    }
    /** "ptt" while push-to-talk is the turn mode: some states then explain a different gesture. */
    this.variant = "";
    this.set(element.dataset.state || "idle");
  }

  /** Switches to `state` and updates the words next to the indicator. */
  set(state) {
    this.state = state;
    this.element.dataset.state = state;
    this.element.dataset.variant = this.variant;
    const words = (this.variant && this.text[`${state}-${this.variant}`]) || this.text[state] || state;
    this.element.querySelector(".status-text").textContent = words;
    this.onChange(state);
  }

  /** Changes the variant and refreshes the words of the current state. */
  setVariant(variant) {
    if (variant === this.variant) return;
    this.variant = variant;
    this.set(this.state);
  }
}
