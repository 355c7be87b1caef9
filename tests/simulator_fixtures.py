"""Shared helpers for the simulator tests: a running simulator, clients in each dialect, test speech."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect

from conversations.realtime.schema import validate_server_event
from conversations.realtime.simulator import RealtimeSimulator
from conversations.realtime.simulator.speech import espeak_available, synthesize, tone

KEY = "sim-key"
PATHS = {
    "ga": "/openai/v1/realtime?model=gpt-realtime",
    "preview": "/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-4o-realtime-preview",
    "openai": "/v1/realtime?model=gpt-realtime",
}
DIALECT_OF = {"ga": "ga", "preview": "preview", "openai": "ga"}
SILENCE_MS = 1200


@pytest_asyncio.fixture(name="sim")
async def sim_fixture() -> AsyncIterator[RealtimeSimulator]:
    """A strict, unpaced simulator on a free loopback port."""
    async with RealtimeSimulator(
        api_key=KEY, realtime_pacing=False, strict=True, transcription_delay_s=0.05
    ) as s:
        yield s
        assert s.validation_errors == []


@pytest_asyncio.fixture(name="paced_sim")
async def paced_sim_fixture() -> AsyncIterator[RealtimeSimulator]:
    """A strict simulator that paces audio, so responses are still running when the test interrupts."""
    async with RealtimeSimulator(api_key=KEY, realtime_pacing=True, strict=True) as s:
        yield s
        assert s.validation_errors == []


def ws_url(sim: RealtimeSimulator, target: str) -> str:
    """The WebSocket URL for "ga", "preview" or "openai"."""
    return sim.url.replace("http://", "ws://") + PATHS[target]


def open_session(sim: RealtimeSimulator, target: str, key: str = KEY) -> Any:
    """Connect with the credential header each target uses."""
    headers = {"Authorization": f"Bearer {key}"} if target == "openai" else {"api-key": key}
    return connect(ws_url(sim, target), additional_headers=headers, max_size=2**25)


async def recv_event(ws: ClientConnection, dialect: str, timeout: float = 5.0) -> dict[str, Any]:
    """Receive one server event and check it against the openai types for the dialect."""
    event = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    validate_server_event(event, dialect)
    return event


async def recv_until(
    ws: ClientConnection, dialect: str, event_type: str, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Collect events up to and including the first of `event_type`."""
    events: list[dict[str, Any]] = []
    while True:
        event = await recv_event(ws, dialect, timeout)
        events.append(event)
        if event["type"] == event_type:
            return events


async def send(ws: ClientConnection, event: dict[str, Any]) -> None:
    """Send one client event as JSON."""
    await ws.send(json.dumps(event))


async def append_audio(ws: ClientConnection, pcm: bytes, chunk_ms: int = 100) -> None:
    """Stream PCM16 24 kHz audio in appends of `chunk_ms`, as a browser relay would."""
    step = chunk_ms * 48
    for start in range(0, len(pcm), step):
        await send(
            ws,
            {
                "type": "input_audio_buffer.append",
                "audio": base64.b64encode(pcm[start : start + step]).decode(),
            },
        )


async def spoken_turn() -> bytes:
    """Real speech from espeak-ng when installed, else a loud tone burst; then silence to end the turn."""
    if espeak_available():
        speech = await synthesize(
            "Hello there. This is a test of the realtime simulator.", voice="test"
        )
    else:
        speech = tone(1.5, level=0.5)
    return bytes(48 * 200) + speech + bytes(48 * SILENCE_MS)


def session_update(dialect: str, **fields: Any) -> dict[str, Any]:
    """A session.update in the dialect's shape: instructions, voice, turn_detection and transcription."""
    if dialect == "ga":
        session: dict[str, Any] = {"type": "realtime"}
        audio_in: dict[str, Any] = {}
        if "instructions" in fields:
            session["instructions"] = fields["instructions"]
        if "voice" in fields:
            session["audio"] = {"output": {"voice": fields["voice"]}}
        if "turn_detection" in fields:
            audio_in["turn_detection"] = fields["turn_detection"]
        if fields.get("transcribe"):
            audio_in["transcription"] = {"model": "gpt-4o-mini-transcribe", "language": "en"}
        if audio_in:
            session.setdefault("audio", {})["input"] = audio_in
        return {"type": "session.update", "session": session}
    session = {}
    if "instructions" in fields:
        session["instructions"] = fields["instructions"]
    if "voice" in fields:
        session["voice"] = fields["voice"]
    if "turn_detection" in fields:
        session["turn_detection"] = fields["turn_detection"]
    if fields.get("transcribe"):
        session["input_audio_transcription"] = {"model": "whisper-1", "language": "en"}
    return {"type": "session.update", "session": session}


def user_text(text: str) -> dict[str, Any]:
    """A user text item, the same in both dialects."""
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }


def audio_delta_type(dialect: str) -> str:
    return "response.output_audio.delta" if dialect == "ga" else "response.audio.delta"


def transcript_delta_type(dialect: str) -> str:
    return (
        "response.output_audio_transcript.delta"
        if dialect == "ga"
        else "response.audio_transcript.delta"
    )
