"""Conversation turns in both dialects: server VAD, text items, push-to-talk, truncation, cancellation."""

from __future__ import annotations

import asyncio
import base64
import math
from typing import Any

import pytest

from conversations.realtime.simulator import RealtimeSimulator

from .simulator_fixtures import (  # noqa: F401 (fixtures are used by name)
    append_audio,
    audio_delta_type,
    open_session,
    paced_sim_fixture,
    recv_event,
    recv_until,
    send,
    session_update,
    sim_fixture,
    spoken_turn,
    transcript_delta_type,
    user_text,
)

INSTRUCTIONS = "You are a test."
TRANSCRIPTION = (
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.completed",
)


def expected_turn(dialect: str) -> list[str]:
    """The non-delta events of a server-VAD turn, in the service's order."""
    if dialect == "ga":
        return [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
            "response.created",
            "rate_limits.updated",
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added",
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
        ]
    return [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.created",
        "response.created",
        "rate_limits.updated",
        "response.output_item.added",
        "conversation.item.created",
        "response.content_part.added",
        "response.audio.done",
        "response.audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
    ]


async def start(ws: Any, dialect: str, **fields: Any) -> None:
    """Wait for the greeting and apply a session.update."""
    await recv_until(ws, dialect, "session.created")
    await send(ws, session_update(dialect, instructions=INSTRUCTIONS, **fields))
    await recv_until(ws, dialect, "session.updated")


