"""The pre-flight check page's socket."""
from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer

from ..realtime import protocol
from ..realtime.protocol import BrowserMessageError
from .consumer import refuse_anonymous


class CheckConsumer(AsyncWebsocketConsumer):
    """The pre-flight check's socket: answers pings so the page can measure the round trip."""

    async def connect(self) -> None:
        """Accept logged-in users only, like the talk socket."""
        if await refuse_anonymous(self) is not None:
            await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Answer `ping` with `pong`; anything else gets a plain error."""
        try:
            command = protocol.parse_browser_message(text_data or "")
        except BrowserMessageError as exc:
            await self.send(text_data=protocol.dumps({"type": "error", "code": exc.code, "message": str(exc), "fatal": False}))
            return
        if command.type == "ping":
            await self.send(text_data=protocol.dumps({"type": "pong", "t": command.t}))
        else:
            await self.send(text_data=protocol.dumps(
                {"type": "error", "code": "unknown_type", "message": "This socket only answers pings.", "fatal": False}
            ))
