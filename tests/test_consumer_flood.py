"""A talk socket that floods the server is closed with 1008 and its conversation stored; nobody else notices."""
from __future__ import annotations

import asyncio
import logging
import random
import time

import pytest
from channels.db import database_sync_to_async

from conversations.models import Conversation, Turn
from conversations.realtime.protocol import MAX_AUDIO_FRAME_BYTES
from conversations.relay.registry import live_conversations

from .conftest import session_cookie_for
from .relay import Transcript, collect, communicator

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("end_live_conversations")]

BYTES_PER_MS = 48
FLOOD_LOGGER = "conversations.relay.consumer"


async def _ready(comm) -> Transcript:
    connected, _ = await comm.connect()
    assert connected
    return await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))


async def _say(comm, seen: Transcript, text: str) -> Transcript:
    """Type a message and wait for the whole reply."""
    replies = len(seen.of_type("response_done"))
    await comm.send_to(text_data=f'{{"type":"text","text":"{text}"}}')
    return await collect(comm, seen, lambda s: len(s.of_type("response_done")) > replies)


async def _send_audio(comm, *, times_real_time: float, frame_ms: int = 40, stop: asyncio.Event) -> int:
    """Send silent frames on an absolute schedule at a multiple of real time until `stop`; returns ms sent."""
    frame, sent_ms, start = bytes(frame_ms * BYTES_PER_MS), 0, time.monotonic()
    while not stop.is_set():
        await comm.send_to(bytes_data=frame)
        sent_ms += frame_ms
        await asyncio.sleep(max(0.0, start + sent_ms / 1000 / times_real_time - time.monotonic()))
    return sent_ms


@database_sync_to_async
def _stored(conversation_id) -> tuple[Conversation, list[Turn]]:
    conversation = Conversation.objects.get(pk=conversation_id)
    return conversation, list(Turn.objects.filter(conversation=conversation).order_by("position"))


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def flood_lines():
    """What the consumer logs about floods (its own handler: the first ASGI import reconfigures the root logger)."""
    handler, log = _Lines(), logging.getLogger(FLOOD_LOGGER)
    log.addHandler(handler)
    try:
        yield lambda: [line for line in handler.lines if "flooded" in line]
    finally:
        log.removeHandler(handler)


@pytest.fixture
def other_cookie(django_user_model) -> bytes:
    """The session cookie of a second user, with a conversation of her own."""
    return session_cookie_for(django_user_model.objects.create_user(username="grace", password="x" * 12))


async def test_audio_at_ten_times_real_time_is_closed_with_1008_while_another_conversation_goes_on(
    use_simulator, user, cookie, other_cookie, flood_lines
):
    flooder, calm = communicator(cookie), communicator(other_cookie)
    flooded, steady = await _ready(flooder), await _ready(calm)
    flooded = await _say(flooder, flooded, "Note this")
    conversation_id = flooded.of_type("ready")[0]["conversation_id"]

    stop = asyncio.Event()
    flood = asyncio.create_task(_send_audio(flooder, times_real_time=10, stop=stop))
    started = time.monotonic()
    # The other conversation is answered while the flood goes on...
    steady = await _say(calm, steady, "Are you still there")
    flooded = await collect(flooder, flooded, lambda s: False, timeout=10)
    stop.set()
    sent_ms = await flood
    took = time.monotonic() - started

    assert flooded.closed_code == 1008
    error = flooded.of_type("error")[-1]
    assert error["code"] == "flood" and error["fatal"] and "saved" in error["message"]
    # 10 s of burst, drained at 10x - 2x: closed after about 1.25 s and 12.5 s of audio, not at the first frame.
    assert 10_000 < sent_ms < 20_000 and took < 5
    conversation, turns = await _stored(conversation_id)
    assert conversation.status == Conversation.Status.FAILED and conversation.ended_at
    assert "faster" in conversation.error
    assert [t.role for t in turns] == ["user", "assistant"] and turns[0].text == "Note this"
    assert live_conversations.get(conversation_id) is None  # ended, not waiting for the browser to come back
    [line] = flood_lines()
    assert f"user {user.pk}," in line and conversation_id in line and "audio over 2x real time" in line
    await flooder.disconnect()

    # ...and after it.
    steady = await _say(calm, steady, "Good")
    assert len(steady.of_type("response_done")) == 2 and steady.closed_code is None
    assert not steady.of_type("error")
    await calm.disconnect()


