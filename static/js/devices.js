/**
 * The microphone chooser: lists audio inputs, remembers the choice, and follows devices coming and going.
 */

import { gettext, interpolate } from "./i18n.js";

const STORAGE_KEY = "voice.microphone";

/** Returns the plain-language message for a failure to open the microphone. */
export function micErrorMessage(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return gettext("The microphone is blocked. Allow it with the icon at the left of the address bar (or in the browser's site settings), then press Start again.");
    case "NotFoundError":
    case "OverconstrainedError":
      return gettext("No microphone was found. Connect one, then press Start again.");
    case "NotReadableError":
      return gettext("The microphone is in use by another application. Close it, then press Start again.");
    default:
      return gettext("The microphone could not be opened. Check that this page is served over HTTPS and that a microphone is connected.");
  }
}

/** True when the user (or the browser's policy) refused the microphone, rather than it failing. */
export const isMicBlocked = (error) => error?.name === "NotAllowedError" || error?.name === "SecurityError";

/** Reads the remembered device id; storage may be off (private mode, blocked cookies). */
export function remembered() {
  try {
    return localStorage.getItem(STORAGE_KEY) || "";
  } catch {
    return "";
  }
}

function remember(deviceId) {
  try {
    if (deviceId) localStorage.setItem(STORAGE_KEY, deviceId);
    else localStorage.removeItem(STORAGE_KEY);
  } catch {
    // Not remembered across visits, but the choice still applies now.
  }
}

/** Fills a <select> with the audio inputs; "" is the system default. Calls `onChange(deviceId)` when the user picks one. */
export class MicrophoneChooser {
  constructor(select, { onChange = () => {}, onDevicesChanged = () => {} } = {}) {
    this.select = select;
    this.onChange = onChange;
    this.onDevicesChanged = onDevicesChanged;
    this.wanted = remembered(); // Kept even while that device is unplugged, so it is picked again on return.
    this.ids = new Set();
    const media = navigator.mediaDevices;
    if (!media?.enumerateDevices) {
      select.disabled = true;
      return;
    }
    select.addEventListener("change", () => {
      this.wanted = select.value;
      remember(this.wanted);
      this.onChange(this.wanted);
    });
    media.addEventListener("devicechange", async () => {
      await this.refresh();
      this.onDevicesChanged();
    });
    this.refresh();
  }

  /** The device to open: the remembered one while it is connected, otherwise the system default (""). */
  get deviceId() {
    return this.ids.has(this.wanted) ? this.wanted : "";
  }

  /** Whether a device id is among the connected inputs ("" always is). */
  has(deviceId) {
    return !deviceId || this.ids.has(deviceId);
  }

  /** Re-reads the inputs; labels only appear once the page has had microphone permission. */
  async refresh() {
    let devices = [];
    try {
      devices = await navigator.mediaDevices.enumerateDevices();
    } catch {
      return;
    }
    // Chromium lists a "default" alias of another entry; "" (our own first option) stands for it.
    const inputs = devices.filter((d) => d.kind === "audioinput" && d.deviceId && d.deviceId !== "default");
    this.ids = new Set(inputs.map((d) => d.deviceId));
    const options = [new Option(gettext("System default microphone"), "")];
    inputs.forEach((device, index) => {
      const name = device.label || interpolate(gettext("Microphone %(number)s"), { number: index + 1 });
      options.push(new Option(name, device.deviceId)); // Option() sets text, never markup.
    });
    this.select.replaceChildren(...options);
    this.select.value = this.deviceId;
  }
}
