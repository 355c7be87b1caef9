/**
 * The settings panel on the talk page: presets, the turn-taking fields that apply, and saving without a reload.
 */

import { gettext, interpolate } from "./i18n.js";

/**
 * Which fields each way of taking turns uses; the rest are hidden (but still submitted). A field box
 * marked data-modes="server_vad ..." says it itself; this map covers forms without the marks.
 */
const TURN_FIELDS = {
  server_vad: ["vad_threshold", "silence_duration_ms", "prefix_padding_ms"],
  semantic_vad: ["eagerness"],
  push_to_talk: [],
};
const ALL_TURN_FIELDS = Object.values(TURN_FIELDS).flat();

/** The element wrapping one field (label, input, help): marked data-field, or the nearest field-like box. */
function fieldBox(form, name) {
  const marked = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
  if (marked) return marked;
  const control = form.elements.namedItem(name);
  const element = control instanceof RadioNodeList ? control[0] : control;
  if (!element) return null;
  return element.closest(".field, .form-group, .form-row, p, div") || element.parentElement;
}

/** Wires the lead's settings form: `onSaved(settings)` runs after the server accepted new settings. */
export class SettingsPanel {
  constructor(form, { statusElement = form.querySelector(".form-status"), onSaved = () => {} } = {}) {
    this.form = form;
    this.statusElement = statusElement;
    this.onSaved = onSaved;
    this.saving = false;
    form.noValidate = true; // The server's messages, shown per field, are the one source of truth.

    for (const button of form.querySelectorAll("button.preset")) {
      button.addEventListener("click", () => this.applyPreset(button));
    }
    form.elements.namedItem("turn_detection")?.addEventListener("change", () => this.showTurnFields());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    this.showTurnFields();
  }

  /** The chosen way of taking turns, as the form shows it now. */
  get turnDetection() {
    return this.form.elements.namedItem("turn_detection")?.value || "";
  }

  /** Fills the instructions with a preset's text; nothing is saved until the user presses Save. */
  applyPreset(button) {
    const instructions = this.form.elements.namedItem("instructions");
    if (!instructions) return;
    instructions.value = button.dataset.instructions || "";
    instructions.dispatchEvent(new Event("input", { bubbles: true }));
    this.say(gettext("Preset filled in. Press Save to use it."));
  }

  /** Shows only the fields that the chosen way of taking turns uses. */
  showTurnFields() {
    const mode = this.turnDetection;
    const marked = this.form.querySelectorAll("[data-modes]");
    if (marked.length) {
      for (const box of marked) box.hidden = !box.dataset.modes.split(/\s+/).includes(mode);
      return;
    }
    const wanted = TURN_FIELDS[mode] ?? ALL_TURN_FIELDS;
    for (const name of ALL_TURN_FIELDS) {
      const box = fieldBox(this.form, name);
      if (box) box.hidden = !wanted.includes(name);
    }
  }

  /** Posts the form; shows the server's messages next to their fields, keeping what the user typed. */
  async save() {
    if (this.saving) return;
    this.saving = true;
    const submit = this.form.querySelector("button[type=submit], input[type=submit], button:not([type])");
    if (submit) submit.disabled = true;
    this.clearErrors();
    this.say(gettext("Saving…"));
    try {
      const token = this.form.elements.namedItem("csrfmiddlewaretoken")?.value || "";
      const response = await fetch(this.form.action, {
        method: "POST",
        body: new FormData(this.form),
        headers: { Accept: "application/json", "X-CSRFToken": token },
        credentials: "same-origin",
      });
      let answer = null;
      try {
        answer = await response.json();
      } catch {
        answer = null; // An HTML page: a CSRF failure, an expired login, a server error.
      }
      if (response.ok && answer?.ok) {
        this.say(gettext("Saved."));
        this.onSaved(answer.settings || {});
      } else if (answer && answer.errors) {
        this.showErrors(answer.errors);
        this.say(gettext("Not saved: please correct the fields marked below."));
      } else {
        this.say(interpolate(gettext("Not saved: the server answered with error %(status)s. Reload the page and try again."), { status: response.status }));
      }
    } catch {
      this.say(gettext("Not saved: the server could not be reached. Check your connection and try again."));
    } finally {
      this.saving = false;
      if (submit) submit.disabled = false;
    }
  }

  /** Puts each message after its field (or at the top of the form for form-wide ones). */
  showErrors(errors) {
    const general = [];
    let first = null;
    for (const [name, messages] of Object.entries(errors)) {
      const box = name === "__all__" ? null : fieldBox(this.form, name);
      if (!box) {
        general.push(...messages);
        continue;
      }
      box.hidden = false; // A message about a hidden field must still be seen.
      const list = this.errorList(messages);
      list.id = `settings-error-${name}`;
      box.append(list);
      const control = this.form.elements.namedItem(name);
      if (control && !(control instanceof RadioNodeList)) {
        control.setAttribute("aria-invalid", "true");
        const described = (control.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
        control.dataset.describedBefore = described.join(" ");
        control.setAttribute("aria-describedby", [...described, list.id].join(" "));
        first ??= control;
      }
    }
    if (general.length) {
      const list = this.errorList(general);
      list.setAttribute("role", "alert");
      this.form.prepend(list);
    }
    first?.focus();
  }

  /** A list of messages, each set as text (never markup). */
  errorList(messages) {
    const list = document.createElement("ul");
    list.className = "errorlist";
    list.dataset.clientErrors = "";
    for (const message of messages) {
      const item = document.createElement("li");
      item.textContent = message;
      list.append(item);
    }
    return list;
  }

  clearErrors() {
    for (const list of this.form.querySelectorAll("[data-client-errors]")) list.remove();
    for (const control of this.form.querySelectorAll("[aria-invalid=true]")) {
      control.removeAttribute("aria-invalid");
      const before = control.dataset.describedBefore;
      if (before) control.setAttribute("aria-describedby", before);
      else control.removeAttribute("aria-describedby");
      delete control.dataset.describedBefore;
    }
    this.showTurnFields();
  }

  /** Says something in the panel's status line (a polite live region). */
  say(message) {
    if (this.statusElement) this.statusElement.textContent = message;
  }
}

// On a page of its own (the settings page) the panel wires itself; the talk page passes its own callback.
const standalone = document.getElementById("settings-form");
if (standalone && !document.getElementById("talk")) new SettingsPanel(standalone);
