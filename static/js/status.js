/**
 * The status indicator: one state at a time, shown as a data attribute and in words.
 */

const TEXT = {
  idle: "Press Start to talk.",
  connecting: "Connecting…",
  listening: "Listening: go ahead and speak.",
  "user-speaking": "Hearing you…",
  thinking: "Thinking…",
  "assistant-speaking": "Assistant is speaking. Speak to interrupt.",
  error: "Stopped.",
};

/** Shows the conversation state in `#status` (data-state drives the styles) and tells a listener. */
export class Status {
  constructor(element, onChange = () => {}) {
    this.element = element;
    this.onChange = onChange;
    // Server-rendered strings win over the defaults, so translations of the template apply here too.
    this.text = { ...TEXT };
    for (const state of Object.keys(TEXT)) {
      const translated = element.dataset[`text${state.replace(/(^|-)(\w)/g, (_, __, c) => c.toUpperCase())}`];
      if (translated) this.text[state] = translated;
    }
    this.set(element.dataset.state || "idle");
  }

  /** Switches to `state` and updates the words next to the indicator. */
  set(state) {
    this.state = state;
    this.element.dataset.state = state;
    this.element.querySelector(".status-text").textContent = this.text[state] ?? state;
    this.onChange(state);
  }
}
