"""Whatever a browser sends down the talk socket, the whole receive path answers it as documented and stores nothing half.

Hypothesis draws sequences of frames (valid commands, malformed JSON, JSON of the wrong shape,
unknown types, huge strings, odd, empty and oversized binary frames, silent audio between them)
and sends them through the full ASGI application to a live conversation on the in-process
simulator. After every frame the test pings: the pong proves the socket survived, and whatever
arrived before it must be the documented answer to that frame. After Stop the stored
conversation holds exactly the typed messages that were accepted, each complete, and a reply to each.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from itertools import count
from typing import Any

import pytest
from channels.db import database_sync_to_async
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conversations.models import Conversation, Turn
from conversations.realtime.protocol import (
    MAX_AUDIO_END_MS,
    MAX_AUDIO_FRAME_BYTES,
    MAX_ITEM_ID_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_TEXT_CHARS,
)

from .hostile import HOSTILE
from .hostile import json_values as hostile_json
from .hypothesis_budget import examples
from .relay import Transcript, collect, communicator

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("end_live_conversations")]

# Every message type the server may send (docs/browser-protocol.md, "Server → browser").
SERVER_TYPES = {
    "ready", "history", "reconnecting", "note", "settings_applied", "speech_started", "speech_stopped",
    "user_item", "assistant_item", "transcript", "transcript_done", "audio_done", "response_done",
    "truncated", "error", "limit_warning", "usage", "pong",
}
_markers = count(1)


@dataclass(frozen=True)
class Frame:
    """One frame to send and what the documentation says it earns."""

    text: str | None = None  # a text frame
    data: bytes | None = None  # a binary frame
    error: str = ""  # the error code it must get (not fatal), or "" for none
    stored: str | None = None  # a typed message that must be stored as this user turn, and answered
    answer: str = ""  # a message type it must get ("pong", "settings_applied")
    replies: bool = False  # it asks the model for a reply (stored as an assistant turn)

    def __repr__(self) -> str:  # short, so a failing example stays readable
        body = self.text if self.text is not None else self.data
        shown = repr(body[:60]) + (f"...({len(body)})" if body is not None and len(body) > 60 else "")
        return f"Frame({'text' if self.text is not None else 'bytes'}={shown}, error={self.error!r})"


def _typed(text: str) -> Frame:
    """A `text` command, and what the server must do with it."""
    # Stored as sent, but for what no database can hold (NUL, half a surrogate pair): U+FFFD instead.
    cleaned = "".join("\ufffd" if "\ud800" <= ch <= "\udfff" or ch == "\x00" else ch for ch in text).strip()
    raw = json.dumps({"type": "text", "text": text})
    if len(raw) > MAX_MESSAGE_CHARS:
        return Frame(text=raw, error="message_too_long")
    if not cleaned:
        return Frame(text=raw, error="empty_text")
    if len(cleaned) > MAX_TEXT_CHARS:
        return Frame(text=raw, error="text_too_long")
    return Frame(text=raw, stored=cleaned, replies=True)


def _not_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return True
    return False


def _truncate(item_id: Any, end: Any) -> Frame:
    """A `truncate` command: no reply in these sessions has a random id, so a valid one is `unknown_item`."""
    raw = json.dumps({"type": "truncate", "item_id": item_id, "audio_end_ms": end})
    if not isinstance(item_id, str) or not item_id or len(item_id) > MAX_ITEM_ID_CHARS or any(
        "\ud800" <= ch <= "\udfff" for ch in item_id
    ):
        return Frame(text=raw, error="invalid_item_id")
    if isinstance(end, bool) or not isinstance(end, (int, float)) or not 0 <= end <= MAX_AUDIO_END_MS:
        return Frame(text=raw, error="invalid_audio_end_ms")
    return Frame(text=raw, error="unknown_item")


json_values = hostile_json(max_size=4, max_leaves=12)
typed_texts = st.one_of(
    st.text(max_size=200),
    st.just(HOSTILE),
    st.builds(lambda pad, word: pad + word + pad, st.sampled_from(["", " ", "\n\t "]), st.sampled_from([HOSTILE, "hi", "&amp;"])),
    st.integers(MAX_TEXT_CHARS + 1, 30_000).map(lambda n: "x" * n),  # too long, but a small frame
    st.integers(MAX_TEXT_CHARS, 6_000).map(lambda n: " " * n + "ok"),  # long only before stripping
    st.sampled_from(["\ud800", "a\udfffb", "a\x00b", "\x00", "   ", ""]),  # lone surrogates (JSON escapes), NUL, blank
)
text_frames = st.one_of(
    typed_texts.map(_typed),
    # Not JSON at all: garbage, cut-off messages, nesting past the recursion limit, a 5000-digit number.
    st.text(max_size=80).filter(_not_json).map(lambda t: Frame(text=t, error="invalid_json")),
    st.sampled_from(['{"type":"ping"', '{"type":', "{", "[", '{"type":"text","text":"a}', "\x00"]).map(
        lambda t: Frame(text=t, error="invalid_json")),
    st.integers(2_000, 30_000).map(lambda n: Frame(text="[" * n + "]" * n, error="invalid_json")),
    st.just(Frame(text='{"type":"ping","t":' + "9" * 5000 + "}", error="invalid_json")),
    st.just(Frame(text="", error="invalid_json")),
    # Over the parser's limit: refused unparsed.
    st.integers(MAX_MESSAGE_CHARS + 1, 300_000).map(lambda n: Frame(text='{"type":"text","text":"' + "y" * n + '"}',
                                                                      error="message_too_long")),
    # JSON of the wrong shape.
    json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: Frame(text=json.dumps(v), error="invalid_message")),
    st.dictionaries(st.text(max_size=8).filter(lambda k: k != "type"), json_values, max_size=4).map(
        lambda d: Frame(text=json.dumps(d), error="unknown_type")),
    json_values.filter(lambda v: not isinstance(v, str)).map(
        lambda v: Frame(text=json.dumps({"type": v}), error="unknown_type")),
    st.text(max_size=60).filter(lambda k: k not in {"truncate", "text", "press", "commit", "cancel", "apply_settings",
                                                    "ping"}).map(
        lambda k: Frame(text=json.dumps({"type": k}), error="unknown_type")),
    json_values.filter(lambda v: not isinstance(v, str)).map(
        lambda v: Frame(text=json.dumps({"type": "text", "text": v}), error="invalid_text")),
    st.builds(_truncate, st.one_of(json_values, st.text(max_size=140)),
              st.one_of(json_values, st.integers(-10, MAX_AUDIO_END_MS + 10), st.floats())),
    # Valid commands with no reply of their own.
    st.builds(lambda t: Frame(text=json.dumps({"type": "ping", "t": t}), answer="pong"), json_values),
    st.sampled_from([
        Frame(text='{"type":"cancel"}'),
        Frame(text='{"type":"press"}'),
        Frame(text='{"type":"apply_settings"}', answer="settings_applied"),
        Frame(text='{"type":"commit","extra":[1,2,3]}', replies=True),  # automatic turns: commit asks for a reply
    ]),
)
binary_frames = st.one_of(
    st.integers(0, MAX_AUDIO_FRAME_BYTES // 2 - 1).map(lambda n: Frame(data=bytes(2 * n + 1), error="invalid_audio")),
    st.integers(MAX_AUDIO_FRAME_BYTES + 1, 150_000).map(lambda n: Frame(data=b"\x01" * n, error="audio_frame_too_large")),
    st.just(Frame(data=b"")),  # an empty frame: ignored
    # Valid (silent) audio: relayed, and too quiet to start a turn.
    st.integers(1, MAX_AUDIO_FRAME_BYTES // 2).map(lambda n: Frame(data=bytes(2 * n))),
)
# At most three frames of 1 s or more: the audio flood limit (10 s burst) is not what this suite is about.
sequences = st.lists(st.one_of(text_frames, binary_frames), min_size=1, max_size=7).filter(
    lambda frames: sum(1 for f in frames if f.data is not None and len(f.data) >= MAX_AUDIO_FRAME_BYTES) <= 3)


class _Problems(logging.Handler):
    """Every log record at ERROR or above, or carrying a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


