import { readFileSync } from "node:fs";
import vm from "node:vm";

/**
 * Loads an AudioWorklet processor under Node: its source runs in a fresh context holding the globals the audio
 * thread provides (`sampleRate`, `AudioWorkletProcessor` with a message port, `registerProcessor`), so one test
 * file can run a processor at several context rates.
 */
/** Returns a new instance of the processor `file` registers, running at `rate` Hz; `sent` collects its messages. */
export function loadProcessor(file, rate) {
  let registered = null;
  class AudioWorkletProcessor {
    constructor() {
      this.sent = [];
      this.port = { postMessage: (message) => this.sent.push(message), onmessage: null };
    }
  }
  const context = vm.createContext({
    sampleRate: rate, AudioWorkletProcessor, registerProcessor: (name, cls) => { registered = cls; },
    Float32Array, Float64Array, Int16Array, Math,
  });
  vm.runInContext(readFileSync(new URL(file, import.meta.url), "utf8"), context, { filename: file });
  return new registered();
}

/** Runs `processor.process` over `input` (mono Float32Array) in 128-sample render quanta, as the audio thread does. */
export function feed(processor, input) {
  for (let start = 0; start + 128 <= input.length; start += 128) {
    processor.process([[input.subarray(start, start + 128)]], [[new Float32Array(128)]]);
  }
}

/** `seconds` of a sine at `frequency` Hz and amplitude `level`, sampled at `rate`. */
export function sine(frequency, seconds, rate, level = 0.5) {
  const out = new Float32Array(Math.round(seconds * rate));
  for (let i = 0; i < out.length; i++) out[i] = level * Math.sin((2 * Math.PI * frequency * i) / rate);
  return out;
}

/** Root mean square of a Float32Array or Int16Array scaled to ±1. */
export function rms(samples, scale = 1) {
  let sum = 0;
  for (const s of samples) sum += (s / scale) ** 2;
  return Math.sqrt(sum / samples.length);
}

/** Rising zero crossings per second: the frequency of a clean tone. */
export function frequencyOf(samples, rate) {
  let crossings = 0;
  for (let i = 1; i < samples.length; i++) if (samples[i - 1] < 0 && samples[i] >= 0) crossings++;
  return (crossings * rate) / samples.length;
}
