"""The talk socket: thin glue between a browser and its live conversation."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from importlib import import_module
from time import monotonic
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import InterfaceError, OperationalError

from ..outage import REDIS_DOWN, redis_outage
from ..realtime import protocol
from ..realtime.protocol import BrowserMessageError
from .admission import DeploymentBusy
from .conversation import LiveConversation
from .failures import (
    CLOSE_BUSY,
    CLOSE_NORMAL,
    CLOSE_NOT_FOUND,
    CLOSE_POLICY,
    CLOSE_SERVER_ERROR,
    CLOSE_THROTTLED,
    CLOSE_UNAUTHENTICATED,
    Failure,
)
from .flood import MAX_FRAME_COST_BYTES, MIN_FRAME_COST_BYTES, FloodLimits
from .locale import browser_locale
from .opening import ConversationNotFound, open_conversation
from .quota import LimitReached

logger = logging.getLogger(__name__)

# The database is away (down, restarting): a control message that needs it is answered, never fatal.
DATABASE_DOWN = (OperationalError, InterfaceError)
# Commands that must not wait on the database: barge-in has to be instant.
_UNCHECKED_COMMANDS = frozenset({"ping", "truncate"})
# A failing channel layer (Redis away) is retried this long after, without touching the conversation.
_LAYER_RETRY_S = 2.0
FLOODED = Failure(
    "flood",
    "This page sent audio or messages much faster than a conversation needs, so the server ended the "
    "conversation. It is saved in your history.",
    CLOSE_POLICY,
)


def flood_limits_from_settings() -> FloodLimits:
    """The talk socket's flood limits, read at call time so tests can change them."""
    return FloodLimits(
        audio_rate=settings.RELAY_AUDIO_MAX_RATE,
        audio_burst_ms=settings.RELAY_AUDIO_BURST_MS,
        control_rate=settings.RELAY_CONTROL_MAX_RATE,
        control_burst=settings.RELAY_CONTROL_BURST,
    )


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
        # Per socket, on the instance: one flooding browser never touches another's budget.
        self.limits = flood_limits_from_settings()
        now = monotonic()
        self._audio_budget = self.limits.audio_bucket(now)
        self._control_budget = self.limits.control_bucket(now)
        self._flooded = False

    async def connect(self) -> None:
        """Accept a logged-in user's socket and attach it to a new, resumed or continued conversation."""
        user = await refuse_anonymous(self)
        if user is None:
            return
        # Accept before any database work: in a burst of connections those queries queue on Channels'
        # single database thread, and servers drop handshakes not accepted in time (daphne after 5 s).
        await self.accept()
        session_key = getattr(self.scope.get("session"), "session_key", None)
        if session_key and self.channel_layer is not None:
            try:
                await self.channel_layer.group_add(session_group(session_key), self.channel_name)
                self.group = session_group(session_key)
            except Exception:  # noqa: BLE001 - Redis away: talk anyway; commands still check the session
                logger.warning("Could not join the login session's group; logout will end this socket "
                               "at its next command instead", exc_info=True)
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        wanted = (query.get("conversation") or [""])[0][:64]
        returning = (query.get("resume") or [""])[0] == "1"  # the page reconnecting by itself after a drop
        locale = browser_locale(self.scope, (query.get("tz") or [""])[0])
        try:
            live, mode = await open_conversation(user, wanted or None, returning=returning, locale=locale)
        except ConversationNotFound:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        except LimitReached as exc:  # the reason and when it resets, shown on the page
            await self.send_json(exc.verdict.browser_message("error"))
            await self.close(code=CLOSE_THROTTLED)
            return
        except DeploymentBusy as exc:  # the deployment is full or cooling down: "try again in N s"
            await self.send_json(exc.busy.browser_message())
            await self.close(code=CLOSE_BUSY)
            return
        except Exception:  # noqa: BLE001 - the user gets plain words, the log gets the trace
            logger.exception("Could not start a conversation")
            await self.send_json(protocol.error_message(
                "internal_error", "The conversation could not be started. Please try again.", fatal=True))
            await self.close(code=CLOSE_SERVER_ERROR)
            return
        self.live = live
        await live.attach(self, mode=mode)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Run the socket: its messages in one loop, channel-layer messages (logout) in a task beside it.

        Channels' own loop (`await_many_dispatch`) waits on both sources with `asyncio.wait` and
        a new task for every message: for 25 audio frames a second per conversation that was the
        largest cost in the worker after the WebSocket framing itself (`make bench --profile`).
        """
        self.scope = scope
        self.base_send = send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        layer_task = None
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            layer_task = asyncio.create_task(self._layer_messages(), name="talk-channel-layer")
        try:
            dispatch = self.dispatch
            while True:
                await dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            if layer_task is not None:
                layer_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await layer_task

    async def _layer_messages(self) -> None:
        """Dispatch this socket's channel-layer messages; a layer outage never ends the conversation."""
        rejoin = False
        while True:
            try:
                if rejoin and self.group:
                    # A Redis that restarted lost the login group: join it again, so logout reaches this socket.
                    await self.channel_layer.group_add(self.group, self.channel_name)
                rejoin = False
                message = await self.channel_layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except REDIS_DOWN as exc:  # Redis away: the socket and its conversation carry on
                redis_outage.failed(exc, "listening for this socket's channel-layer messages")
                rejoin = True
                await asyncio.sleep(_LAYER_RETRY_S)
                continue
            except Exception:  # noqa: BLE001 - the socket and its conversation carry on
                logger.warning("Channel layer receive failed; retrying in %ss", _LAYER_RETRY_S, exc_info=True)
                rejoin = True
                await asyncio.sleep(_LAYER_RETRY_S)
                continue
            try:
                await self.dispatch(message)
            except StopConsumer:
                return

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Handle one event; whatever a handler raises, the conversation is ended cleanly and stored."""
        try:
            if message["type"] == "websocket.receive":
                pcm = message.get("bytes")
                if pcm is not None:
                    # The hot path: counted, then straight to the conversation, no database, no JSON.
                    # Every frame costs at least 10 ms and at most 1 s of audio (see flood.py).
                    size = len(pcm)
                    cost = (MIN_FRAME_COST_BYTES if size < MIN_FRAME_COST_BYTES
                            else MAX_FRAME_COST_BYTES if size > MAX_FRAME_COST_BYTES else size)
                    if not self._audio_budget.take(cost, monotonic()):
                        await self._flood("audio")
                        return
                    if self.live is not None and size:  # an empty frame carries nothing to relay
                        await self.live.audio_in(pcm)
                    return
                # After a flood close, a message the server had already queued must not be answered:
                # sending after `websocket.close` raises in the server.
                if self._flooded or not self._control_budget.take(1, monotonic()):
                    await self._flood("control messages")
                    return
                # Channels closes stale database connections before every handler: a hop onto the
                # one database thread per message. This consumer reaches the database only through
                # database_sync_to_async, which does that itself.
                await self.receive(text_data=message.get("text"))
                return
            await super().dispatch(message)
        except StopConsumer:
            raise
        except Exception:  # noqa: BLE001
            logger.exception("Talk socket handler failed on %s", message.get("type"))
            await self._crash()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Act on an allowed control message (audio frames never come here: `dispatch` relays them)."""
        live = self.live
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
        try:
            await live.command(command)
        except DATABASE_DOWN:
            # A command that reads the database (new settings) waits for it; the conversation goes on meanwhile.
            logger.warning("Conversation %s: %s not applied, the database is unavailable", live.conversation_id,
                           command.type)
            await self.send_json(protocol.error_message(
                "database_unavailable", "The server cannot reach its database right now; the conversation goes on. "
                "Try that again in a moment."))

    async def disconnect(self, code: int) -> None:
        """Detach from the conversation: a Stop (1000) ends it, anything else leaves it a grace period."""
        live, self.live = self.live, None
        if live is not None:
            await live.detach(self, code)
        if self.group and self.channel_layer is not None:
            try:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            except Exception:  # noqa: BLE001 - Redis away: the group entry expires on its own
                logger.warning("Could not leave the login session's group", exc_info=True)

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
        """Send one binary audio frame, straight to the server (the hot path)."""
        await self.base_send({"type": "websocket.send", "bytes": pcm})

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
        try:
            return await database_sync_to_async(store().exists)(key)
        except DATABASE_DOWN:
            # Logging out deletes the session in the database: while it is away nobody can log out, so the
            # session stands until a later command can check it.
            return True

    async def _flood(self, what: str) -> None:
        """Close a socket that sent faster than its limits: one log line, the conversation ended and stored, 1008."""
        if self._flooded:
            return  # frames that were already on their way when it closed: said once is enough
        self._flooded = True
        live, self.live = self.live, None
        limits = self.limits
        limit = (f"{limits.audio_rate:g}x real time with a {limits.audio_burst_ms} ms burst" if what == "audio"
                 else f"{limits.control_rate:g}/s with a burst of {limits.control_burst}")
        logger.warning("Talk socket flooded: user %s, conversation %s, %s over %s; closing with %s",
                       getattr(self.scope.get("user"), "pk", None), live.conversation_id if live else "-",
                       what, limit, CLOSE_POLICY)
        # Ended, not left a grace period: a client that floods must not get the same session back at once.
        if live is not None and live.link is self:
            await live.end(FLOODED)  # stores the conversation, sends the fatal error, closes with 1008
            return
        try:
            await self.send_json(protocol.error_message(FLOODED.code, FLOODED.message, fatal=True))
        finally:
            await self.close(code=CLOSE_POLICY)

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