@pytest.fixture
def problems():
    """The log records that would mean a handler raised (an own handler: the app's logging config owns the root's)."""
    handler = _Problems()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@database_sync_to_async
def _stored(conversation_id: str) -> tuple[Conversation, list[Turn]]:
    conversation = Conversation.objects.get(pk=conversation_id)
    return conversation, list(Turn.objects.filter(conversation=conversation).order_by("position"))


async def _send(comm, frame: Frame) -> None:
    # Straight to the app, as a server hands it over: channels' send_to cannot send an empty frame.
    if frame.data is not None:
        await comm.send_input({"type": "websocket.receive", "bytes": frame.data})
    else:
        await comm.send_input({"type": "websocket.receive", "text": frame.text})


async def _answered(comm, seen: Transcript, frame: Frame) -> list[dict[str, Any]]:
    """Send the frame, then a ping; return what came back before the pong (and the reply, if one was asked for)."""
    start, replies = len(seen.messages), len(seen.of_type("response_done"))
    await _send(comm, frame)
    marker = -0.5 - next(_markers)  # no drawn ping carries this `t`
    await comm.send_to(text_data=json.dumps({"type": "ping", "t": marker}))
    await collect(comm, seen, lambda s: any(m["type"] == "pong" and m["t"] == marker for m in s.messages[start:]))
    assert seen.closed_code is None, f"closed with {seen.closed_code} after {frame!r}"
    if frame.replies:
        await collect(comm, seen, lambda s: len(s.of_type("response_done")) > replies)
        assert seen.closed_code is None
    return [m for m in seen.messages[start:] if not (m["type"] == "pong" and m["t"] == marker)]


