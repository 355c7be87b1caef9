"""The talk socket's flood limits: token buckets for audio (in audio time) and control messages, and their settings."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.relay.flood import FloodLimits, TokenBucket

ROOT = Path(__file__).resolve().parent.parent
BYTES_PER_MS = 48
LIMITS = FloodLimits()


def test_a_full_bucket_lets_its_capacity_through_at_once_then_refuses():
    bucket = TokenBucket(rate=10, capacity=40, now=0.0)
    assert all(bucket.take(1, 0.0) for _ in range(40))
    assert not bucket.take(1, 0.0)


def test_a_refused_take_costs_nothing():
    bucket = TokenBucket(rate=10, capacity=5, now=0.0)
    assert not bucket.take(6, 0.0)
    assert bucket.take(5, 0.0)


def test_the_bucket_refills_at_its_rate_up_to_its_capacity():
    bucket = TokenBucket(rate=10, capacity=5, now=0.0)
    assert bucket.take(5, 0.0)
    assert not bucket.take(1, 0.05)
    assert bucket.take(1, 0.1)
    assert bucket.take(5, 100.0) and not bucket.take(1, 100.0)  # a long pause refills no more than the capacity


def test_audio_is_counted_in_audio_time_whatever_the_frame_size():
    """Ten seconds of audio pass at once in 20 ms frames or in 100 ms frames alike, and no more."""
    for frame_ms in (20, 40, 100):
        bucket = LIMITS.audio_bucket(0.0)
        frames = LIMITS.audio_burst_ms // frame_ms
        assert all(bucket.take(frame_ms * BYTES_PER_MS, 0.0) for _ in range(frames))
        assert not bucket.take(frame_ms * BYTES_PER_MS, 0.0)


def test_audio_at_twice_real_time_is_sustained_and_faster_is_not():
    bucket = LIMITS.audio_bucket(0.0)
    frame = 40 * BYTES_PER_MS
    # 2x real time: a 40 ms frame every 20 ms, for ten minutes.
    assert all(bucket.take(frame, i * 0.020) for i in range(30_000))
    bucket = LIMITS.audio_bucket(0.0)
    # 3x real time is refused once the burst is spent: after 10 s of burst at a net 1x, so within about 10 s.
    times = (i * 0.040 / 3 for i in itertools.count())
    refused_at = next(t for t in times if not bucket.take(frame, t))
    assert 9.0 < refused_at < 11.0


def test_control_messages_are_limited_to_twenty_a_second_with_a_burst_of_forty():
    bucket = LIMITS.control_bucket(0.0)
    assert all(bucket.take(1, 0.0) for _ in range(40))
    assert not bucket.take(1, 0.0)
    bucket = LIMITS.control_bucket(0.0)
    assert all(bucket.take(1, i / 20) for i in range(2_000))  # 20 a second, for 100 s


# Times are seconds since the bucket was made; sizes are bytes of audio.
_arrivals = st.lists(
    st.tuples(st.floats(0, 5, allow_nan=False), st.integers(0, 200_000)), min_size=1, max_size=200
)


@settings(max_examples=300, deadline=None)
@given(_arrivals, st.floats(1, 200_000), st.floats(0, 500_000))
def test_no_sequence_of_arrivals_gets_more_than_rate_times_elapsed_plus_capacity_through(arrivals, rate, capacity):
    bucket = TokenBucket(rate=rate, capacity=capacity, now=0.0)
    now, passed = 0.0, 0.0
    for gap, size in arrivals:
        now += gap
        if bucket.take(size, now):
            passed += size
        # The bound holds at every moment, not just at the end (a tiny slack for float rounding).
        assert passed <= rate * now + capacity + 1e-6 * (rate * now + capacity)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(20, 100), st.floats(0, 1, allow_nan=False)), min_size=1, max_size=600),
    st.floats(0, (LIMITS.audio_burst_ms - 100 - 1) / 1000, allow_nan=False),
)
def test_a_steady_real_time_stream_is_never_refused_even_with_jitter(frames, max_jitter_s):
    """Frames of 20–100 ms in real time, each delayed by up to (burst − longest frame) and kept in order.

    A frame captured at t arrives at t + its duration + a delay (the network's, or a stall's backlog); the
    socket keeps the order, so a frame never arrives before the one before it.
    """
    bucket = LIMITS.audio_bucket(0.0)
    captured_ms, arrived = 0, 0.0
    for frame_ms, jitter in frames:
        captured_ms += frame_ms
        arrived = max(arrived, captured_ms / 1000 + jitter * max_jitter_s)
        assert bucket.take(frame_ms * BYTES_PER_MS, arrived), (captured_ms, arrived)


def test_a_stall_shorter_than_the_burst_is_absorbed_and_a_longer_one_is_refused():
    """After a network stall the backlog arrives at once: up to the burst it passes, past it the socket floods."""
    frame = 40 * BYTES_PER_MS

    def backlog_passes(stall_s: float) -> bool:
        bucket = LIMITS.audio_bucket(0.0)
        frames = int(stall_s * 1000) // 40  # captured during the stall, all arriving when it ends
        return all(bucket.take(frame, stall_s) for _ in range(frames))

    assert backlog_passes(LIMITS.audio_burst_ms / 1000 - 0.1)
    assert not backlog_passes(LIMITS.audio_burst_ms / 1000 + 1.0)


@pytest.mark.parametrize("name, value", [("RELAY_AUDIO_BURST_MS", "500"), ("RELAY_AUDIO_MAX_RATE", "0.5"),
                                         ("RELAY_CONTROL_MAX_RATE", "0"), ("RELAY_CONTROL_BURST", "0")])
def test_limits_that_would_close_honest_sockets_are_refused_at_start_up(name, value):
    env = {**os.environ, "DOTENV_FILE": "", "SECRET_KEY": "x", name: value}
    result = subprocess.run([sys.executable, "-c", "import voiceapp.settings"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode != 0 and "ImproperlyConfigured" in result.stderr and name in result.stderr
