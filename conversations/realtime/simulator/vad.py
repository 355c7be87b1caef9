"""Energy voice-activity detection over PCM16 mono 24 kHz, in 20 ms windows.

`threshold` (0-1, the service's knob) maps linearly to a level in dBFS: a window is speech when
its RMS level exceeds `-60 + 45 * threshold` dBFS, so 0.5 means -37.5 dBFS (a normal voice at a
normal level is -30 to -15 dBFS), 0 means -60 dBFS and 1 means -15 dBFS. Digital silence never
counts. Speech starts after two consecutive speech windows (40 ms, so one click is not a turn) and
stops after `silence_duration_ms` without a speech window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 24_000
WINDOW_MS = 20
WINDOW_SAMPLES = SAMPLE_RATE * WINDOW_MS // 1000
WINDOW_BYTES = WINDOW_SAMPLES * 2
ONSET_WINDOWS = 2


def threshold_to_dbfs(threshold: float) -> float:
    """The RMS level in dBFS above which a window counts as speech."""
    return -60.0 + 45.0 * min(max(threshold, 0.0), 1.0)


def window_dbfs(window: np.ndarray) -> float:
    """RMS level of int16 samples in dBFS (full scale = 0 dBFS), -inf for silence."""
    rms = float(np.sqrt(np.mean(np.square(window.astype(np.float64))))) / 32768.0
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


@dataclass(frozen=True)
class VadEvent:
    """A speech boundary: `kind` is "start" or "stop", `ms` counts from the session's first sample."""

    kind: str
    ms: int


class EnergyVad:
    """Stateful detector fed with appended audio; reports speech starts and stops."""

    def __init__(self, *, threshold: float = 0.5, silence_duration_ms: int = 500) -> None:
        self.level_dbfs = threshold_to_dbfs(threshold)
        self.silence_duration_ms = silence_duration_ms
        self._pending = b""
        self._position_ms = 0  # end of the last whole window analysed
        self._speech_run = 0
        self._silence_ms = 0
        self.speaking = False

    def skip_to(self, ms: int) -> None:
        """Align with the session clock (after a clear, or when VAD is switched on mid-session)."""
        self._pending = b""
        self._position_ms = ms
        self.reset()

    def reset(self) -> None:
        """Forget any speech in progress."""
        self._speech_run = 0
        self._silence_ms = 0
        self.speaking = False

    def feed(self, pcm: bytes) -> list[VadEvent]:
        """Analyse newly appended audio and return the boundaries it contains, in order."""
        data = self._pending + pcm
        whole = len(data) - len(data) % WINDOW_BYTES
        self._pending = data[whole:]
        events: list[VadEvent] = []
        if not whole:
            return events
        samples = np.frombuffer(data[:whole], dtype="<i2").reshape(-1, WINDOW_SAMPLES)
        for window in samples:
            start_ms = self._position_ms
            self._position_ms += WINDOW_MS
            is_speech = window_dbfs(window) > self.level_dbfs
            if not self.speaking:
                self._speech_run = self._speech_run + 1 if is_speech else 0
                if self._speech_run >= ONSET_WINDOWS:
                    self.speaking = True
                    self._silence_ms = 0
                    events.append(VadEvent("start", start_ms - WINDOW_MS * (ONSET_WINDOWS - 1)))
            elif is_speech:
                self._silence_ms = 0
            else:
                self._silence_ms += WINDOW_MS
                if self._silence_ms >= self.silence_duration_ms:
                    self.reset()
                    events.append(VadEvent("stop", self._position_ms))
        return events
