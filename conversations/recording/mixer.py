"""Mix the two sides' placed audio into one PCM16 stream, a stretch at a time (runs off the event loop)."""
from __future__ import annotations

import numpy as np

from .timeline import CUT, USER, Event

INT16_MIN, INT16_MAX = -32768, 32767


class Mixer:
    """Sum user and assistant audio on the timeline; audio waiting to be mixed can still be cut."""

    def __init__(self, *, start: int) -> None:
        self.emitted = start  # everything before this position has been mixed
        self._user: list[tuple[int, np.ndarray]] = []
        self._assistant: list[tuple[int, np.ndarray]] = []

    def feed(self, events: list[Event]) -> None:
        """Take placements in the order they happened (a cut applies to the assistant audio placed before it)."""
        for kind, pos, pcm in events:
            if kind == CUT:
                self._assistant = _cut(self._assistant, pos)
                continue
            # An odd trailing byte is not a sample; the relay has checked frames, this is belt and braces.
            samples = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2)  # type: ignore[arg-type]
            (self._user if kind == USER else self._assistant).append((pos, samples))

    def pending_end(self) -> int:
        """Where the last audio waiting to be mixed ends."""
        ends = [pos + len(s) for pos, s in self._user + self._assistant]
        return max(ends, default=self.emitted)

    def mix(self, upto: int) -> bytes:
        """The mixed PCM16 from where the last mix stopped up to `upto`; later audio waits."""
        if upto <= self.emitted:
            return b""
        start, length = self.emitted, upto - self.emitted
        out = np.zeros(length, dtype=np.int32)
        self._user = _add(self._user, out, start, upto)
        self._assistant = _add(self._assistant, out, start, upto)
        self.emitted = upto
        return np.clip(out, INT16_MIN, INT16_MAX).astype("<i2").tobytes()


def _add(segments: list[tuple[int, np.ndarray]], out: np.ndarray, start: int, end: int) -> list[tuple[int, np.ndarray]]:
    """Add the parts of `segments` within [start, end) into `out`; return what lies beyond `end`."""
    rest = []
    for pos, samples in segments:
        seg_end = pos + len(samples)
        lo, hi = max(pos, start), min(seg_end, end)
        if lo < hi:
            out[lo - start:hi - start] += samples[lo - pos:hi - pos]
        if seg_end > end:
            keep_from = max(pos, end)
            rest.append((keep_from, samples[keep_from - pos:]))
    return rest


def _cut(segments: list[tuple[int, np.ndarray]], at: int) -> list[tuple[int, np.ndarray]]:
    """Drop everything at or after `at`."""
    kept = []
    for pos, samples in segments:
        if pos >= at:
            continue
        kept.append((pos, samples[: at - pos]))
    return kept
