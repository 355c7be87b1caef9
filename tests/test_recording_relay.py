"""A conversation's recording, made by the relay as a browser talks through the whole ASGI app."""
from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from channels.db import database_sync_to_async
from django.conf import settings as django_settings

from conversations.models import Conversation, RecordingChunk, Turn, VoicePreferences
from conversations.realtime.simulator import RealtimeSimulator
from conversations.recording.encoder import BYTES_PER_SECOND

from .audio import silence, speech
from .relay import Transcript, collect, communicator, point_at

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("end_live_conversations")]

FRAME_MS = 40
FRAME_BYTES = 24_000 * FRAME_MS // 1000 * 2


class Microphone:
    """Send 40 ms frames in real time, as a browser's microphone does, until stopped: speech first, then quiet."""

    def __init__(self, comm, pcm: bytes) -> None:
        self.comm, self.pcm, self.sent = comm, pcm, 0
        self._task: asyncio.Task | None = None

    def __enter__(self) -> Microphone:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        start = time.monotonic()
        quiet = bytes(FRAME_BYTES)
        while True:
            offset = self.sent * FRAME_BYTES
            frame = self.pcm[offset:offset + FRAME_BYTES]
            frame = frame + quiet[len(frame):] if len(frame) < FRAME_BYTES else frame
            await self.comm.send_to(bytes_data=frame)
            self.sent += 1
            # On an absolute schedule, so the frames sent match the time that passed.
            await asyncio.sleep(max(0.0, start + self.sent * FRAME_MS / 1000 - time.monotonic()))

    async def stop(self) -> int:
        """Stop sending; returns how many milliseconds of audio were sent."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        return self.sent * FRAME_MS

    def __exit__(self, *exc) -> None:
        if self._task is not None:
            self._task.cancel()


async def _ended(conversation_id, timeout: float = 20.0) -> Conversation:
    """Wait until the conversation is stored as over and its ending is done (the recording is stored alongside)."""
    from conversations.relay.registry import live_conversations

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conversation = await database_sync_to_async(Conversation.objects.get)(pk=conversation_id)
        # The end stores the recording's last chunk and the conversation's end at once: both are done when the
        # ending has let go of the conversation.
        ending = live_conversations.get(str(conversation_id)) or live_conversations.ending(str(conversation_id))
        if conversation.ended_at is not None and ending is None:
            return conversation
        await asyncio.sleep(0.1)
    raise AssertionError("the conversation did not end")


@database_sync_to_async
def _recording(conversation_id) -> tuple[list[RecordingChunk], bytes]:
    chunks = list(RecordingChunk.objects.filter(conversation_id=conversation_id).order_by("seq"))
    data = b"".join(chunk.file.open("rb").read() for chunk in chunks)
    return chunks, data


@database_sync_to_async
def _turns(conversation_id) -> list[Turn]:
    return list(Turn.objects.filter(conversation_id=conversation_id).order_by("position"))


def _decoded(mp3: bytes) -> np.ndarray:
    samples, rate = soundfile.read(io.BytesIO(mp3), dtype="int16")
    assert rate == 24_000
    return samples


def _loud(samples: np.ndarray, from_ms: int, to_ms: int) -> float:
    part = samples[from_ms * 24:to_ms * 24].astype(np.float64)
    return float(np.sqrt(np.mean(part ** 2))) if len(part) else 0.0


def _assert_contiguous(chunks: list[RecordingChunk], *, first_seq: int = 0, start_ms: int = 0) -> None:
    assert [c.seq for c in chunks] == list(range(first_seq, first_seq + len(chunks)))
    assert chunks[0].start_ms == start_ms
    for before, after in zip(chunks, chunks[1:]):
        assert after.start_ms == before.start_ms + before.duration_ms
    assert all(c.size == c.file.size for c in chunks)


async def _start(cookie, path: str = "/ws/talk/") -> tuple[object, Transcript]:
    comm = communicator(cookie, path=path)
    connected, _ = await comm.connect()
    assert connected
    return comm, await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))


async def test_a_spoken_conversation_is_recorded_both_sides_on_one_timeline(use_simulator, cookie):
    comm, seen = await _start(cookie)
    ready = seen.of_type("ready")[0]
    assert ready["recording"] is True
    conversation_id = ready["conversation_id"]
    with Microphone(comm, speech() + silence(1500)) as mic:
        seen = await collect(comm, seen, lambda s: bool(s.of_type("response_done")), timeout=30)
        reply_ms = seen.audio_bytes // 48
        assert reply_ms > 500
        # Keep the microphone open while the reply plays out in the browser, as a user listens.
        await asyncio.sleep(reply_ms / 1000 + 1.0)
        sent_ms = await mic.stop()
    await comm.disconnect()  # Stop
    await _ended(conversation_id)

    chunks, mp3 = await _recording(conversation_id)
    _assert_contiguous(chunks)
    recorded_ms = sum(c.duration_ms for c in chunks)
    assert abs(recorded_ms - sent_ms) <= 100
    samples = _decoded(mp3)
    assert abs(len(samples) / 24 - sent_ms) <= 100  # the file plays as long as the conversation took
    assert len(mp3) <= sent_ms / 1000 * BYTES_PER_SECOND * 1.02  # 3 MB per 10 minutes at most

    user, assistant = await _turns(conversation_id)
    assert user.recording_ms is not None and assistant.recording_ms is not None
    assert 0 <= user.recording_ms < 600  # the speech starts the recording
    assert assistant.recording_ms > user.recording_ms + 1000
    # Both sides are in the mix: the user's speech, then the reply, where the turns say they start.
    assert _loud(samples, user.recording_ms, user.recording_ms + 800) > 300
    assert _loud(samples, assistant.recording_ms + 50, assistant.recording_ms + min(reply_ms, 1500)) > 300


async def test_a_recording_is_finalised_when_the_socket_drops_mid_reply(cookie, settings):
    settings.RELAY_GRACE_SECONDS = 0.5
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=True) as sim:
        point_at(settings, sim)
        comm, seen = await _start(cookie)
        conversation_id = seen.of_type("ready")[0]["conversation_id"]
        with Microphone(comm, b"") as mic:
            await comm.send_to(text_data='{"type":"text","text":"Please talk for a while about the sea"}')
            seen = await collect(comm, seen, lambda s: len(s.audio) >= 3, timeout=30)
            await asyncio.sleep(0.3)
            sent_ms = await mic.stop()
        await comm.disconnect(code=1006)  # the network, not the user: the grace period runs out
        conversation = await _ended(conversation_id)
    assert conversation.status == Conversation.Status.ENDED

    chunks, mp3 = await _recording(conversation_id)
    _assert_contiguous(chunks)
    samples = _decoded(mp3)
    # The reply is cut where the socket dropped: the recording ends there, not where the reply would have.
    assert abs(len(samples) / 24 - sent_ms) <= 150
    user, assistant = await _turns(conversation_id)
    assert assistant.interrupted
    assert user.recording_ms is not None and assistant.recording_ms is not None


async def test_with_recording_turned_off_nothing_is_recorded(use_simulator, cookie, user):
    await database_sync_to_async(VoicePreferences.objects.create)(user=user, voice="alloy", record=False)
    comm, seen = await _start(cookie)
    ready = seen.of_type("ready")[0]
    assert ready["recording"] is False
    with Microphone(comm, speech() + silence(1500)):
        seen = await collect(comm, seen, lambda s: bool(s.of_type("response_done")), timeout=30)
    await comm.disconnect()
    await _ended(ready["conversation_id"])
    chunks, _ = await _recording(ready["conversation_id"])
    assert chunks == []
    assert all(t.recording_ms is None for t in await _turns(ready["conversation_id"]))


async def test_a_continued_conversation_goes_on_in_the_same_recording(use_simulator, cookie):
    comm, seen = await _start(cookie)
    conversation_id = seen.of_type("ready")[0]["conversation_id"]
    with Microphone(comm, b"") as mic:
        await comm.send_to(text_data='{"type":"text","text":"Hello"}')
        seen = await collect(comm, seen, lambda s: bool(s.of_type("response_done")), timeout=30)
        await asyncio.sleep(seen.audio_bytes / 48 / 1000 + 0.3)
        await mic.stop()
    await comm.disconnect()
    await _ended(conversation_id)
    first, _ = await _recording(conversation_id)
    first_ms = sum(c.duration_ms for c in first)

    comm, seen = await _start(cookie, path=f"/ws/talk/?conversation={conversation_id}")
    assert seen.of_type("ready")[0]["continued"] and seen.of_type("ready")[0]["recording"]
    with Microphone(comm, b"") as mic:
        await comm.send_to(text_data='{"type":"text","text":"And again"}')
        seen = await collect(comm, seen, lambda s: bool(s.of_type("response_done")), timeout=30)
        await asyncio.sleep(seen.audio_bytes / 48 / 1000 + 0.3)
        second_ms = await mic.stop()
    await comm.disconnect()
    await _ended(conversation_id)

    chunks, mp3 = await _recording(conversation_id)
    assert chunks[: len(first)] == first
    _assert_contiguous(chunks)
    assert abs(sum(c.duration_ms for c in chunks) - first_ms - second_ms) <= 150
    assert abs(len(_decoded(mp3)) / 24 - first_ms - second_ms) <= 200  # two MP3 streams, one after the other
    turns = await _turns(conversation_id)
    assert [t.role for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[2].recording_ms >= first_ms and turns[3].recording_ms > turns[2].recording_ms


async def test_a_conversation_deleted_while_recording_leaves_no_recording_behind(use_simulator, cookie):
    comm, seen = await _start(cookie)
    conversation_id = seen.of_type("ready")[0]["conversation_id"]
    with Microphone(comm, b"") as mic:
        await comm.send_to(text_data='{"type":"text","text":"Please talk for a while about the sea"}')
        seen = await collect(comm, seen, lambda s: s.audio_bytes >= 48 * 500, timeout=30)
        await asyncio.sleep(6.0)  # a chunk is stored (audio waits 3 s for a cut before it is mixed)
        assert await database_sync_to_async(RecordingChunk.objects.filter(conversation_id=conversation_id).count)()
        await database_sync_to_async(Conversation.objects.filter(pk=conversation_id).delete)()
        await asyncio.sleep(1.5)  # the recorder tries to store more
        await mic.stop()
    await comm.disconnect()
    await asyncio.sleep(0.5)
    assert not await database_sync_to_async(RecordingChunk.objects.exists)()
    folder = Path(django_settings.STORAGES["recordings"]["OPTIONS"]["location"]) / str(conversation_id)
    assert not folder.exists() or not any(folder.iterdir())


async def test_turning_recording_off_and_on_mid_conversation_stops_and_resumes_the_same_recording(
    use_simulator, cookie, user
):
    comm, seen = await _start(cookie)
    conversation_id = seen.of_type("ready")[0]["conversation_id"]

    async def apply(record: bool) -> dict:
        await database_sync_to_async(VoicePreferences.objects.update_or_create)(
            user=user, defaults={"voice": "alloy", "record": record})
        before = len(seen.of_type("settings_applied"))
        await comm.send_to(text_data='{"type":"apply_settings"}')
        await collect(comm, seen, lambda s: len(s.of_type("settings_applied")) > before)
        return seen.of_type("settings_applied")[-1]

    with Microphone(comm, b"") as mic:
        await asyncio.sleep(2.0)
        first_ms = mic.sent * FRAME_MS
        assert (await apply(False))["recording"] is False
        off_at = mic.sent
        await asyncio.sleep(1.5)  # not recorded
        on_at = mic.sent
        assert (await apply(True))["recording"] is True
        await asyncio.sleep(2.0)
        sent_ms = await mic.stop()
    await comm.disconnect()
    await _ended(conversation_id)

    chunks, mp3 = await _recording(conversation_id)
    _assert_contiguous(chunks)
    recorded_ms = sum(c.duration_ms for c in chunks)
    expected_ms = sent_ms - (on_at - off_at) * FRAME_MS
    assert abs(recorded_ms - expected_ms) <= 200 and recorded_ms >= first_ms
    assert abs(len(_decoded(mp3)) / 24 - expected_ms) <= 250
