/**
 * Playback worklet: a preallocated ring of 24 kHz samples, played out at the context's rate.
 *
 * The main thread posts PCM16 buffers tagged with their assistant item; this processor converts
 * them into the ring, waits for an adaptive jitter buffer, resamples with linear interpolation, and
 * counts how many 24 kHz samples of each item were actually played, which is what barge-in
 * truncates the server's copy to.
 */

const SOURCE_RATE = 24000;
const CAPACITY = SOURCE_RATE * 60; // 60 s of audio: more than any single response queues ahead.
// Adaptive jitter buffer: audio held back before starting or resuming. It starts small for low
// latency, grows by a step after each underrun (the network is bumpier than assumed), and shrinks
// by half a step after a long run without one.
const JITTER_MIN = SOURCE_RATE * 0.06; // 60 ms
const JITTER_MAX = SOURCE_RATE * 0.3; // 300 ms
const JITTER_STEP = SOURCE_RATE * 0.04; // 40 ms
const CLEAN_RUN = SOURCE_RATE * 20; // 20 s of audio played without an underrun
const MAX_ITEMS = 32; // Item boundaries still in the ring; a turn rarely has more than one.

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ring = new Float32Array(CAPACITY);
    this.step = SOURCE_RATE / sampleRate; // 24 kHz samples consumed per output sample.
    this.readIndex = 0; // Ring index of the next unplayed sample.
    this.frac = 0; // Fractional position between ring[readIndex] and the sample after it.
    this.available = 0; // Samples written but not yet played.
    this.written = 0; // Total samples ever written (monotonic), to locate item boundaries.
    this.played = 0; // Total 24 kHz samples ever played (monotonic).
    // Item boundaries as a small circular queue: the item whose audio starts at written-total `starts[k]`.
    this.itemIds = new Array(MAX_ITEMS).fill(null);
    this.starts = new Float64Array(MAX_ITEMS);
    this.head = 0; // Oldest boundary still relevant (the item now playing).
    this.count = 0;
    this.ended = true; // No more audio is expected for the last item written.
    this.playing = false; // True while past the jitter buffer and producing sound.
    this.gain = 0; // Ramped so starts and stops never click.
    this.hold = 0; // Last output sample, decayed to zero on underrun instead of a hard cut.
    this.residual = 0; // The decaying last sample, cross-faded with the audio that resumes after a gap.
    this.underruns = 0;
    this.target = JITTER_MIN; // Current jitter buffer, in 24 kHz samples.
    this.clean = 0; // Samples played since the last underrun or shrink.
    this.dropped = 0;
    this.reportEvery = Math.round((0.1 * sampleRate) / 128); // About every 100 ms.
    this.quanta = 0;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(msg) {
    if (msg.type === "audio") this.write(msg.itemId, msg.pcm);
    else if (msg.type === "end") this.end(msg.itemId);
    else if (msg.type === "interrupt") this.interrupt(msg.id);
  }

  /** Converts PCM16 into the ring, recording where a new item starts. */
  write(itemId, buffer) {
    // Int16Array reads the platform's byte order; every browser platform is little-endian, like the wire.
    const pcm = new Int16Array(buffer, 0, buffer.byteLength >> 1);
    const last = this.count ? this.itemIds[(this.head + this.count - 1) % MAX_ITEMS] : null;
    if (itemId !== last) {
      if (this.count === MAX_ITEMS) this.shiftItem();
      const k = (this.head + this.count) % MAX_ITEMS;
      this.itemIds[k] = itemId;
      this.starts[k] = this.written;
      this.count++;
      this.retire(); // When the ring was empty the new item is what plays next, not the finished one.
    }
    this.ended = false;
    const room = CAPACITY - this.available;
    const n = Math.min(pcm.length, room);
    this.dropped += pcm.length - n; // Overflow protection: never overwrite audio not yet played.
    let w = (this.readIndex + this.available) % CAPACITY;
    for (let i = 0; i < n; i++) {
      this.ring[w] = pcm[i] / 0x8000;
      if (++w === CAPACITY) w = 0;
    }
    this.available += n;
    this.written += n;
  }

  /** Marks the last item's audio complete, so its tail plays out without waiting for more. */
  end(itemId) {
    const last = this.count ? this.itemIds[(this.head + this.count - 1) % MAX_ITEMS] : null;
    if (itemId == null || itemId === last) this.ended = true;
  }

  /** Empties the ring at once and reports how much of the interrupted item was heard. */
  interrupt(id) {
    const itemId = this.finished() ? null : this.currentItem();
    const playedSamples = itemId === null ? 0 : this.played - this.starts[this.head];
    this.written -= this.available; // Unplayed audio is discarded, so it never "started".
    this.available = 0;
    this.frac = 0;
    this.count = 0;
    this.ended = true;
    this.playing = false;
    this.port.postMessage({ type: "interrupted", id, itemId, playedSamples });
    this.report();
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    if (!this.playing && this.available > 0 && (this.available >= this.target || this.ended)) {
      this.playing = true;
      this.report();
    }
    for (let i = 0; i < out.length; i++) {
      if (this.playing && (this.available >= 2 || (this.available === 1 && this.frac === 0))) {
        const a = this.ring[this.readIndex];
        const b = this.available >= 2 ? this.ring[(this.readIndex + 1) % CAPACITY] : a;
        this.gain += (1 - this.gain) * 0.01; // ~2 ms fade-in at 48 kHz: resuming never clicks.
        this.residual *= 0.99; // What was left of the sound before a gap fades out under the new audio.
        this.hold = (a + (b - a) * this.frac) * this.gain + this.residual * (1 - this.gain);
        this.frac += this.step;
        while (this.frac >= 1 && this.available > 0) this.advance();
      } else {
        if (this.playing) this.starve();
        this.gain = 0;
        this.hold *= 0.99; // Decay the last sample (~2 ms) instead of jumping to zero: no click.
        this.residual = this.hold;
      }
      out[i] = this.hold;
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (++this.quanta >= this.reportEvery) this.report();
    return true;
  }

  /** Moves the read position on by one 24 kHz sample, retiring item boundaries that were passed. */
  advance() {
    this.frac -= 1;
    this.readIndex = (this.readIndex + 1) % CAPACITY;
    this.available--;
    this.played++;
    if (++this.clean >= CLEAN_RUN) {
      this.clean = 0;
      this.target = Math.max(JITTER_MIN, this.target - JITTER_STEP / 2);
    }
    this.retire();
  }

  /** Drops boundaries of items whose audio has been played in full. */
  retire() {
    while (this.count > 1 && this.starts[(this.head + 1) % MAX_ITEMS] <= this.played) this.shiftItem();
  }

  /** Handles an empty ring: the natural end of the audio, or an underrun when more is expected. */
  starve() {
    this.playing = false;
    this.frac = 0;
    if (this.available === 1) this.advance(); // A lone last sample cannot be interpolated; count it.
    if (!this.ended) {
      this.underruns++;
      this.clean = 0;
      this.target = Math.min(JITTER_MAX, this.target + JITTER_STEP);
    }
    this.report();
  }

  shiftItem() {
    this.itemIds[this.head] = null;
    this.head = (this.head + 1) % MAX_ITEMS;
    this.count--;
  }

  currentItem() {
    return this.count ? this.itemIds[this.head] : null;
  }

  /** True when there is nothing left to play and nothing more is expected. */
  finished() {
    return this.available === 0 && this.ended;
  }

  /** Posts counters for the page; called every ~100 ms and on transitions, never per sample. */
  report() {
    this.quanta = 0;
    const itemId = this.finished() ? null : this.currentItem();
    this.port.postMessage({
      type: "status",
      played: this.played,
      itemId,
      itemPlayed: itemId === null ? 0 : this.played - this.starts[this.head],
      playing: this.playing,
      active: itemId !== null,
      buffered: this.available,
      underruns: this.underruns,
      dropped: this.dropped,
      jitterMs: this.target / 24,
    });
  }
}

registerProcessor("playback-processor", PlaybackProcessor);
