/**
 * The microphone level meter: shows the capture worklet's RMS per batch, redrawn at most once a frame.
 */

const FLOOR_DB = -60; // RMS at or below this shows as an empty meter.

/** Maps an RMS level (0..1) to 0..100 on a decibel scale, which matches how loud speech feels. */
export function levelPercent(rms) {
  if (!(rms > 0)) return 0;
  const db = 20 * Math.log10(rms);
  return Math.round(Math.min(100, Math.max(0, ((db - FLOOR_DB) / -FLOOR_DB) * 100)));
}

/** Drives an element with role="meter": its aria-valuenow and a `--level` custom property for the bar. */
export class LevelMeter {
  constructor(element) {
    this.element = element;
    this.pending = null; // Latest level not drawn yet.
    this.frame = 0;
    this.shown = -1;
  }

  /** Records a new level; it is drawn on the next animation frame, however many arrive before it. */
  set(rms) {
    this.pending = rms;
    if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.frame = 0;
    const percent = levelPercent(this.pending);
    if (percent === this.shown) return;
    this.shown = percent;
    this.element.style.setProperty("--level", String(percent / 100));
    this.element.setAttribute("aria-valuenow", String(percent));
  }

  /** Empties the meter (the microphone is off). */
  reset() {
    this.set(0);
  }
}
