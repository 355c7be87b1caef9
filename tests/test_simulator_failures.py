"""How the simulator fails like Azure mid-session: transcription, responses and server errors."""

from __future__ import annotations

import base64
import math
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from conversations.realtime.simulator import RealtimeSimulator

from .simulator_fixtures import (  # noqa: F401 (fixtures are used by name)
    KEY,
    append_audio,
    audio_delta_type,
    open_session,
    recv_event,
    recv_until,
    send,
    sim_fixture,
    spoken_turn,
    transcript_delta_type,
    user_text,
)

FAILED = "conversation.item.input_audio_transcription.failed"
COMPLETED = "conversation.item.input_audio_transcription.completed"


def transcription_update(dialect: str, model: str) -> dict[str, Any]:
    """A session.update that turns on transcription with `model` (a deployment name on Azure)."""
    if dialect == "ga":
        session = {
            "type": "realtime",
            "audio": {"input": {"transcription": {"model": model}, "turn_detection": None}},
        }
    else:
        session = {"input_audio_transcription": {"model": model}, "turn_detection": None}
    return {"type": "session.update", "session": session}


async def committed_turn(ws: ClientConnection, dialect: str) -> tuple[str, dict[str, Any]]:
    """Commit one spoken turn (push-to-talk) and return its item id and its transcription outcome."""
    await append_audio(ws, await spoken_turn())
    await send(ws, {"type": "input_audio_buffer.commit"})
    item_id = (await recv_until(ws, dialect, "input_audio_buffer.committed"))[-1]["item_id"]
    while True:
        event = await recv_event(ws, dialect)
        if event["type"] in (FAILED, COMPLETED):
            assert event["item_id"] == item_id
            return item_id, event


@pytest.mark.asyncio
@pytest.mark.parametrize("target", ["ga", "preview"])
async def test_an_unknown_transcription_deployment_fails_every_user_turn(
    sim: RealtimeSimulator, target: str
) -> None:
    dialect = target
    async with open_session(sim, target) as ws:
        await recv_until(ws, dialect, "session.created")
        # Azure accepts the update: the name is only looked up when there is audio to transcribe.
        await send(ws, transcription_update(dialect, "gpt-4o-transcribe-not-deployed"))
        await recv_until(ws, dialect, "session.updated")
        for _ in range(2):
            item_id, outcome = await committed_turn(ws, dialect)
            assert outcome["type"] == FAILED
            assert outcome["content_index"] == 0
            assert outcome["error"] == {
                "type": "server_error",
                "code": None,
                "message": f"Input transcription failed for item '{item_id}'.",
                "param": None,
            }
    assert sim.history(0) == [("user", "audio", ""), ("user", "audio", "")]  # no transcript


@pytest.mark.asyncio
async def test_a_deployed_transcription_name_on_azure_transcribes() -> None:
    async with RealtimeSimulator(
        api_key=KEY,
        realtime_pacing=False,
        strict=True,
        transcription_delay_s=0.01,
        transcription_deployments=["my-whisper"],
    ) as sim:
        async with open_session(sim, "ga") as ws:
            await recv_until(ws, "ga", "session.created")
            await send(ws, transcription_update("ga", "my-whisper"))
            await recv_until(ws, "ga", "session.updated")
            _, outcome = await committed_turn(ws, "ga")
            assert outcome["type"] == COMPLETED and outcome["transcript"].startswith("Speech of ")
            # The model name is not a deployment here: Azure fails it.
            await send(ws, transcription_update("ga", "whisper-1"))
            await recv_until(ws, "ga", "session.updated")
            _, outcome = await committed_turn(ws, "ga")
            assert outcome["type"] == FAILED
        assert sim.validation_errors == []


@pytest.mark.asyncio
async def test_the_openai_route_knows_transcription_models_not_deployments() -> None:
    async with RealtimeSimulator(
        api_key=KEY,
        realtime_pacing=False,
        strict=True,
        transcription_delay_s=0.01,
        transcription_deployments=["my-whisper"],
    ) as sim:
        async with open_session(sim, "openai") as ws:
            await recv_until(ws, "ga", "session.created")
            await send(ws, transcription_update("ga", "gpt-4o-mini-transcribe"))
            await recv_until(ws, "ga", "session.updated")
            assert (await committed_turn(ws, "ga"))[1]["type"] == COMPLETED
            await send(ws, transcription_update("ga", "my-whisper"))
            await recv_until(ws, "ga", "session.updated")
            assert (await committed_turn(ws, "ga"))[1]["type"] == FAILED
        assert sim.validation_errors == []


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "preview"])
async def test_transcription_failures_fails_the_next_n_transcriptions_then_recovers(
    dialect: str,
) -> None:
    async with RealtimeSimulator(
        api_key=KEY,
        realtime_pacing=False,
        strict=True,
        transcription_delay_s=0.01,
        transcription_failures=2,
    ) as sim:
        async with open_session(sim, dialect) as ws:
            await recv_until(ws, dialect, "session.created")
            model = "whisper-1" if dialect == "preview" else "gpt-4o-mini-transcribe"
            await send(ws, transcription_update(dialect, model))
            await recv_until(ws, dialect, "session.updated")
            outcomes = [(await committed_turn(ws, dialect))[1]["type"] for _ in range(3)]
        assert outcomes == [FAILED, FAILED, COMPLETED]
        assert sim.options.transcription_failures == 0
        assert sim.validation_errors == []