def audio_ms(events: list[dict[str, Any]], dialect: str) -> list[float]:
    """Decoded duration of each audio delta, checking it is PCM16 at 24 kHz."""
    sizes = [
        len(base64.b64decode(e["delta"])) for e in events if e["type"] == audio_delta_type(dialect)
    ]
    assert all(size % 2 == 0 for size in sizes)
    return [size / 48 for size in sizes]


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "preview"])
async def test_a_server_vad_turn_runs_in_the_service_order(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws:
        await start(ws, dialect, transcribe=True)
        await append_audio(ws, await spoken_turn())
        events = await recv_until(ws, dialect, "response.done")
        if not any(e["type"] == TRANSCRIPTION[1] for e in events):
            events += await recv_until(ws, dialect, TRANSCRIPTION[1])
        # recv_until validated every event against the openai types; the server checked too.
        names = [
            e["type"]
            for e in events
            if not e["type"].endswith(".delta") and e["type"] not in TRANSCRIPTION
        ]
        assert names == expected_turn(dialect)

        by_type = {e["type"]: e for e in events}
        started, stopped = (
            by_type["input_audio_buffer.speech_started"],
            by_type["input_audio_buffer.speech_stopped"],
        )
        user_id = started["item_id"]
        assert user_id.startswith("item_") and stopped["item_id"] == user_id
        assert by_type["input_audio_buffer.committed"]["item_id"] == user_id
        user_ms = stopped["audio_end_ms"] - started["audio_start_ms"]
        # 200 ms of leading silence, 300 ms prefix padding: speech starts within the first 40 ms of sound.
        assert 0 <= started["audio_start_ms"] <= 200
        assert user_ms > 1000

        # Transcription arrives asynchronously after the commit, for the committed item.
        committed_at = events.index(by_type["input_audio_buffer.committed"])
        completed = by_type[TRANSCRIPTION[1]]
        assert events.index(completed) > committed_at and completed["item_id"] == user_id
        assert completed["transcript"] == f"Speech of {user_ms / 1000:.1f} seconds."

        durations = audio_ms(events, dialect)
        assert (
            durations
            and all(100 <= ms <= 250 for ms in durations[:-1])
            and 0 < durations[-1] <= 250
        )
        transcript = "".join(
            e["delta"] for e in events if e["type"] == transcript_delta_type(dialect)
        )
        done_name = (
            "response.output_audio_transcript.done"
            if dialect == "ga"
            else "response.audio_transcript.done"
        )
        assert (
            by_type[done_name]["transcript"]
            == transcript
            == f"I heard you speak for {user_ms / 1000:.1f} seconds."
        )

        response = by_type["response.done"]["response"]
        assert response["id"].startswith("resp_") and response["status"] == "completed"
        assert response["output"][0]["status"] == "completed"
        usage = response["usage"]
        assert usage["input_token_details"]["audio_tokens"] == math.ceil(user_ms / 100)
        assert usage["input_token_details"]["text_tokens"] == math.ceil(len(INSTRUCTIONS) / 4)
        assert usage["input_token_details"]["cached_tokens"] == 0
        assert usage["output_token_details"]["audio_tokens"] == math.ceil(sum(durations) / 50)
        assert usage["output_token_details"]["text_tokens"] == math.ceil(len(transcript) / 4)
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "preview"])
async def test_a_text_item_then_response_create_gets_an_answer(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws:
        await start(ws, dialect, turn_detection=None)
        await send(ws, user_text("What is the capital of France?"))
        added = await recv_event(ws, dialect)
        assert added["type"] == (
            "conversation.item.added" if dialect == "ga" else "conversation.item.created"
        )
        await send(ws, {"type": "response.create"})
        first = await recv_until(ws, dialect, "response.done")
        transcript = "".join(
            e["delta"] for e in first if e["type"] == transcript_delta_type(dialect)
        )
        assert transcript == "You wrote: What is the capital of France?"
        first_usage = first[-1]["response"]["usage"]

        # A second turn re-bills the whole conversation, part of it from the cache.
        await send(ws, user_text("And of Italy?"))
        await send(ws, {"type": "response.create"})
        second = await recv_until(ws, dialect, "response.done")
        usage = second[-1]["response"]["usage"]
        heard = sum(audio_ms(first, dialect))
        assert usage["input_token_details"]["audio_tokens"] == math.ceil(heard / 50)
        assert (
            usage["input_tokens"]
            > first_usage["input_tokens"] + first_usage["output_token_details"]["audio_tokens"] - 1
        )
        assert 0 < usage["input_token_details"]["cached_tokens"] <= first_usage["input_tokens"]


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "preview"])
async def test_push_to_talk_commits_without_vad_events(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws:
        await start(ws, dialect, turn_detection=None)
        await append_audio(ws, await spoken_turn())
        await send(ws, {"type": "input_audio_buffer.commit"})
        committed = await recv_event(ws, dialect)
        assert committed["type"] == "input_audio_buffer.committed"
        await send(ws, {"type": "response.create"})
        events = await recv_until(ws, dialect, "response.done")
        assert not any(e["type"].startswith("input_audio_buffer.speech") for e in events)
        assert events[-1]["response"]["status"] == "completed"
        # Nothing left to commit: the service's commit_empty error, and the session goes on.
        await send(ws, {"type": "input_audio_buffer.commit"})
        error = await recv_until(ws, dialect, "error")
        assert error[-1]["error"]["code"] == "input_audio_buffer_commit_empty"
        await send(
            ws,
            {
                "type": "input_audio_buffer.append",
                "audio": base64.b64encode(bytes(48 * 50)).decode(),
            },
        )
        await send(ws, {"type": "input_audio_buffer.commit"})
        assert (await recv_until(ws, dialect, "error"))[-1]["error"][
            "code"
        ] == "input_audio_buffer_commit_empty"


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "preview"])
async def test_truncate_accepts_what_was_received_and_refuses_more(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws:
        await start(ws, dialect, turn_detection=None)
        await send(ws, {"type": "response.create"})
        events = await recv_until(ws, dialect, "response.done")
        item_id = events[-1]["response"]["output"][0]["id"]
        received_ms = int(sum(audio_ms(events, dialect)))
        truncate = {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0}
        await send(ws, dict(truncate, audio_end_ms=received_ms + 1000))
        error = await recv_event(ws, dialect)
        assert error["type"] == "error" and error["error"]["param"] == "audio_end_ms"
        # Clamped client-side to what was received, it succeeds.
        await send(ws, dict(truncate, audio_end_ms=min(received_ms + 1000, received_ms)))
        truncated = await recv_event(ws, dialect)
        assert (
            truncated["type"] == "conversation.item.truncated"
            and truncated["audio_end_ms"] == received_ms
        )
        await send(ws, dict(truncate, item_id="item_unknown", audio_end_ms=10))
        assert (await recv_event(ws, dialect))["type"] == "error"
        record = sim.sessions[0].session
        assert record is not None and record.items[-1].truncated_ms == received_ms


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "preview"])
async def test_response_cancel_ends_the_response_as_cancelled(
    paced_sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(paced_sim, dialect) as ws:
        await start(ws, dialect, turn_detection=None)
        await send(ws, {"type": "response.create"})
        await recv_until(ws, dialect, audio_delta_type(dialect))
        await send(ws, {"type": "response.create"})
        busy = await recv_until(ws, dialect, "error")
        assert busy[-1]["error"]["code"] == "conversation_already_has_active_response"
        await send(ws, {"type": "response.cancel"})
        events = await recv_until(ws, dialect, "response.done")
        response = events[-1]["response"]
        assert response["status"] == "cancelled"
        assert response["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
        assert response["output"][0]["status"] == "incomplete"
        await send(ws, {"type": "response.cancel"})
        assert (await recv_until(ws, dialect, "error"))[-1]["error"][
            "code"
        ] == "response_cancel_not_active"


@pytest.mark.asyncio
async def test_speech_interrupts_a_response(paced_sim: RealtimeSimulator) -> None:
    dialect = "ga"
    async with open_session(paced_sim, dialect) as ws:
        await start(ws, dialect)
        await send(ws, user_text("Tell me a story."))
        await send(ws, {"type": "response.create"})
        await recv_until(ws, dialect, audio_delta_type(dialect))
        sender = asyncio.ensure_future(append_audio(ws, await spoken_turn()))
        events = await recv_until(ws, dialect, "response.done")
        names = [e["type"] for e in events]
        assert names.index("input_audio_buffer.speech_started") < names.index("response.done")
        assert events[-1]["response"]["status_details"]["reason"] == "turn_detected"
        # The user's turn then completes and gets its own answer.
        await sender
        events = await recv_until(ws, dialect, "response.done")
        assert events[-1]["response"]["status"] == "completed"


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "preview"])
async def test_a_new_response_is_accepted_only_after_the_cancelled_one_is_done(
    paced_sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(paced_sim, dialect) as ws:
        await start(ws, dialect, turn_detection=None)
        await send(ws, {"type": "response.create"})
        first = (await recv_until(ws, dialect, "response.created"))[-1]["response"]["id"]
        await recv_until(ws, dialect, audio_delta_type(dialect))
        # Cancel and create back to back, as an impatient client would.
        await send(ws, {"type": "response.cancel"})
        await send(ws, {"type": "response.create"})
        events = await recv_until(ws, dialect, "response.created")
        names = [e["type"] for e in events if not e["type"].endswith(".delta")]
        assert "error" not in names
        done = next(e for e in events if e["type"] == "response.done")["response"]
        assert (done["id"], done["status"]) == (first, "cancelled")
        assert names.index("response.done") < names.index("response.created")
        assert events[-1]["response"]["id"] != first
        await send(ws, {"type": "response.cancel"})
        assert (await recv_until(ws, dialect, "response.done"))[-1]["response"][
            "status"
        ] == "cancelled"


def seeded_history(dialect: str) -> list[dict[str, Any]]:
    """Earlier turns as a relay re-injects them into a new session: text items only."""
    assistant_text = "output_text" if dialect == "ga" else "text"
    turns = [
        ("user", "input_text", "What is the capital of France?"),
        ("assistant", assistant_text, "Paris is the capital of France."),
        ("user", "input_text", "And of Italy?"),
        ("assistant", assistant_text, "Rome."),
    ]
    return [
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": role,
                "content": [{"type": kind, "text": text}],
            },
        }
        for role, kind, text in turns
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "preview"])
async def test_a_seeded_text_history_is_announced_billed_and_answered(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws:
        await start(ws, dialect, turn_detection=None)
        history = seeded_history(dialect)
        for event in history:
            await send(ws, event)
            if dialect == "ga":
                added = await recv_event(ws, dialect)
                done = await recv_event(ws, dialect)
                assert (added["type"], done["type"]) == (
                    "conversation.item.added",
                    "conversation.item.done",
                )
            else:
                added = await recv_event(ws, dialect)
                assert added["type"] == "conversation.item.created"
            assert added["item"]["role"] == event["item"]["role"]
            assert added["item"]["content"] == event["item"]["content"]
        # The history ends with the assistant: with nothing new, the reply says so.
        await send(ws, {"type": "response.create"})
        events = await recv_until(ws, dialect, "response.done")
        reply = "".join(e["delta"] for e in events if e["type"] == transcript_delta_type(dialect))
        assert reply == "Is there anything else I can help you with?"
        # Every seeded item is billed as input text, at about 4 characters per token.
        usage = events[-1]["response"]["usage"]
        assert usage["input_token_details"]["text_tokens"] == math.ceil(
            len(INSTRUCTIONS) / 4
        ) + sum(math.ceil(len(e["item"]["content"][0]["text"]) / 4) for e in history)
        assert usage["input_token_details"]["audio_tokens"] == 0

        # The user's next spoken turn is answered, after the seeded history and that reply.
        await append_audio(ws, await spoken_turn())
        await send(ws, {"type": "input_audio_buffer.commit"})
        await send(ws, {"type": "response.create"})
        events = await recv_until(ws, dialect, "response.done")
        reply = "".join(e["delta"] for e in events if e["type"] == transcript_delta_type(dialect))
        assert reply.startswith("I heard you speak for ")
    assert [(role, kind) for role, kind, _ in sim.history(0)] == [
        ("user", "text"),
        ("assistant", "text"),
        ("user", "text"),
        ("assistant", "text"),
        ("assistant", "audio"),
        ("user", "audio"),
        ("assistant", "audio"),
    ]
    assert sim.history(0)[1][2] == "Paris is the capital of France."


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "preview"])
async def test_after_a_seeded_history_the_latest_user_item_is_answered(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws:
        await start(ws, dialect, turn_detection=None)
        for event in seeded_history(dialect)[:3]:  # ends with the user's unanswered question
            await send(ws, event)
        await send(ws, {"type": "response.create"})
        events = await recv_until(ws, dialect, "response.done")
        reply = "".join(e["delta"] for e in events if e["type"] == transcript_delta_type(dialect))
        assert reply == "You wrote: And of Italy?"


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "preview"])
async def test_scripted_replies_are_said_in_order_then_replies_are_derived_again(
    sim: RealtimeSimulator, dialect: str
) -> None:
    hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    sim.next_replies([hostile, "Second   scripted\nreply."])
    with pytest.raises(ValueError):
        sim.next_replies(["  "])
    async with open_session(sim, dialect) as ws:
        await start(ws, dialect, turn_detection=None)
        said = []
        for _ in range(3):
            await send(ws, user_text("Say something"))
            await send(ws, {"type": "response.create"})
            events = await recv_until(ws, dialect, "response.done")
            deltas = "".join(e["delta"] for e in events if e["type"] == transcript_delta_type(dialect))
            done_type = ("response.output_audio_transcript.done" if dialect == "ga"
                         else "response.audio_transcript.done")
            [done] = [e for e in events if e["type"] == done_type]
            assert deltas == done["transcript"]
            said.append(done["transcript"])
    assert said == [hostile, "Second   scripted\nreply.", "You wrote: Say something."]
    assert sim.history()[-1] == ("assistant", "audio", "You wrote: Say something.")