async def test_a_flood_of_control_messages_is_closed_with_1008(use_simulator, cookie, flood_lines):
    comm = communicator(cookie)
    seen = await _ready(comm)
    conversation_id = seen.of_type("ready")[0]["conversation_id"]
    for t in range(100):
        await comm.send_to(text_data=f'{{"type":"ping","t":{t}}}')
    seen = await collect(comm, seen, lambda s: False)
    await comm.disconnect()
    assert seen.closed_code == 1008
    assert seen.of_type("error")[-1]["code"] == "flood"
    assert 40 <= len(seen.of_type("pong")) < 100  # the burst was answered, the flood was not
    assert live_conversations.get(conversation_id) is None
    [line] = flood_lines()
    assert conversation_id in line and "control messages over 20/s with a burst of 40" in line


async def test_a_real_time_stream_with_stalls_bursts_and_pings_is_never_closed(use_simulator, cookie):
    """Frames of 20–100 ms in real time with jitter, a stall whose backlog arrives at once, pings and a burst of them."""
    rng = random.Random(9)
    comm = communicator(cookie)
    seen = await _ready(comm)
    start, captured_ms, pings = time.monotonic(), 0, 0

    async def ping() -> None:
        nonlocal pings
        pings += 1
        await comm.send_to(text_data=f'{{"type":"ping","t":{pings}}}')

    while captured_ms < 5_000:
        frame_ms = rng.choice((20, 40, 100))
        captured_ms += frame_ms
        # Captured at `captured_ms`, sent then plus up to 150 ms of jitter; from 1.5 s to 3.5 s the network stalls.
        due = captured_ms / 1000 + rng.uniform(0, 0.15)
        if 1_500 <= captured_ms < 3_500:
            due = 3.5
        await asyncio.sleep(max(0.0, start + due - time.monotonic()))
        await comm.send_to(bytes_data=bytes(frame_ms * BYTES_PER_MS))
        if captured_ms % 200 < frame_ms:
            await ping()
    for _ in range(30):
        await ping()
    seen = await collect(comm, seen, lambda s: len(s.of_type("pong")) == pings)
    await comm.disconnect()
    assert seen.closed_code is None
    assert not [e for e in seen.of_type("error") if e["code"] == "flood"]


async def test_an_oversized_frame_gets_its_error_and_the_socket_stays_open_but_a_stream_of_them_floods(
    use_simulator, cookie
):
    comm = communicator(cookie)
    seen = await _ready(comm)
    await comm.send_to(bytes_data=bytes(MAX_AUDIO_FRAME_BYTES + 2))
    await comm.send_to(text_data='{"type":"ping","t":1}')
    seen = await collect(comm, seen, lambda s: bool(s.of_type("pong")))
    assert [(e["code"], e["fatal"]) for e in seen.of_type("error")] == [("audio_frame_too_large", False)]
    # Each refused frame counts as the longest frame allowed (1 s): ten more at once are past the 10 s burst.
    for _ in range(10):
        await comm.send_to(bytes_data=bytes(MAX_AUDIO_FRAME_BYTES * 3))
    seen = await collect(comm, seen, lambda s: False)
    await comm.disconnect()
    assert seen.closed_code == 1008
    assert [e["code"] for e in seen.of_type("error")].count("audio_frame_too_large") >= 9


async def test_a_stream_of_tiny_frames_floods_as_ten_milliseconds_each(use_simulator, cookie):
    """Each frame costs at least 10 ms of audio: 2-byte frames cannot become 48 000 upstream events a second."""
    comm = communicator(cookie)
    seen = await _ready(comm)
    for _ in range(1_200):  # 12 s at 10 ms each, sent at once: past the 10 s burst
        await comm.send_to(bytes_data=b"\x00\x00")
    seen = await collect(comm, seen, lambda s: False)
    await comm.disconnect()
    assert seen.closed_code == 1008
    assert seen.of_type("error")[-1]["code"] == "flood"
    appended = [e for e in use_simulator.received if e["type"] == "input_audio_buffer.append"]
    assert 900 <= len(appended) <= 1_050  # about the burst (10 s) plus what 2x real time refilled meanwhile


async def test_empty_frames_are_ignored_and_never_relayed(use_simulator, cookie):
    comm = communicator(cookie)
    seen = await _ready(comm)
    for _ in range(20):
        await comm.send_input({"type": "websocket.receive", "bytes": b""})
    await comm.send_to(text_data='{"type":"ping","t":1}')
    seen = await collect(comm, seen, lambda s: bool(s.of_type("pong")))
    await comm.disconnect()
    assert seen.closed_code is None and not seen.of_type("error")
    assert not [e for e in use_simulator.received if e["type"] == "input_audio_buffer.append"]