async def one_response(ws: ClientConnection, dialect: str, text: str) -> list[dict[str, Any]]:
    """Send a user text item and response.create; return the events up to response.done."""
    await send(ws, user_text(text))
    await send(ws, {"type": "response.create"})
    return await recv_until(ws, dialect, "response.done")


def spoken(events: list[dict[str, Any]], dialect: str) -> tuple[str, int]:
    """The transcript and the milliseconds of audio a response streamed."""
    text = "".join(e["delta"] for e in events if e["type"] == transcript_delta_type(dialect))
    pcm = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == audio_delta_type(dialect)
    )
    return text, len(pcm) // 48


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "preview"])
async def test_next_responses_end_failed_or_incomplete_in_order(
    sim: RealtimeSimulator, dialect: str
) -> None:
    sim.next_responses(["failed", "incomplete:content_filter", "incomplete:max_output_tokens"])
    question = "Please tell me something rather long about the weather today."
    async with open_session(sim, dialect) as ws:
        await recv_until(ws, dialect, "session.created")
        failed = await one_response(ws, dialect, question)
        response = failed[-1]["response"]
        assert response["status"] == "failed" and response["output"] == []
        assert response["status_details"]["type"] == "failed"
        error = response["status_details"]["error"]
        assert error["type"] == "server_error" and error["code"] is None
        assert "server had an error" in error["message"]
        assert response["usage"]["total_tokens"] == 0
        assert not any(e["type"] == audio_delta_type(dialect) for e in failed)

        for reason in ("content_filter", "max_output_tokens"):
            events = await one_response(ws, dialect, question)
            response = events[-1]["response"]
            assert response["status"] == "incomplete"
            assert response["status_details"] == {"type": "incomplete", "reason": reason}
            assert response["output"][0]["status"] == "incomplete"
            text, heard_ms = spoken(events, dialect)
            full = f"You wrote: {question}"
            # Cut about halfway: some of the reply was spoken, not all of it.
            assert text and full.startswith(text) and text != full
            assert 0 < heard_ms
            assert response["usage"]["output_tokens"] == math.ceil(len(text) / 4) + math.ceil(
                heard_ms / 50
            )

        completed = await one_response(ws, dialect, question)
        assert completed[-1]["response"]["status"] == "completed"
        assert spoken(completed, dialect)[0] == f"You wrote: {question}"


def test_next_responses_refuses_an_unknown_outcome() -> None:
    with pytest.raises(ValueError, match="incomplete:tired"):
        RealtimeSimulator().next_responses(["incomplete:tired"])


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "preview"])
@pytest.mark.parametrize("modality", ["audio", "text"])
async def test_a_numeric_max_output_tokens_cuts_the_reply_where_the_tokens_run_out(
    sim: RealtimeSimulator, dialect: str, modality: str
) -> None:
    limit = 12
    if dialect == "ga":
        update = {"type": "realtime", "max_output_tokens": limit, "output_modalities": [modality]}
    else:
        modalities = ["text", "audio"] if modality == "audio" else ["text"]
        update = {"max_response_output_tokens": limit, "modalities": modalities}
    async with open_session(sim, dialect) as ws:
        await recv_until(ws, dialect, "session.created")
        await send(ws, {"type": "session.update", "session": update})
        await recv_until(ws, dialect, "session.updated")
        events = await one_response(ws, dialect, "Tell me everything about the realtime API.")
        response = events[-1]["response"]
        assert response["status"] == "incomplete"
        assert response["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
        assert response["max_output_tokens"] == limit
        usage = response["usage"]
        if modality == "audio":
            # The limit is used up exactly: the last audio delta is trimmed to fit.
            assert usage["output_tokens"] == limit
            assert usage["output_token_details"]["audio_tokens"] > 0
        else:
            text_done = "response.output_text.done" if dialect == "ga" else "response.text.done"
            text = next(e for e in events if e["type"] == text_done)["text"]
            assert len(text) == limit * 4 and usage["output_tokens"] == limit

        # A short reply under the limit completes.
        await send(ws, {"type": "session.update", "session": {**update, **_limit(dialect, 4096)}})
        await recv_until(ws, dialect, "session.updated")
        assert (await one_response(ws, dialect, "Hi"))[-1]["response"]["status"] == "completed"


def _limit(dialect: str, tokens: int) -> dict[str, int]:
    return {"max_output_tokens" if dialect == "ga" else "max_response_output_tokens": tokens}


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "preview"])
async def test_an_injected_server_error_arrives_and_the_session_stays_open(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws, open_session(sim, dialect) as other:
        await recv_until(ws, dialect, "session.created")
        await recv_until(other, dialect, "session.created")
        if dialect == "preview":
            await recv_until(ws, dialect, "conversation.created")
            await recv_until(other, dialect, "conversation.created")
        assert await sim.inject_server_error(index=0) == 1
        error = (await recv_event(ws, dialect))["error"]
        assert error["type"] == "server_error" and error["code"] is None
        assert sim.sessions[0].session is not None
        assert sim.sessions[0].session.session_id in error["message"]
        # The session goes on: a turn still gets its answer.
        assert (await one_response(ws, dialect, "Still there?"))[-1]["response"][
            "status"
        ] == "completed"
        # Without an index every live session gets one; here the other one's first event is it.
        assert await sim.inject_server_error(message="Upstream hiccup.") == 2
        assert (await recv_event(other, dialect))["error"]["message"] == "Upstream hiccup."
