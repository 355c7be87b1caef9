/**
 * The push-to-talk button: held with a pointer, or with the Space bar anywhere Space has no other job.
 */

/** Elements where Space already means something: typing, choosing, or (when focused from the keyboard) pressing. */
function spaceBelongsTo(element, button) {
  if (!element || element === button || element === document.body) return false;
  if (element.isContentEditable) return true;
  if (element.matches("input, textarea, select")) return true;
  // A control reached with Tab keeps Space for itself; one merely clicked (no focus ring) does not.
  return element.matches("button, a[href], summary, [role=button], [tabindex]") && element.matches(":focus-visible");
}

/** Calls `onPress()` when the button (or Space) goes down and `onRelease()` when it comes up, once each. */
export class PushToTalk {
  constructor(button, { onPress, onRelease }) {
    this.button = button;
    this.onPress = onPress;
    this.onRelease = onRelease;
    this.held = false;
    this.enabled = false;
    this.pointerId = null;

    button.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || this.pointerId !== null) return;
      event.preventDefault(); // No text selection, no focus-stealing long-press menus.
      this.pointerId = event.pointerId;
      this.press();
    });
    const pointerEnd = (event) => {
      if (event.pointerId !== this.pointerId) return;
      this.pointerId = null;
      this.release();
    };
    // Sliding off the button lets go, like releasing it; a cancelled touch (a scroll, a call) too.
    for (const type of ["pointerup", "pointercancel", "pointerleave"]) button.addEventListener(type, pointerEnd);
    button.addEventListener("contextmenu", (event) => event.preventDefault());
    // The native click (Enter, Space, assistive tech) is replaced by the hold gesture handled here.
    button.addEventListener("click", (event) => event.preventDefault());
    button.addEventListener("keydown", (event) => {
      if (event.key === "Enter") this.keyDown(event);
    });
    button.addEventListener("keyup", (event) => {
      if (event.key === "Enter") this.keyUp(event);
    });

    document.addEventListener("keydown", (event) => {
      if (event.code === "Space" && !spaceBelongsTo(document.activeElement, button)) this.keyDown(event);
    });
    document.addEventListener("keyup", (event) => {
      if (event.code === "Space" && this.keyHeld) this.keyUp(event);
    });
    // A key or pointer held while the window loses focus never reports its release: let go now.
    window.addEventListener("blur", () => this.cancel());
    document.addEventListener("visibilitychange", () => { if (document.hidden) this.cancel(); });
  }

  keyDown(event) {
    if (!this.enabled) return;
    event.preventDefault(); // Space would scroll the page or click the focused button.
    if (event.repeat || this.keyHeld) return; // Auto-repeat while held is one press.
    this.keyHeld = true;
    this.press();
  }

  keyUp(event) {
    event.preventDefault();
    if (!this.keyHeld) return;
    this.keyHeld = false;
    this.release();
  }

  /** Shows or hides the button; hiding it lets go of a press in progress. */
  setEnabled(enabled) {
    if (!enabled) this.cancel();
    this.enabled = enabled;
  }

  press() {
    if (!this.enabled || this.held) return;
    this.held = true;
    this.button.setAttribute("aria-pressed", "true");
    this.onPress();
  }

  release() {
    if (!this.held || this.keyHeld || this.pointerId !== null) return; // Still held by the other input.
    this.held = false;
    this.button.setAttribute("aria-pressed", "false");
    this.onRelease();
  }

  /** Lets go of every input at once. */
  cancel() {
    this.keyHeld = false;
    this.pointerId = null;
    this.release();
  }
}
