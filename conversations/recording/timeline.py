"""Where each side's audio goes on the recording's one timeline: pure, no I/O, cheap per frame.

The user's microphone frames arrive in real time and are laid end to end; a silence longer than a
frame's jitter (push to talk released, a browser reconnecting) starts the next frame at the present
moment. The assistant's audio arrives faster than it plays, so it is laid end to end from the moment
it starts playing, as the browser plays it; where the user interrupts, what was not heard is cut.
Positions are in samples (24 kHz) from the start of the recording, which may continue an earlier one.
"""
from __future__ import annotations

import time
from collections.abc import Callable

SAMPLE_RATE = 24_000
SAMPLES_PER_MS = SAMPLE_RATE // 1000
BYTES_PER_SAMPLE = 2
# A later frame than this counts as a pause (frames come every 20–100 ms, with some network jitter).
GAP_SAMPLES = 300 * SAMPLES_PER_MS
# How long placed audio stays open to a cut before it is mixed: a cut (the browser reporting what it
# played when the user interrupted) arrives well within this.
HOLD_SAMPLES = 3_000 * SAMPLES_PER_MS

USER, ASSISTANT, CUT = 0, 1, 2
# (kind, position in samples, PCM16 bytes or None for a cut)
Event = tuple[int, int, bytes | None]


class Timeline:
    """Place user and assistant audio on one clock, collecting placements for the mixer."""

    def __init__(self, *, base_ms: int = 0, clock: Callable[[], float] = time.monotonic) -> None:
        self.base = base_ms * SAMPLES_PER_MS
        self._clock = clock
        self._t0: float | None = None  # the clock when the recording's first audio started
        self.user_end = self.base
        self.assistant_end = self.base
        self._assistant_item = ""
        self._item_starts: dict[str, int] = {}
        self._speech: dict[str, int] = {}  # user item → where its speech started
        self._session_user = 0  # user samples since the current upstream session began
        self.events: list[Event] = []

    # --- Placing audio (the hot path: a few integer operations and one append per frame) ---------

    def now(self) -> int:
        """The present moment on the timeline, in samples."""
        if self._t0 is None:
            return self.base
        return self.base + int((self._clock() - self._t0) * SAMPLE_RATE)

    def user(self, pcm: bytes) -> None:
        """Place one microphone frame."""
        n = len(pcm) // BYTES_PER_SAMPLE
        if self._t0 is None:
            self._t0 = self._clock() - n / SAMPLE_RATE  # the frame just received ends now
        start = self.now() - n
        pos = self.user_end
        if start > pos + GAP_SAMPLES:
            pos = start  # a real pause: keep it
        self.events.append((USER, pos, pcm))
        self.user_end = pos + n
        self._session_user += n

    def assistant(self, item_id: str, pcm: bytes) -> int | None:
        """Place assistant audio as it plays; returns the item's start (ms) when this is its first audio."""
        if self._t0 is None:
            self._t0 = self._clock()
        pos = max(self.assistant_end, self.now())
        self.events.append((ASSISTANT, pos, pcm))
        self.assistant_end = pos + len(pcm) // BYTES_PER_SAMPLE
        if item_id != self._assistant_item:
            self._assistant_item = item_id
            if item_id not in self._item_starts:
                self._item_starts[item_id] = pos
                return pos // SAMPLES_PER_MS
        return None

    # --- Cuts and marks ----------------------------------------------------------------------------

    def cut(self, item_id: str, heard_ms: int) -> None:
        """The user heard only `heard_ms` of this assistant item: drop the rest of it."""
        start = self._item_starts.get(item_id)
        if start is not None:
            self._cut_at(start + max(0, heard_ms) * SAMPLES_PER_MS)

    def silence_assistant(self) -> None:
        """Nobody hears the assistant from now on (the browser left or the conversation ended)."""
        if self._t0 is not None:
            self._cut_at(self.now())

    def _cut_at(self, pos: int) -> None:
        if pos < self.assistant_end:
            self.assistant_end = max(pos, self.base)
            self.events.append((CUT, self.assistant_end, None))

    def session_started(self) -> None:
        """A new upstream session takes the microphone: its audio positions count from here."""
        self._session_user = 0

    def speech_started(self, item_id: str, audio_start_ms: int) -> None:
        """The service heard speech start at `audio_start_ms` of this session's audio: remember where that is."""
        behind = max(0, self._session_user - max(0, audio_start_ms) * SAMPLES_PER_MS)
        self._speech[item_id] = max(self.base, self.user_end - behind)

    def user_item_ms(self, item_id: str) -> int:
        """Where a user item starts: where its speech started, or now for a typed message."""
        pos = self._speech.pop(item_id, None)
        return (self.now() if pos is None else pos) // SAMPLES_PER_MS

    # --- Handing over to the mixer -----------------------------------------------------------------

    def drain(self) -> tuple[list[Event], int]:
        """The placements since the last drain, and how far the mix can go now (nothing after can change).

        Silence is mixed only up to the last audio placed, so a recording never ends in a stretch
        of silence nobody was there for (a browser gone during its grace period).
        """
        events, self.events = self.events, []
        placed_end = max(self.user_end, min(self.assistant_end, self.now()))
        return events, max(self.base, min(self.now() - HOLD_SAMPLES, placed_end))

    def close(self) -> tuple[list[Event], int]:
        """The last placements and the end of the recording: the assistant is cut where it stands now."""
        self.silence_assistant()
        events, self.events = self.events, []
        return events, max(self.user_end, self.assistant_end)
