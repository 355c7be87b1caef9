/**
 * How long the speakers lag behind what the playback worklet renders, read where it is safe to read.
 */

/**
 * Whether this browser's `AudioContext.outputLatency` can be read on the page without risk.
 *
 * Firefox answers it with a synchronous call to its audio server made while it holds the audio graph's
 * lock (MediaTrackGraphImpl::AudioOutputLatency → cubeb_stream_get_latency); when the call lands while an
 * audio callback is under way, the page's main thread and the audio graph wait for each other for good.
 * Seen with Firefox ESR 153 on PulseAudio: the talk page froze at the first barge-in in about half the
 * runs, and gdb showed the main thread in that call with the graph thread waiting on its lock; with the
 * read left out, none froze. Chromium keeps the value at hand, so reading it there costs nothing.
 */
export function outputLatencyReadable(userAgent) {
  return !/\bFirefox\//.test(userAgent || "");
}

/**
 * The context's output latency in milliseconds, or 0 where it cannot be read safely (Firefox, where the
 * heard time of a cut reply then counts the output buffer too: tens of milliseconds).
 */
export function outputLatencyMs(context, userAgent = globalThis.navigator?.userAgent) {
  if (!outputLatencyReadable(userAgent)) {
    return 0;
  }
  return (context.outputLatency || 0) * 1000;
}
