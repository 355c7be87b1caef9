/**
 * Capture worklet: resamples the microphone to 24 kHz mono PCM16 and posts one 40 ms batch at a time.
 *
 * Runs on the audio thread, so process() must not allocate: the only allocation is the batch
 * buffer that is transferred to the main thread once per 40 ms (a transferred buffer is detached
 * and cannot be reused).
 */

const TARGET_RATE = 24000;
const BATCH_SAMPLES = 960; // 40 ms at 24 kHz = 1920 bytes of PCM16.

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    // `sampleRate` is the context's native rate (44.1 k, 48 k, ...): input samples per output sample.
    this.step = sampleRate / TARGET_RATE;
    // Position of the next output sample, in input samples, relative to the current quantum's first
    // sample; -1 refers to the last sample of the previous quantum, kept in `previous`.
    this.position = 0;
    this.previous = 0;
    this.batch = new Int16Array(BATCH_SAMPLES);
    this.filled = 0;
    this.sumSquares = 0;
    // Linear interpolation alone aliases when decimating, so a 2nd-order low-pass (RBJ biquad)
    // below the 12 kHz Nyquist of the output runs first; it is skipped when upsampling.
    this.filter = sampleRate > TARGET_RATE ? lowPass(10500 / sampleRate) : null;
    this.state = new Float64Array(4); // x1, x2, y1, y2
    this.filtered = new Float32Array(128); // Grown only if the render quantum is ever larger.
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true; // No input yet (or the track ended): keep the node alive.
    const n = input.length;
    const channel = this.filter ? this.applyFilter(input) : input;
    let pos = this.position;
    while (pos <= n - 1) {
      const i = Math.floor(pos);
      const frac = pos - i;
      const a = i < 0 ? this.previous : channel[i];
      const b = i + 1 < n ? channel[i + 1] : a;
      this.push(a + (b - a) * frac);
      pos += this.step;
    }
    this.position = pos - n;
    this.previous = channel[n - 1];
    return true;
  }

  /** Low-passes one quantum into the preallocated scratch buffer and returns it. */
  applyFilter(input) {
    if (this.filtered.length < input.length) this.filtered = new Float32Array(input.length);
    const out = this.filtered;
    const c = this.filter;
    const s = this.state;
    for (let i = 0; i < input.length; i++) {
      const x = input[i];
      const y = c[0] * x + c[1] * s[0] + c[2] * s[1] - c[3] * s[2] - c[4] * s[3];
      s[1] = s[0]; s[0] = x; s[3] = s[2]; s[2] = y;
      out[i] = y;
    }
    return out;
  }

  /** Appends one 24 kHz sample to the batch and posts the batch when it is full. */
  push(sample) {
    const clamped = sample > 1 ? 1 : sample < -1 ? -1 : sample;
    this.sumSquares += clamped * clamped;
    this.batch[this.filled++] = clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff;
    if (this.filled < BATCH_SAMPLES) return;
    const level = Math.sqrt(this.sumSquares / BATCH_SAMPLES);
    this.port.postMessage({ pcm: this.batch.buffer, level }, [this.batch.buffer]);
    this.batch = new Int16Array(BATCH_SAMPLES);
    this.filled = 0;
    this.sumSquares = 0;
  }
}

/** Returns normalized biquad low-pass coefficients [b0, b1, b2, a1, a2] for a cutoff given as a fraction of the rate. */
function lowPass(fraction) {
  const w0 = 2 * Math.PI * fraction;
  const alpha = Math.sin(w0) / (2 * Math.SQRT1_2); // Q = 1/sqrt(2): Butterworth, no ripple.
  const cos = Math.cos(w0);
  const a0 = 1 + alpha;
  return Float64Array.of((1 - cos) / 2 / a0, (1 - cos) / a0, (1 - cos) / 2 / a0, (-2 * cos) / a0, (1 - alpha) / a0);
}

registerProcessor("capture-processor", CaptureProcessor);
