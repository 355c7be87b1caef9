"""Helpers to drive the whole ASGI application over a WebSocket, as a browser would."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from channels.testing import WebsocketCommunicator

ORIGIN = b"http://localhost"


def point_at(settings, sim, *, api_version: str = "", deployment: str = "gpt-realtime") -> None:
    """Point the app at a test simulator as if it were an Azure endpoint (GA unless an api-version is given)."""
    settings.REALTIME_SIMULATED = False
    settings.AZURE_OPENAI_ENDPOINT = sim.url
    settings.AZURE_OPENAI_API_KEY = "sim-key"
    settings.AZURE_OPENAI_DEPLOYMENT = deployment
    settings.AZURE_OPENAI_API_VERSION = api_version
    settings.OPENAI_API_KEY = ""


def communicator(cookie: bytes | None, *, origin: bytes = ORIGIN, path: str = "/ws/talk/") -> WebsocketCommunicator:
    """A communicator for the full `voiceapp.asgi.application`, with routing, auth and origin checks."""
    from voiceapp.asgi import application

    headers = [(b"origin", origin), (b"host", b"localhost")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, path, headers=headers)


@dataclass
class Transcript:
    """Everything the browser received on one socket."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    audio: list[bytes] = field(default_factory=list)
    closed_code: int | None = None

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """Messages of one type, in order."""
        return [m for m in self.messages if m["type"] == kind]

    @property
    def audio_bytes(self) -> int:
        """Total audio received."""
        return sum(len(a) for a in self.audio)


async def collect(
    comm: WebsocketCommunicator,
    seen: Transcript,
    until: Callable[[Transcript], bool],
    timeout: float = 15.0,
) -> Transcript:
    """Receive frames into `seen` until `until(seen)` holds or the socket closes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not until(seen):
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"Timed out; got {[m['type'] for m in seen.messages]}")
        output = await comm.receive_output(timeout=remaining)
        if output["type"] == "websocket.close":
            seen.closed_code = output.get("code")
            return seen
        if output.get("bytes") is not None:
            seen.audio.append(output["bytes"])
        else:
            seen.messages.append(json.loads(output["text"]))
    return seen


async def send_pcm(comm: WebsocketCommunicator, pcm: bytes, frame_ms: int = 40) -> None:
    """Send PCM as the browser does, one binary frame per `frame_ms`."""
    size = 24_000 * frame_ms // 1000 * 2
    for i in range(0, len(pcm), size):
        await comm.send_to(bytes_data=pcm[i : i + size])
