"""Flood limits for one talk socket: token buckets for audio and for control messages (no Django, no I/O)."""
from __future__ import annotations

from dataclasses import dataclass

from ..realtime.protocol import BYTES_PER_MS, MAX_AUDIO_FRAME_BYTES

# What the smallest audio frame costs (10 ms): tiny or empty frames would otherwise be nearly free, and a
# stream of 2-byte frames within 2x real time is 48 000 frames a second, each relayed upstream as an event.
MIN_FRAME_COST_BYTES = 10 * BYTES_PER_MS
# What the largest costs (1 s): a frame refused as too long still counts, so a stream of them floods too.
MAX_FRAME_COST_BYTES = MAX_AUDIO_FRAME_BYTES


class TokenBucket:
    """Lets through at most `rate` units a second on average and `capacity` at once; starts full."""

    # Slots: the hot path reads and writes these on every audio frame, and no per-instance dict is made.
    __slots__ = ("rate", "capacity", "tokens", "stamp")

    def __init__(self, *, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = now

    def take(self, amount: float, now: float) -> bool:
        """Take `amount` at time `now` (seconds, never going back) if the bucket holds it; refused takes nothing."""
        # A few float operations and no objects kept: this runs for every microphone frame.
        tokens = self.tokens + (now - self.stamp) * self.rate
        if tokens > self.capacity:
            tokens = self.capacity
        self.stamp = now
        if amount > tokens:
            self.tokens = tokens
            return False
        self.tokens = tokens - amount
        return True


@dataclass(frozen=True)
class FloodLimits:
    """How fast one socket may send: audio in multiples of real time with a burst, control messages per second."""

    audio_rate: float = 2.0  # times real time, sustained
    audio_burst_ms: int = 10_000  # audio that may arrive at once on top of that (after a network stall)
    control_rate: float = 20.0  # JSON messages a second, sustained
    control_burst: int = 40  # JSON messages at once

    def audio_bucket(self, now: float) -> TokenBucket:
        """A bucket counted in bytes of PCM16 24 kHz audio (48 a millisecond), so frame sizes do not matter."""
        return TokenBucket(rate=self.audio_rate * BYTES_PER_MS * 1000, capacity=self.audio_burst_ms * BYTES_PER_MS,
                           now=now)

    def control_bucket(self, now: float) -> TokenBucket:
        """A bucket counted in messages."""
        return TokenBucket(rate=self.control_rate, capacity=self.control_burst, now=now)
