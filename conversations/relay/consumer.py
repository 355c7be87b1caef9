"""The WebSocket consumer that relays one browser conversation to an upstream realtime session."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from .. import selectors, services
from ..recorder import ConversationRecorder
from ..realtime import options, protocol
from ..realtime.client import RealtimeConnection, RealtimeTarget, UpstreamError, UpstreamRejected
from ..realtime.protocol import BYTES_PER_MS, BrowserMessageError, SessionConfig
from ..upstream import resolve_target, token_provider_for
from .failures import CLOSE_SERVER_ERROR, CLOSE_UNAUTHENTICATED, CLOSE_UPSTREAM_UNAVAILABLE, upstream_failure

# The service refuses to commit less than 100 ms of audio.
MIN_COMMIT_BYTES = 100 * BYTES_PER_MS

logger = logging.getLogger(__name__)

@dataclass
class ItemState:
    """What the relay knows about one conversation item while the socket is open."""

    role: str
    position: int
    audio_bytes: int = 0  # assistant audio forwarded to the browser
    parts: list[str] = field(default_factory=list)  # transcript deltas so far
    final: str | None = None  # transcript or text once complete
    audio_done: bool = False
    interrupted: bool = False  # truncated at what the user heard: its stored length is final
    announced: bool = False  # the browser has been told about it


async def refuse_anonymous(consumer: AsyncWebsocketConsumer) -> Any:
    """Return the logged-in user, or refuse the handshake (close before accept) and return None."""
    user = consumer.scope.get("user")
    if user is None or not user.is_authenticated:
        await consumer.close(code=CLOSE_UNAUTHENTICATED)
        return None
    return user


class TalkConsumer(AsyncWebsocketConsumer):
    """Relay microphone audio to the model and its audio, transcripts and events back to the browser."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Everything about one conversation lives on the instance: nothing is shared between users.
        self.target: RealtimeTarget | None = None
        self.config: SessionConfig | None = None
        self.conversation_id: Any = None
        self.recorder: ConversationRecorder | None = None
        self.upstream: RealtimeConnection | None = None
        self.upstream_task: asyncio.Task[None] | None = None
        self.ready = False
        self.closing = False
        self.failure = ""
        self.model = ""
        self.items: dict[str, ItemState] = {}
        self.next_position = 0
        self.speech_start_ms: dict[str, int] = {}
        self.response_active = False
        self.assistant_spoke = False  # in the current upstream session: the voice is then fixed
        self.ptt_open = False  # push-to-talk held: only then is audio forwarded
        self.ptt_bytes = 0

    # --- Browser side -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Accept a logged-in user's socket, create the conversation and open upstream as a task."""
        user = await refuse_anonymous(self)
        if user is None:
            return
        # Accept before any database work: in a burst of connections those queries queue on Channels'
        # single database thread, and daphne drops handshakes not accepted within 5 s.
        await self.accept()
        try:
            self.target = await resolve_target()
            self.config = await self._load_config(user)
            conversation = await database_sync_to_async(services.conversation_start)(
                user=user,
                provider=self.target.provider,
                deployment=self.target.deployment,
                dialect=self.target.dialect,
                settings=self.config.as_dict(),
            )
        except Exception:  # noqa: BLE001 - the user gets plain words, the log gets the trace
            logger.exception("Could not start a conversation")
            await self._send_error("internal_error", "The conversation could not be started. Please try again.", fatal=True)
            await self.close(code=CLOSE_SERVER_ERROR)
            return
        self.conversation_id = conversation.pk
        self.recorder = ConversationRecorder(conversation.pk)
        self.recorder.start()
        self.upstream_task = asyncio.create_task(self._run_upstream(), name=f"upstream-{conversation.pk}")

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Dispatch browser frames straight to their handler, and everything else as Channels does."""
        if message["type"] == "websocket.receive":
            # Channels closes stale database connections before every handler: a hop onto the one
            # database thread per audio frame, queued behind the recorder's writes. This consumer
            # reaches the database only through database_sync_to_async, which does that itself.
            await self.websocket_receive(message)
            return
        await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Relay an audio frame upstream, or act on an allowed control message."""
        if bytes_data is not None:
            # The hot path: no database, no JSON parsing, one base64 encode.
            if not self.ready or self.upstream is None:
                return
            try:
                protocol.check_audio_frame(bytes_data)
            except BrowserMessageError as exc:
                await self._send_error(exc.code, str(exc))
                return
            if self._push_to_talk:
                if not self.ptt_open:
                    return  # released: nothing the microphone hears reaches the model
                self.ptt_bytes += len(bytes_data)
            with contextlib.suppress(UpstreamError):  # the upstream task reports the failure
                await self.upstream.send_audio(bytes_data)
            return
        try:
            command = protocol.parse_browser_message(text_data or "")
        except BrowserMessageError as exc:
            await self._send_error(exc.code, str(exc))
            return
        if command.type == "ping":
            await self._send_json({"type": "pong", "t": command.t})
            return
        if not self.ready or self.upstream is None:
            await self._send_error("not_ready", "The conversation is still connecting; try again in a moment.")
            return
        try:
            await self._run_command(command)
        except BrowserMessageError as exc:
            await self._send_error(exc.code, str(exc))
        except UpstreamError:
            pass  # the upstream task reports the failure and closes the socket

    async def _run_command(self, command: protocol.BrowserCommand) -> None:
        """Translate a browser command into upstream events."""
        assert self.upstream is not None
        if command.type == "truncate":
            item = self.items.get(command.item_id)
            if item is None or item.role != "assistant":
                raise BrowserMessageError("unknown_item", "There is no assistant reply with that id to interrupt.")
            # Clamp to what was forwarded: the service rejects a cut past the end of the audio.
            heard_ms = min(command.audio_end_ms, item.audio_bytes // BYTES_PER_MS)
            await self.upstream.send(protocol.truncate_item(command.item_id, heard_ms))
        elif command.type == "text":
            if self.response_active:
                await self.upstream.send(protocol.RESPONSE_CANCEL)
            await self.upstream.send(protocol.user_text_item(command.text))
            await self.upstream.send(protocol.RESPONSE_CREATE)
        elif command.type == "press":
            if self.response_active:
                await self.upstream.send(protocol.RESPONSE_CANCEL)
            await self.upstream.send(protocol.INPUT_CLEAR)
            self.ptt_open, self.ptt_bytes = True, 0
        elif command.type == "commit":
            held_bytes, self.ptt_open = self.ptt_bytes, False
            if self._push_to_talk and held_bytes < MIN_COMMIT_BYTES:
                await self.upstream.send(protocol.INPUT_CLEAR)
                raise BrowserMessageError("too_short", "Hold the button while you speak, then let go.")
            await self.upstream.send(protocol.INPUT_COMMIT)
            await self.upstream.send(protocol.RESPONSE_CREATE)
        elif command.type == "cancel" and self.response_active:
            await self.upstream.send(protocol.RESPONSE_CANCEL)
        elif command.type == "apply_settings":
            await self._apply_settings()

    @property
    def _push_to_talk(self) -> bool:
        return self.config is not None and self.config.turn_detection is None

    async def _load_config(self, user: Any) -> SessionConfig:
        """Build the session configuration from the user's saved settings."""
        assert self.target is not None
        prefs = await database_sync_to_async(selectors.preferences_for)(user=user)
        return options.build_session_config(prefs, self.target.dialect)

    async def _apply_settings(self) -> None:
        """Re-read the user's settings and update the live session, keeping the voice once it spoke."""
        assert self.upstream is not None and self.config is not None
        config = await self._load_config(self.scope["user"])
        voice_locked = self.assistant_spoke and config.voice != self.config.voice
        if voice_locked:
            config = dataclasses.replace(config, voice=self.config.voice)
        await self.upstream.send(protocol.session_update(config, self.target.dialect))  # type: ignore[union-attr]
        self.config = config
        self.ptt_open = False
        await self._send_json(
            {"type": "settings_applied", "settings": options.browser_settings(config), "voice_locked": voice_locked}
        )

    async def disconnect(self, code: int) -> None:
        """Stop the upstream task, close upstream and flush everything said to the database."""
        self.closing = True
        if self.upstream_task is not None:
            self.upstream_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.upstream_task
        await self._close_upstream()
        if self.recorder is None:
            return
        self._flush_partial_items()
        self.recorder.end(failed=bool(self.failure), error=self.failure)
        await self.recorder.close()

    # --- Upstream side ------------------------------------------------------------------------

    async def _run_upstream(self) -> None:
        """Open the upstream session, configure it and relay its events until either side ends."""
        assert self.target is not None and self.config is not None
        close_code = CLOSE_UPSTREAM_UNAVAILABLE
        try:
            await self._open_session()
            assert self.upstream is not None
            async for event in self.upstream.events():
                await self._on_upstream_event(event)
            raise UpstreamError("The realtime service ended the session.")
        except UpstreamError as exc:
            failure = upstream_failure(exc, self.target.deployment, staff=self.scope["user"].is_staff)
            code, message, close_code = failure.code, failure.message, failure.close_code
            logger.warning("Conversation %s upstream failed: %s %s", self.conversation_id, exc, exc.detail)
            await self._fail(code, message)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the user gets plain words, the log gets the trace
            logger.exception("Conversation %s relay crashed", self.conversation_id)
            await self._fail("internal_error", "Something went wrong on the server. Please start again.")
        if not self.closing:
            await self.close(code=close_code)

    async def _open_session(self) -> None:
        """Open (or replace) the upstream session and send the enforced configuration."""
        assert self.target is not None and self.config is not None
        await self._close_upstream()
        from django.conf import settings  # read at call time so tests can override it

        self.upstream = await RealtimeConnection.open(
            self.target,
            token_provider=token_provider_for(self.target),
            timeout=settings.REALTIME_CONNECT_TIMEOUT,
        )
        await self.upstream.send(protocol.session_update(self.config, self.target.dialect))
        self.ready = True
        self.assistant_spoke = False
        await self._send_json(
            {
                "type": "ready",
                "conversation_id": str(self.conversation_id),
                "provider": self.target.provider,
                "dialect": self.target.dialect,
                "deployment": self.target.deployment,
                "sample_rate": protocol.SAMPLE_RATE,
                "settings": options.browser_settings(self.config),
            }
        )

    async def _close_upstream(self) -> None:
        self.ready = False
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(upstream.close(), 2.0)

    async def _on_upstream_event(self, event: dict[str, Any]) -> None:
        """Translate one upstream event, keep the books, queue writes, and forward to the browser."""
        message, audio = protocol.normalize(event)
        if message is None:
            return
        kind = message["type"]
        if kind == "audio":
            item = self._item(message["item_id"], "assistant")
            item.audio_bytes += len(audio or b"")
            self.assistant_spoke = True
            await self.send(bytes_data=audio)
            return
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            await handler(message)

    async def _on_user_item(self, message: dict[str, Any]) -> None:
        item = self._item(message["item_id"], "user", text=message["text"])
        if item.announced:
            return
        item.announced = True
        await self._send_json({"type": "user_item", "item_id": message["item_id"]})
        if message["text"]:  # a typed message: its text is its transcript
            item.final = message["text"]
            await self._send_json({"type": "transcript_done", "role": "user", "item_id": message["item_id"], "text": item.final})

    async def _on_assistant_item(self, message: dict[str, Any]) -> None:
        item = self._item(message["item_id"], "assistant", response_id=message.get("response_id", ""))
        if item.announced:
            return
        item.announced = True
        await self._send_json({"type": "assistant_item", "item_id": message["item_id"], "response_id": message.get("response_id", "")})

    async def _on_transcript(self, message: dict[str, Any]) -> None:
        self._item(message["item_id"], message["role"]).parts.append(message["delta"])
        await self._send_json(message)

    async def _on_transcript_done(self, message: dict[str, Any]) -> None:
        item = self._item(message["item_id"], message["role"])
        item.final = message["text"]
        assert self.recorder is not None
        self.recorder.text(item_id=message["item_id"], text=message["text"])
        await self._send_json(message)

    async def _on_transcription_failed(self, message: dict[str, Any]) -> None:
        self._item(message["item_id"], "user").final = ""
        await self._send_json({"type": "transcript_done", "role": "user", "item_id": message["item_id"], "text": ""})
        await self._send_error("transcription_failed", "What you said could not be transcribed.")

    async def _on_audio_done(self, message: dict[str, Any]) -> None:
        item = self._item(message["item_id"], "assistant")
        item.audio_done = True
        assert self.recorder is not None
        self.recorder.audio(item_id=message["item_id"], audio_ms=item.audio_bytes // BYTES_PER_MS)
        await self._send_json(message)

    async def _on_speech_started(self, message: dict[str, Any]) -> None:
        if message.get("item_id"):
            self.speech_start_ms[message["item_id"]] = int(message.get("audio_start_ms") or 0)
        await self._send_json({"type": "speech_started", "audio_start_ms": message.get("audio_start_ms", 0)})

    async def _on_speech_stopped(self, message: dict[str, Any]) -> None:
        item_id, end_ms = message.get("item_id", ""), int(message.get("audio_end_ms") or 0)
        if item_id in self.speech_start_ms:
            duration = max(0, end_ms - self.speech_start_ms.pop(item_id))
            self._item(item_id, "user")
            assert self.recorder is not None
            self.recorder.audio(item_id=item_id, audio_ms=duration)
        await self._send_json({"type": "speech_stopped", "audio_end_ms": end_ms})

    async def _on_response_created(self, message: dict[str, Any]) -> None:
        self.response_active = True

    async def _on_response_done(self, message: dict[str, Any]) -> None:
        self.response_active = False
        usage: protocol.Usage = message["usage"]
        assert self.recorder is not None
        self.recorder.usage(
            response_id=message["response_id"],
            model=self.model or (self.target.deployment if self.target else ""),
            status=message["status"],
            usage=usage,
        )
        await self._send_json(
            {
                "type": "response_done",
                "response_id": message["response_id"],
                "status": message["status"],
                "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
            }
        )

    async def _on_truncated(self, message: dict[str, Any]) -> None:
        self._item(message["item_id"], "assistant").interrupted = True
        assert self.recorder is not None
        self.recorder.audio(item_id=message["item_id"], audio_ms=int(message["audio_end_ms"]), interrupted=True)
        await self._send_json(message)

    async def _on_session_created(self, message: dict[str, Any]) -> None:
        self.model = message.get("model") or self.model
        if message.get("session_id"):
            assert self.recorder is not None
            self.recorder.session(upstream_session_id=message["session_id"])

    async def _on_upstream_error(self, message: dict[str, Any]) -> None:
        code = message["code"]
        if code in protocol.QUIET_ERROR_CODES:
            logger.debug("Conversation %s: benign upstream error %s", self.conversation_id, code)
            return
        if code == "session_expired":
            raise UpstreamError("The realtime session reached its time limit.")
        logger.info("Conversation %s upstream error %s: %s", self.conversation_id, code, message["message"])
        await self._send_error(code, message["message"] or "The realtime service reported an error.")

    # --- Helpers ------------------------------------------------------------------------------

    def _item(self, item_id: str, role: str, *, response_id: str = "", text: str = "") -> ItemState:
        """Return the item's state, giving a new item the next place in the conversation."""
        item = self.items.get(item_id)
        if item is None:
            item = self.items[item_id] = ItemState(role=role, position=self.next_position)
            self.next_position += 1
            assert self.recorder is not None
            self.recorder.turn(item_id=item_id, role=role, position=item.position, response_id=response_id, text=text)
        return item

    def _flush_partial_items(self) -> None:
        """Store what was said in items the socket closed on before their transcript completed."""
        assert self.recorder is not None
        for item_id, item in self.items.items():
            if item.final is None and item.parts:
                self.recorder.text(item_id=item_id, text="".join(item.parts))
            # A truncated item already has the length that was heard; don't overwrite it with what was sent.
            if item.role == "assistant" and not item.audio_done and not item.interrupted and item.audio_bytes:
                self.recorder.audio(item_id=item_id, audio_ms=item.audio_bytes // BYTES_PER_MS, interrupted=True)

    async def _fail(self, code: str, message: str) -> None:
        self.failure = self.failure or message
        await self._send_error(code, message, fatal=True)

    async def _send_error(self, code: str, message: str, *, fatal: bool = False) -> None:
        await self._send_json({"type": "error", "code": code, "message": message, "fatal": fatal})

    async def _send_json(self, message: dict[str, Any]) -> None:
        if not self.closing:
            await self.send(text_data=protocol.dumps(message))
