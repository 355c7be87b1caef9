"""The talk socket: thin glue between a browser and its live conversation."""
from __future__ import annotations

import hashlib
import logging
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from ..realtime import protocol
from ..realtime.protocol import BrowserMessageError
from .conversation import LiveConversation
from .failures import CLOSE_NORMAL, CLOSE_NOT_FOUND, CLOSE_SERVER_ERROR, CLOSE_UNAUTHENTICATED, Failure
from .opening import ConversationNotFound, open_conversation

logger = logging.getLogger(__name__)

# Commands that must not wait on the database: barge-in has to be instant.
_UNCHECKED_COMMANDS = frozenset({"ping", "truncate"})


async def refuse_anonymous(consumer: AsyncWebsocketConsumer) -> Any:
    """Return the logged-in user, or refuse the handshake (close before accept) and return None."""
    user = consumer.scope.get("user")
    if user is None or not user.is_authenticated:
        await consumer.close(code=CLOSE_UNAUTHENTICATED)
        return None
    return user


def session_group(session_key: str) -> str:
    """The channel-layer group of every socket opened with one login session (ended on logout)."""
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


class TalkConsumer(AsyncWebsocketConsumer):
    """Attach the browser to its conversation, pass frames and commands through, detach on close."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.live: LiveConversation | None = None
        self.group = ""

    async def connect(self) -> None:
        """Accept a logged-in user's socket and attach it to a new, resumed or continued conversation."""
        user = await refuse_anonymous(self)
        if user is None:
            return
        # Accept before any database work: in a burst of connections those queries queue on Channels'
        # single database thread, and daphne drops handshakes not accepted within 5 s.
        await self.accept()
        session_key = getattr(self.scope.get("session"), "session_key", None)
        if session_key and self.channel_layer is not None:
            self.group = session_group(session_key)
            await self.channel_layer.group_add(self.group, self.channel_name)
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        wanted = (query.get("conversation") or [""])[0][:64]
        try:
            live, mode = await open_conversation(user, wanted or None)
        except ConversationNotFound:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        except Exception:  # noqa: BLE001 - the user gets plain words, the log gets the trace
            logger.exception("Could not start a conversation")
            await self.send_json(protocol.error_message(
                "internal_error", "The conversation could not be started. Please try again.", fatal=True))
            await self.close(code=CLOSE_SERVER_ERROR)
            return
        self.live = live
        await live.attach(self, mode=mode)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Handle one event; whatever a handler raises, the conversation is ended cleanly and stored."""
        try:
            if message["type"] == "websocket.receive":
                # Channels closes stale database connections before every handler: a hop onto the one
                # database thread per audio frame. This consumer reaches the database only through
                # database_sync_to_async, which does that itself.
                await self.websocket_receive(message)
                return
            await super().dispatch(message)
        except StopConsumer:
            raise
        except Exception:  # noqa: BLE001
            logger.exception("Talk socket handler failed on %s", message.get("type"))
            await self._crash()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Relay an audio frame, or act on an allowed control message."""
        live = self.live
        if bytes_data is not None:
            if live is not None:
                await live.audio_in(bytes_data)  # the hot path: no database, no JSON
            return
        try:
            command = protocol.parse_browser_message(text_data or "")
        except BrowserMessageError as exc:
            await self.send_json(protocol.error_message(exc.code, str(exc)))
            return
        if command.type == "ping":
            await self.send_json({"type": "pong", "t": command.t})
            return
        if command.type == "upstream_check":
            await self.send_json(protocol.error_message("unknown_type", "Only the check page's socket runs that check."))
            return
        if live is None:
            await self.send_json(protocol.error_message(
                "not_ready", "The conversation is still connecting; try again in a moment."))
            return
        if command.type not in _UNCHECKED_COMMANDS and not await self._session_alive():
            await self.session_ended({})
            return
        await live.command(command)

    async def disconnect(self, code: int) -> None:
        """Detach from the conversation: a Stop (1000) ends it, anything else leaves it a grace period."""
        if self.group and self.channel_layer is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        live, self.live = self.live, None
        if live is not None:
            await live.detach(self, code)

    async def session_ended(self, event: dict[str, Any]) -> None:
        """The user logged out: end the conversation and close with 4001 so the page shows the login."""
        live, self.live = self.live, None
        if live is not None:
            await live.detach(self, CLOSE_NORMAL)  # as if the user pressed Stop: the conversation ends, stored
        await self.close(code=CLOSE_UNAUTHENTICATED)

    # --- BrowserLink ---------------------------------------------------------------------------

    async def send_json(self, message: dict[str, Any]) -> None:
        """Send one control message."""
        await self.send(text_data=protocol.dumps(message))

    async def send_audio(self, pcm: bytes) -> None:
        """Send one binary audio frame."""
        await self.send(bytes_data=pcm)

    async def close_with(self, code: int) -> None:
        """Close the socket with a close code from docs/browser-protocol.md."""
        await self.close(code=code)

    # --- Helpers -------------------------------------------------------------------------------

    async def _session_alive(self) -> bool:
        """Whether the login session this socket was opened with still exists."""
        session = self.scope.get("session")
        key = getattr(session, "session_key", None)
        if not key:
            return False
        store = import_module(settings.SESSION_ENGINE).SessionStore
        return await database_sync_to_async(store().exists)(key)

    async def _crash(self) -> None:
        live, self.live = self.live, None
        failure = Failure("internal_error", "Something went wrong on the server. Your conversation is saved; "
                          "reload the page to continue it.", CLOSE_SERVER_ERROR)
        if live is not None:
            await live.end(failure)  # closes this socket with the failure, if still attached
        else:
            try:
                await self.send_json(protocol.error_message(failure.code, failure.message, fatal=True))
            finally:
                await self.close(code=CLOSE_SERVER_ERROR)