async def _send_all(comm, seen: Transcript, frames: list[Frame], problems) -> tuple[list[str], int]:
    """Send each frame and check its answer; returns the typed messages that must be stored and the replies asked for."""
    typed: list[str] = []
    asked = 0
    for frame in frames:
        answer = await _answered(comm, seen, frame)
        assert {m["type"] for m in answer} <= SERVER_TYPES, answer
        errors = [m for m in answer if m["type"] == "error"]
        assert not any(m["fatal"] for m in errors), (frame, errors)
        assert [m["code"] for m in errors] == ([frame.error] if frame.error else []), (frame, errors)
        assert all(isinstance(m["message"], str) and m["message"] for m in errors)
        if frame.answer:
            assert any(m["type"] == frame.answer for m in answer), (frame, answer)
        # Which answers the examples reached (shown by --hypothesis-show-statistics).
        event(f"answered {frame.error or frame.answer or ('reply' if frame.replies else 'nothing')}")
        if frame.stored is not None:
            typed.append(frame.stored)
        asked += frame.replies
        assert not problems.records, [r.getMessage() for r in problems.records]
    return typed, asked


@given(frames=sequences)
@settings(max_examples=examples(100), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
async def test_any_frames_get_their_documented_answer_and_leave_a_whole_conversation(
        frames, use_simulator, cookie, problems):
    problems.records.clear()
    comm = communicator(cookie)
    connected, _ = await comm.connect()
    assert connected
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    assert seen.of_type("ready"), (seen.closed_code, seen.messages)
    conversation_id = seen.of_type("ready")[0]["conversation_id"]

    try:
        typed, asked = await _send_all(comm, seen, frames, problems)
    finally:
        await comm.disconnect()  # Stop: the conversation ends and is stored (and a failed example frees its slot)
    conversation, turns = await _stored(conversation_id)
    assert conversation.status == Conversation.Status.ENDED and not conversation.error
    assert all(t.role in ("user", "assistant") and isinstance(t.text, str) and t.item_id for t in turns)
    assert [t.position for t in turns] == sorted({t.position for t in turns})
    # Exactly the accepted typed messages, whole and in order: nothing for refused input.
    assert [t.text for t in turns if t.role == "user"] == typed
    # Every reply asked for was waited for, so it is stored complete (not cut by Stop).
    replies = [t for t in turns if t.role == "assistant"]
    assert len(replies) == asked and all(t.text and not t.interrupted and not t.status for t in replies), replies
    if typed:
        assert conversation.title == " ".join(typed[0].split())[:80]
    assert not problems.records, [r.getMessage() for r in problems.records]


async def test_a_reply_holding_nul_and_half_a_surrogate_pair_is_shown_and_stored_whole(use_simulator, cookie):
    """The model's text is outside input too: PostgreSQL refused the turn with NUL in it, and the reply was lost."""
    use_simulator.next_replies(["Odd \x00 reply \ud800 here"])
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    conversation_id = seen.of_type("ready")[0]["conversation_id"]
    await comm.send_to(text_data='{"type":"text","text":"Say something odd"}')
    seen = await collect(comm, seen, lambda s: bool(s.of_type("response_done")))
    await comm.disconnect()
    said = [m["text"] for m in seen.of_type("transcript_done") if m["role"] == "assistant"]
    assert said == ["Odd \ufffd reply \ufffd here"]
    _, turns = await _stored(conversation_id)
    assert [(t.role, t.text) for t in turns] == [("user", "Say something odd"), ("assistant", "Odd \ufffd reply \ufffd here")]
