/**
 * Microphone capture: opens the mic and turns it into 40 ms PCM16 batches at 24 kHz.
 */

/** Asks for the microphone (a given one when `deviceId` is set) with echo cancellation, noise suppression and gain control on. */
export function openMicrophone(deviceId = "") {
  // Without echo cancellation the model hears itself through the speakers and interrupts itself.
  const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 };
  if (deviceId) audio.deviceId = { exact: deviceId };
  return navigator.mediaDevices.getUserMedia({ audio });
}

/** Contexts that already loaded the capture module: a switched microphone reuses it. */
const loaded = new WeakMap();

/** Loads a worklet module once per context. */
function loadModule(context, moduleUrl) {
  if (!loaded.has(context)) loaded.set(context, context.audioWorklet.addModule(moduleUrl));
  return loaded.get(context);
}

/** Receives 40 ms batches (1920 bytes of PCM16 LE at 24 kHz) with their RMS level from the capture worklet. */
export class CaptureNode extends AudioWorkletNode {
  /** Loads the capture worklet module from a static URL and wires the microphone stream into a new node. */
  static async create(context, moduleUrl, stream) {
    await loadModule(context, moduleUrl);
    const node = new CaptureNode(context, stream);
    node.source.connect(node);
    return node;
  }

  constructor(context, stream) {
    // No outputs: the browser still runs a worklet that has none, and nothing is echoed to the speakers.
    super(context, "capture-processor", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      channelCount: 1,
      channelCountMode: "explicit", // Downmix whatever the device gives to mono before the worklet.
    });
    this.stream = stream;
    this.source = context.createMediaStreamSource(stream);
    /** Called with (ArrayBuffer pcm, number level) for each batch; the buffer is ours to send or drop. */
    this.onbatch = null;
    this.port.onmessage = (event) => this.onbatch?.(event.data.pcm, event.data.level);
  }

  /** The microphone track's settings as the browser applied them (deviceId, echoCancellation, sampleRate...). */
  get trackSettings() {
    return this.stream.getAudioTracks()[0]?.getSettings() ?? {};
  }

  /** Releases the microphone (the browser's recording indicator goes off) and detaches the node. */
  stop() {
    for (const track of this.stream.getTracks()) track.stop();
    this.source.disconnect();
    this.port.onmessage = null;
    this.onbatch = null;
  }
}
