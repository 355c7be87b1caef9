/**
 * Main-thread side of the playback worklet: queues the server's PCM16 audio and answers barge-in.
 */
import { outputLatencyMs } from "./latency.js";

/** Plays 24 kHz PCM16 from the server and knows how much of each assistant item was heard. */
export class PlayerNode extends AudioWorkletNode {
  /** Loads the playback worklet module from a static URL and returns a node connected to the speakers. */
  static async create(context, moduleUrl) {
    await context.audioWorklet.addModule(moduleUrl);
    const node = new PlayerNode(context);
    node.connect(context.destination);
    return node;
  }

  constructor(context) {
    super(context, "playback-processor", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
    });
    /** Latest counters from the worklet: played, itemId, itemPlayed, playing, active, buffered, underruns, dropped. */
    this.status = { played: 0, itemId: null, itemPlayed: 0, playing: false, active: false, buffered: 0, underruns: 0, dropped: 0 };
    this.pending = new Map(); // interrupt() promises waiting for the worklet's answer, by request id.
    this.nextId = 1;
    this.port.onmessage = (event) => this.onWorkletMessage(event.data);
  }

  /** Queues one PCM16 buffer for `itemId`; the buffer is transferred, so the caller must not reuse it. */
  enqueue(itemId, buffer) {
    this.port.postMessage({ type: "audio", itemId, pcm: buffer }, [buffer]);
  }

  /** Says no more audio will come for `itemId`, so a short tail plays without waiting for the jitter buffer. */
  end(itemId = null) {
    this.port.postMessage({ type: "end", itemId });
  }

  /** Clears all queued audio now and resolves to the interrupted item and how many ms of it were played. */
  interrupt() {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.port.postMessage({ type: "interrupt", id });
    });
  }

  onWorkletMessage(msg) {
    if (msg.type === "status") {
      const wasActive = this.status.active;
      this.status = msg;
      this.dispatchEvent(new CustomEvent("playback", { detail: { ...msg, changed: wasActive !== msg.active } }));
    } else if (msg.type === "interrupted") {
      const resolve = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      // 24 samples per millisecond at 24 kHz. Samples the worklet rendered are still in the output
      // buffer for `outputLatency` (long on Bluetooth), so they were not heard yet: leave them out.
      const latencyMs = outputLatencyMs(this.context);
      const playedMs = Math.max(0, Math.floor(msg.playedSamples / 24 - latencyMs));
      resolve?.({ itemId: msg.itemId, playedMs });
    }
  }
}
