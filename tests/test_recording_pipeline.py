"""The recording pipeline without Django: placing audio on one clock, mixing, encoding, storing in chunks."""
from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.recording.encoder import BYTES_PER_SECOND
from conversations.recording.mixer import Mixer
from conversations.recording.recorder import ChunkWriter, RecordingGone
from conversations.recording.timeline import ASSISTANT, CUT, HOLD_SAMPLES, SAMPLES_PER_MS, USER, Timeline

RATE = 24_000


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def advance(self, ms: float) -> None:
        self.t += ms / 1000


def tone(ms: int, value: int = 1000) -> bytes:
    """A constant PCM16 signal: easy to find again in a mix."""
    return np.full(ms * SAMPLES_PER_MS, value, dtype="<i2").tobytes()


def mic(timeline: Timeline, clock: Clock, ms: int, *, frame_ms: int = 40, value: int = 1000) -> None:
    """Microphone frames arriving in real time."""
    for _ in range(ms // frame_ms):
        clock.advance(frame_ms)
        timeline.user(tone(frame_ms, value))


# --- Timeline ---------------------------------------------------------------------------------------


def test_microphone_frames_are_laid_end_to_end_and_a_real_pause_is_kept():
    clock = Clock()
    timeline = Timeline(clock=clock)
    mic(timeline, clock, 400)
    assert timeline.user_end == 400 * SAMPLES_PER_MS
    clock.advance(2_000)  # push to talk released: no frames
    mic(timeline, clock, 200)
    positions = [pos for kind, pos, _ in timeline.events if kind == USER]
    assert positions[:10] == [i * 40 * SAMPLES_PER_MS for i in range(10)]
    assert positions[10] == 2_400 * SAMPLES_PER_MS  # after the pause, where it really was
    assert timeline.user_end == 2_600 * SAMPLES_PER_MS


def test_late_frames_within_the_jitter_stay_end_to_end():
    clock = Clock()
    timeline = Timeline(clock=clock)
    mic(timeline, clock, 200)
    clock.advance(150)  # a network hiccup, then the frames held back arrive together
    for _ in range(4):
        timeline.user(tone(40))
    assert timeline.user_end == 360 * SAMPLES_PER_MS


def test_assistant_audio_plays_from_when_it_arrives_and_the_next_delta_follows_it():
    clock = Clock()
    timeline = Timeline(clock=clock)
    mic(timeline, clock, 1_000)
    assert timeline.assistant("item_a", tone(500)) == 1_000  # the first audio of the item: where it starts
    assert timeline.assistant("item_a", tone(500)) is None  # arrives at once, plays after the first
    assert timeline.assistant_end == 2_000 * SAMPLES_PER_MS


def test_a_cut_drops_what_the_user_did_not_hear_and_the_next_reply_starts_now():
    clock = Clock()
    timeline = Timeline(clock=clock)
    mic(timeline, clock, 1_000)
    timeline.assistant("item_a", tone(3_000))
    mic(timeline, clock, 800)
    timeline.cut("item_a", 600)
    assert timeline.events[-1] == (CUT, 1_600 * SAMPLES_PER_MS, None)
    assert timeline.assistant_end == 1_600 * SAMPLES_PER_MS
    clock.advance(400)
    assert timeline.assistant("item_b", tone(100)) == 2_200


def test_a_user_turn_starts_where_the_service_heard_speech_start():
    clock = Clock()
    timeline = Timeline(base_ms=60_000, clock=clock)
    timeline.session_started()
    mic(timeline, clock, 3_000)
    timeline.speech_started("item_u", 1_200)  # 1.2 s into this session's audio
    assert timeline.user_item_ms("item_u") == 61_200
    assert timeline.user_item_ms("typed") == 63_000  # a typed message: now


def test_drain_holds_back_audio_that_can_still_be_cut_and_close_ends_at_the_last_audio():
    clock = Clock()
    timeline = Timeline(clock=clock)
    mic(timeline, clock, 5_000)
    timeline.assistant("a", tone(10_000))
    events, upto = timeline.drain()
    assert len(events) == 126 and timeline.events == []
    assert upto == 5_000 * SAMPLES_PER_MS - HOLD_SAMPLES
    clock.advance(1_000)  # the user stops the conversation while the reply plays
    events, end = timeline.close()
    assert events == [(CUT, 6_000 * SAMPLES_PER_MS, None)]
    assert end == 6_000 * SAMPLES_PER_MS


def test_a_recording_does_not_grow_silence_while_nobody_is_there():
    clock = Clock()
    timeline = Timeline(clock=clock)
    mic(timeline, clock, 4_000)
    clock.advance(20_000)  # the browser left; its grace period runs
    _, upto = timeline.drain()
    assert upto == 4_000 * SAMPLES_PER_MS


# --- Mixer ------------------------------------------------------------------------------------------


def test_the_mixer_sums_both_sides_and_clips():
    mixer = Mixer(start=0)
    mixer.feed([(USER, 0, tone(10, 30_000)), (ASSISTANT, 5 * SAMPLES_PER_MS, tone(10, 10_000))])
    out = np.frombuffer(mixer.mix(20 * SAMPLES_PER_MS), dtype="<i2")
    assert len(out) == 20 * SAMPLES_PER_MS
    assert out[0] == 30_000 and out[6 * SAMPLES_PER_MS] == 32_767 and out[12 * SAMPLES_PER_MS] == 10_000
    assert out[-1] == 0


def test_a_cut_applies_to_audio_placed_before_it_not_to_a_later_reply():
    mixer = Mixer(start=0)
    mixer.feed([(ASSISTANT, 0, tone(100, 5)), (CUT, 40 * SAMPLES_PER_MS, None),
                (ASSISTANT, 60 * SAMPLES_PER_MS, tone(20, 7))])
    out = np.frombuffer(mixer.mix(100 * SAMPLES_PER_MS), dtype="<i2")
    assert set(out[: 40 * SAMPLES_PER_MS]) == {5}
    assert set(out[40 * SAMPLES_PER_MS: 60 * SAMPLES_PER_MS]) == {0}
    assert set(out[60 * SAMPLES_PER_MS: 80 * SAMPLES_PER_MS]) == {7}


placement = st.tuples(
    st.sampled_from([USER, ASSISTANT, CUT]),
    st.integers(min_value=0, max_value=4_000),
    st.integers(min_value=1, max_value=600),
    st.integers(min_value=-3_000, max_value=3_000),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(placement, max_size=30), st.lists(st.integers(min_value=0, max_value=6_000), max_size=5))
def test_mixing_in_stretches_gives_the_same_audio_as_mixing_at_once(placements, stops):
    events = [(kind, pos, None if kind == CUT else np.full(n, v, dtype="<i2").tobytes()) for kind, pos, n, v in placements]
    whole = Mixer(start=0)
    whole.feed(events)
    end = whole.pending_end()
    expected = whole.mix(end)
    assert len(expected) == 2 * end

    # The same placements fed in pieces, mixing up to a point before each piece's audio starts.
    parts = Mixer(start=0)
    out = bytearray()
    cursor = 0
    for stop in sorted(stops):
        piece = [e for e in events[cursor:] if e[1] >= stop]
        if not piece:
            break
        index = events.index(piece[0], cursor)
        parts.feed(events[cursor:index])
        cursor = index
        earliest = min((e[1] for e in events[cursor:]), default=stop)
        out += parts.mix(min(stop, earliest, parts.pending_end()))
    parts.feed(events[cursor:])
    out += parts.mix(max(end, parts.emitted))
    assert bytes(out[: 2 * end]) == expected


# --- Chunk writer -----------------------------------------------------------------------------------


def test_chunks_join_into_one_mp3_of_the_recordings_length_and_size():
    stored: list[tuple[int, bytes, int, int]] = []
    writer = ChunkWriter(seq=3, start=30_000 * SAMPLES_PER_MS, store=lambda *c: stored.append(c),
                         chunk_samples=4_000 * SAMPLES_PER_MS)
    t = np.arange(RATE * 11) / RATE
    voice = (np.sin(2 * np.pi * 220 * t) * 6000).astype("<i2").tobytes()
    step = RATE * 2 // 2 * 2  # a second of PCM at a time
    pos = 30_000 * SAMPLES_PER_MS
    for i in range(0, len(voice), step):
        writer.write([(USER, pos + i // 2, voice[i:i + step])], pos + i // 2)
    writer.write([], 0, final=True)
    assert [c[0] for c in stored] == [3, 4, 5]
    assert [(c[2], c[3]) for c in stored] == [(30_000, 4_000), (34_000, 4_000), (38_000, 3_000)]
    mp3 = b"".join(c[1] for c in stored)
    decoded, rate = soundfile.read(io.BytesIO(mp3), dtype="int16")
    assert rate == RATE
    assert abs(len(decoded) / RATE - 11.0) < 0.1
    assert len(mp3) <= 11 * BYTES_PER_SECOND * 1.02  # 32 kbit/s: 2.4 MB per 10 minutes


def test_a_chunk_the_store_refused_is_stored_with_the_next_one_in_order():
    stored, failing = [], [True]

    def store(*chunk):
        if failing[0]:
            raise OSError("storage away")
        stored.append(chunk)

    writer = ChunkWriter(seq=0, start=0, store=store, chunk_samples=1_000 * SAMPLES_PER_MS)
    writer.write([(USER, 0, tone(1_500))], 1_500 * SAMPLES_PER_MS)
    assert stored == [] and writer.unsaved == 1
    failing[0] = False
    writer.write([], 0, final=True)
    assert [c[0] for c in stored] == [0, 1] and writer.unsaved == 0


def test_a_recording_whose_conversation_is_gone_stops_quietly():
    calls = []

    def store(*chunk):
        calls.append(chunk)
        raise RecordingGone("deleted")

    writer = ChunkWriter(seq=0, start=0, store=store, chunk_samples=1_000 * SAMPLES_PER_MS)
    writer.write([(USER, 0, tone(1_500))], 1_500 * SAMPLES_PER_MS)
    writer.write([(USER, 1_500 * SAMPLES_PER_MS, tone(1_500))], 0, final=True)
    assert len(calls) == 1 and writer.gone and writer.unsaved == 0


@pytest.mark.parametrize("final", [False, True])
def test_nothing_to_write_stores_nothing(final):
    stored = []
    writer = ChunkWriter(seq=0, start=0, store=lambda *c: stored.append(c), chunk_samples=1_000)
    writer.write([], 0, final=final)
    assert stored == []
