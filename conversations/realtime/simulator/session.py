"""One simulated realtime session: conversation items, the input buffer, VAD turns and responses."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed

from ..schema import SchemaError, validate_client_event
from . import dialects, tools
from .dialects import GA, PREVIEW
from .ids import new_id
from .speech import synthesize
from .vad import EnergyVad

logger = logging.getLogger(__name__)

BYTES_PER_MS = 48  # PCM16 mono 24 kHz
MIN_COMMIT_MS = 100
SPEED_UP = 1.5  # paced responses stream this much faster than real time, like the service
MS_PER_OUTPUT_AUDIO_TOKEN = 50
CHARS_PER_TEXT_TOKEN = 4
# What a response may be told to end as (see RealtimeSimulator.next_responses).
RESPONSE_OUTCOMES = frozenset(
    {"completed", "failed", "incomplete:max_output_tokens", "incomplete:content_filter"}
)
# The wording the service uses for its own failures (openai/openai-realtime-api-beta#116).
SERVER_ERROR_MESSAGE = (
    "The server had an error while processing your request. Sorry about that! "
    "(include session ID in your message: {session_id}). We recommend you retry your request."
)

Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Options:
    """The simulator knobs that shape every session; shared and live, so a test may turn them mid-run."""

    delta_ms: int = 200
    realtime_pacing: bool = True
    response_delay_s: float = 0.0
    transcription_delay_s: float = 0.15
    transcription_failures: int = 0  # the next N transcriptions fail, in whichever session
    response_outcomes: deque[str] = field(default_factory=deque)  # one is used per response
    reply_texts: deque[str] = field(default_factory=deque)  # scripted replies, one per response, else derived
    # What the next committed user audio items say (their transcripts, and what the model hears).
    heard_texts: deque[str] = field(default_factory=deque)
    reject_session_update_param: str | None = None
    # What `rate_limits.updated` reports (the service's list of requests/tokens limits); None: generous.
    rate_limits: list[dict[str, Any]] | None = None


@dataclass
class Item:
    """A conversation item as the simulator bills and answers it."""

    id: str
    role: str
    kind: str  # "audio" or "text"
    payload: dict[str, Any]
    text: str = ""
    audio_ms: int = 0
    truncated_ms: int | None = None
    # What user audio says when a test scripted it (Options.heard_texts): the model hears it even
    # with transcription off, as the service's model hears audio, so it can ask for a tool.
    heard: str | None = None

    @property
    def heard_ms(self) -> int:
        """Audio that counts as context: what was left after a truncation."""
        return self.audio_ms if self.truncated_ms is None else self.truncated_ms


@dataclass
class Run:
    """One response being generated."""

    id: str
    override: dict[str, Any]
    outcome: str = "completed"  # one of RESPONSE_OUTCOMES
    reply: str | None = None  # a scripted reply (RealtimeSimulator.next_replies), else derived from the conversation
    task: asyncio.Task[None] | None = None
    cancel_reason: str | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # A function-call response makes these calls instead of speaking.
    calls: list[tools.Call] = field(default_factory=list)


class ClientError(Exception):
    """A request the service refuses with an `error` event, leaving the session open."""

    def __init__(self, code: str | None, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


class SimulatedSession:
    """Per-connection state machine, fed client events by the server and answering through `send`."""

    def __init__(
        self,
        *,
        dialect: str,
        model: str,
        send: Send,
        options: Options,
        expires_at: int,
        transcription_models: frozenset[str] | None = None,
    ) -> None:
        self.dialect = dialect
        self.names = dialects.NAMES[dialect]
        self.send = send
        self.options = options
        # Transcription models (on Azure: deployments) that exist; None accepts any name.
        self.transcription_models = transcription_models
        self.session_id = new_id("sess")
        self.conversation_id = new_id("conv")
        self.session = dialects.default_session(
            dialect, model=model, session_id=self.session_id, expires_at=expires_at
        )
        self.items: list[Item] = []
        self.buffer = bytearray()
        self.buffer_start_ms = 0  # session-clock position of buffer[0]
        self.vad: EnergyVad | None = None
        self._speech_item_id: str | None = None
        self._speech_start_ms = 0
        self.active: Run | None = None
        self.assistant_spoke = False
        # The text and audio input of the previous response: the prefix the next one finds cached.
        self.previous_input: tuple[int, int] = (0, 0)
        self.responses: list[dict[str, Any]] = []  # every response.done's response, for inspection
        self._tasks: set[asyncio.Task[None]] = set()
        self._configure_vad()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Greet the client the way the service does."""
        await self.send({"type": "session.created", "session": self.session})
        if self.dialect == PREVIEW:
            # GA sessions do not announce the conversation; preview ones do.
            await self.send(
                {
                    "type": "conversation.created",
                    "conversation": {"id": self.conversation_id, "object": "realtime.conversation"},
                }
            )

    async def close(self) -> None:
        """Stop background work when the connection ends."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        """Run background work tied to this session's lifetime."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- input -------------------------------------------------------------------------------

    async def receive(self, event: dict[str, Any]) -> None:
        """Validate and apply one parsed client event; refusals become `error` events."""
        event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        try:
            validate_client_event(event, self.dialect)
            handler = getattr(self, "_on_" + event["type"].replace(".", "_"), None)
            if handler is None:
                raise ClientError(
                    "unsupported_event",
                    f"The simulator does not implement '{event['type']}'.",
                    "type",
                )
            await handler(event)
        except (SchemaError, ClientError) as exc:
            await self.send_error(exc.code, exc.message, exc.param, event_id=event_id)
        except ConnectionClosed:
            raise
        except Exception:
            # A simulator bug must not look like a protocol rule: report it as the service reports its own.
            logger.exception("simulator failed on %s", event.get("type"))
            await self.send_server_error(event_id=event_id)

    async def send_error(
        self,
        code: str | None,
        message: str,
        param: str | None = None,
        *,
        event_id: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        """Send the service's `error` event."""
        error = {"type": kind, "code": code, "message": message, "param": param, "event_id": event_id}
        await self.send({"type": "error", "error": error})

    async def send_server_error(
        self, message: str | None = None, *, event_id: str | None = None
    ) -> None:
        """Send the service's own failure: an `error` of type server_error with no code; the session goes on."""
        text = message or SERVER_ERROR_MESSAGE.format(session_id=self.session_id)
        await self.send_error(None, text, event_id=event_id, kind="server_error")

    def history(self) -> list[tuple[str, str, str]]:
        """The conversation as (role, kind, text) tuples, in the service's order, for tests."""
        return [(item.role, item.kind, item.text) for item in self.items]

    async def send_invalid_json(self, detail: str) -> None:
        """Answer a frame that is not a JSON object."""
        await self.send_error(
            "invalid_json", f"We could not parse the JSON body of your request. ({detail})", None
        )

    # --- session.update ----------------------------------------------------------------------

    async def _on_session_update(self, event: dict[str, Any]) -> None:
        update = event["session"]
        if self.dialect == GA and update.get("type") != "realtime":
            raise ClientError(
                "invalid_value",
                "Cannot change the session type of a realtime session.",
                "session.type",
            )
        voice = dialects.requested_voice(self.dialect, update)
        if (
            voice is not None
            and voice != dialects.voice(self.dialect, self.session)
            and self.assistant_spoke
        ):
            raise ClientError(
                "cannot_update_voice",
                "Cannot update a conversation's voice if assistant audio is present.",
                dialects.voice_param(self.dialect),
            )
        self._check_ranges(update)
        self._check_tools(update, "session")
        self._check_rejected_param(update)
        before = dialects.turn_detection(self.dialect, self.session)
        self.session = dialects.apply_update(self.dialect, self.session, update)
        if dialects.turn_detection(self.dialect, self.session) != before:
            self._configure_vad()
        await self.send({"type": "session.updated", "session": self.session})

    def _check_ranges(self, update: dict[str, Any]) -> None:
        """The numeric limits the service enforces beyond the type definitions."""
        checks: list[tuple[str, Any, float, float]] = []
        if self.dialect == PREVIEW:
            checks.append(("session.temperature", update.get("temperature"), 0.6, 1.2))
            checks.append(("session.speed", update.get("speed"), 0.25, 1.5))
            checks.append(
                (
                    "session.max_response_output_tokens",
                    update.get("max_response_output_tokens"),
                    1,
                    4096,
                )
            )
        else:
            output = (update.get("audio") or {}).get("output") or {}
            checks.append(("session.audio.output.speed", output.get("speed"), 0.25, 1.5))
            checks.append(("session.max_output_tokens", update.get("max_output_tokens"), 1, 4096))
        for param, value, low, high in checks:
            if not isinstance(value, (int, float)):
                continue  # absent, or "inf" for the token limits
            kind = "integer" if isinstance(value, int) else "decimal"
            if value < low:
                raise ClientError(
                    f"{kind}_below_min_value",
                    f"Invalid '{param}': {kind} below minimum value. Expected a value >= {low}, but got {value} instead.",
                    param,
                )
            if value > high:
                raise ClientError(
                    f"{kind}_above_max_value",
                    f"Invalid '{param}': {kind} above maximum value. Expected a value <= {high}, but got {value} instead.",
                    param,
                )

    def _check_tools(self, update: dict[str, Any], param: str) -> None:
        """Function declarations and tool_choice as the service checks them, beyond the types."""
        if "tools" in update:
            tools.check_tools(update["tools"], f"{param}.tools")
        if "tools" in update or "tool_choice" in update:
            # A forced function may be declared in the same update, or earlier.
            declared = update.get("tools", self.session.get("tools") or [])
            choice = update.get("tool_choice", self.session.get("tool_choice"))
            tools.check_tool_choice(self.dialect, choice, declared, f"{param}.tool_choice")

    def _check_rejected_param(self, update: dict[str, Any]) -> None:
        """The reject_session_update_param knob: refuse any update that sets that parameter path."""
        param = self.options.reject_session_update_param
        if param is None:
            return
        value: Any = {"session": update}
        for key in param.split("."):
            if not isinstance(value, dict) or key not in value:
                return
            value = value[key]
        raise ClientError(
            "invalid_value", f"Invalid value for '{param}': {json.dumps(value)} is not supported.", param
        )

    def _configure_vad(self) -> None:
        """(Re)build the detector from turn_detection; None means push-to-talk."""
        settings = dialects.turn_detection(self.dialect, self.session)
        if settings is None:
            self.vad = None
        else:
            if settings["type"] == "semantic_vad":
                silence_ms = dialects.EAGERNESS_SILENCE_MS[settings.get("eagerness") or "auto"]
                threshold = 0.5
            else:
                silence_ms = int(settings.get("silence_duration_ms") or 500)
                threshold = float(settings.get("threshold", 0.5))
            self.vad = EnergyVad(threshold=threshold, silence_duration_ms=silence_ms)
            self.vad.skip_to(self._clock_ms())
        self._speech_item_id = None

    # --- input audio -------------------------------------------------------------------------

    def _clock_ms(self) -> int:
        """Milliseconds of audio appended since the session started."""
        return self.buffer_start_ms + len(self.buffer) // BYTES_PER_MS

    async def _on_input_audio_buffer_append(self, event: dict[str, Any]) -> None:
        try:
            pcm = base64.b64decode(event["audio"], validate=True)
        except (binascii.Error, ValueError):
            raise ClientError(
                "invalid_value", "Invalid 'audio'. Expected base64-encoded audio.", "audio"
            ) from None
        self.buffer.extend(pcm)
        if self.vad is None:
            return
        for boundary in self.vad.feed(pcm):
            if boundary.kind == "start":
                await self._speech_started(boundary.ms)
            elif self._speech_item_id is not None:
                await self._speech_stopped(boundary.ms)

    async def _speech_started(self, onset_ms: int) -> None:
        settings = dialects.turn_detection(self.dialect, self.session) or {}
        padding = int(settings.get("prefix_padding_ms", 300) or 0)
        self._speech_start_ms = max(self.buffer_start_ms, onset_ms - padding)
        self._speech_item_id = new_id("item")
        await self.send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": self._speech_start_ms,
                "item_id": self._speech_item_id,
            }
        )
        if self.active is not None and settings.get("interrupt_response", True):
            await self._cancel(self.active, "turn_detected")

    async def _speech_stopped(self, end_ms: int) -> None:
        item_id = self._speech_item_id
        assert item_id is not None
        self._speech_item_id = None
        await self.send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": end_ms,
                "item_id": item_id,
            }
        )
        start = (self._speech_start_ms - self.buffer_start_ms) * BYTES_PER_MS
        end = (end_ms - self.buffer_start_ms) * BYTES_PER_MS
        segment = bytes(self.buffer[start:end])
        # The buffer is consumed up to the end of the turn; later audio stays for the next one.
        del self.buffer[:end]
        self.buffer_start_ms = end_ms
        await self._commit(item_id, segment)
        settings = dialects.turn_detection(self.dialect, self.session) or {}
        if settings.get("create_response", True) and self.active is None:
            self._start_response({})

    async def _on_input_audio_buffer_commit(self, event: dict[str, Any]) -> None:
        buffered_ms = len(self.buffer) / BYTES_PER_MS
        if buffered_ms < MIN_COMMIT_MS:
            raise ClientError(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {buffered_ms:.2f}ms of audio.",
            )
        item_id = self._speech_item_id or new_id("item")
        segment = bytes(self.buffer)
        self.buffer_start_ms = self._clock_ms()
        self.buffer.clear()
        if self.vad is not None:
            self.vad.skip_to(self.buffer_start_ms)
        self._speech_item_id = None
        await self._commit(item_id, segment)

    async def _on_input_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        self.buffer_start_ms = self._clock_ms()
        self.buffer.clear()
        if self.vad is not None:
            self.vad.skip_to(self.buffer_start_ms)
        self._speech_item_id = None
        await self.send({"type": "input_audio_buffer.cleared"})

    async def _on_output_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        # WebRTC/SIP only: over WebSocket the client owns playback, so there is nothing to clear.
        return None

    async def _commit(self, item_id: str, pcm: bytes) -> None:
        """Turn committed audio into a user item, and transcribe it when transcription is on."""
        previous = self.items[-1].id if self.items else None
        await self.send(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": previous,
            }
        )
        audio_ms = len(pcm) // BYTES_PER_MS
        heard = self.options.heard_texts.popleft() if self.options.heard_texts else None
        item = Item(
            item_id, "user", "audio", dialects.user_audio_item(item_id), audio_ms=audio_ms, heard=heard
        )
        self.items.append(item)
        await self._announce_item(item, previous)
        settings = dialects.transcription(self.dialect, self.session)
        if settings is not None:
            self._spawn(self._transcribe(item, fail=self._transcription_fails(settings)))

    def _transcription_fails(self, settings: dict[str, Any]) -> bool:
        """Whether this commit's transcription fails: a knob says so, or the model is not deployed."""
        if self.options.transcription_failures > 0:
            self.options.transcription_failures -= 1
            return True
        # Azure takes a deployment name here and fails every turn for one it lacks (openai-agents-js#297).
        return (
            self.transcription_models is not None
            and settings.get("model") not in self.transcription_models
        )

    async def _transcribe(self, item: Item, *, fail: bool) -> None:
        """Deliver the deterministic transcript (or the failure) after a delay, as the service does."""
        try:
            await asyncio.sleep(self.options.transcription_delay_s)
            if fail:
                await self.send(
                    {
                        "type": "conversation.item.input_audio_transcription.failed",
                        "item_id": item.id,
                        "content_index": 0,
                        "error": {
                            "type": "server_error",
                            "code": None,
                            "message": f"Input transcription failed for item '{item.id}'.",
                            "param": None,
                        },
                    }
                )
                return
            transcript = item.heard if item.heard is not None else user_transcript(item.audio_ms)
            item.text = transcript
            item.payload["content"][0]["transcript"] = transcript
            base = {"item_id": item.id, "content_index": 0}
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    **base,
                    "delta": transcript,
                }
            )
            audio_tokens = math.ceil(item.audio_ms / 100)
            text_tokens = _text_tokens(transcript)
            usage = {
                "type": "tokens",
                "input_tokens": audio_tokens,
                "output_tokens": text_tokens,
                "total_tokens": audio_tokens + text_tokens,
                "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
            }
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    **base,
                    "transcript": transcript,
                    "usage": usage,
                }
            )
        except ConnectionClosed:
            pass

    # --- conversation items ------------------------------------------------------------------

    def _find(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise ClientError("item_not_found", f"Item with item_id '{item_id}' not found.", "item_id")

    async def _announce_item(self, item: Item, previous: str | None, *, done: bool = True) -> None:
        """Preview says conversation.item.created; GA says conversation.item.added (then .done when complete)."""
        name = "conversation.item.created" if self.dialect == PREVIEW else "conversation.item.added"
        await self.send({"type": name, "previous_item_id": previous, "item": item.payload})
        if done and self.dialect != PREVIEW:
            await self.send(
                {
                    "type": "conversation.item.done",
                    "previous_item_id": previous,
                    "item": item.payload,
                }
            )

    async def _on_conversation_item_create(self, event: dict[str, Any]) -> None:
        payload = dict(event["item"])
        item_id = payload.get("id") or new_id("item")
        if any(existing.id == item_id for existing in self.items):
            raise ClientError(
                "invalid_value", f"Item with id '{item_id}' already exists.", "item.id"
            )
        tools.check_item(payload)
        is_output = payload.get("type") == "function_call_output"
        if is_output and payload["call_id"] not in self._call_names():
            # What the service answers (livekit/agents#3344, OpenAI community forum): code
            # invalid_tool_call_id, no param.
            raise ClientError(
                "invalid_tool_call_id",
                f"Tool call ID '{payload['call_id']}' not found in conversation.",
            )
        if payload.get("type") == "function_call":
            # A seeded call may leave its id to the server.
            payload.setdefault("call_id", new_id("call", 16))
        payload.update(id=item_id, object="realtime.item", status="completed")
        texts = [
            part.get("text") or part.get("transcript") or ""
            for part in payload.get("content") or []
            if isinstance(part, dict)
        ]
        # Function items bill their arguments or output as text, as the service counts them.
        text = " ".join(t for t in texts if t) or str(
            payload.get("output") or payload.get("arguments") or ""
        )
        item = Item(
            item_id,
            payload.get("role") or payload.get("type", "message"),
            "text",
            payload,
            text=text,
        )
        previous_id = event.get("previous_item_id")
        if previous_id is None:
            index = len(self.items)
        elif previous_id == "root":
            index = 0
        else:
            try:
                index = self.items.index(self._find(previous_id)) + 1
            except ClientError:
                raise ClientError(
                    "invalid_value",
                    f"Previous item with id '{previous_id}' not found.",
                    "previous_item_id",
                ) from None
        previous = self.items[index - 1].id if index > 0 else None
        self.items.insert(index, item)
        await self._announce_item(item, previous)

    def _call_names(self) -> dict[str, str]:
        """The function calls in the conversation: call_id -> function name."""
        return {
            item.payload["call_id"]: item.payload.get("name") or ""
            for item in self.items
            if item.payload.get("type") == "function_call" and item.payload.get("call_id")
        }

    async def _on_conversation_item_retrieve(self, event: dict[str, Any]) -> None:
        item = self._find(event["item_id"])
        await self.send({"type": "conversation.item.retrieved", "item": item.payload})

    async def _on_conversation_item_delete(self, event: dict[str, Any]) -> None:
        item = self._find(event["item_id"])
        self.items.remove(item)
        await self.send({"type": "conversation.item.deleted", "item_id": item.id})

    async def _on_conversation_item_truncate(self, event: dict[str, Any]) -> None:
        item = self._find(event["item_id"])
        if item.role != "assistant" or item.kind != "audio":
            raise ClientError(
                "invalid_value", "Only assistant messages with audio can be truncated.", "item_id"
            )
        if event["content_index"] != 0:
            raise ClientError(
                "invalid_value", f"Invalid content_index {event['content_index']}.", "content_index"
            )
        audio_end_ms = event["audio_end_ms"]
        if audio_end_ms < 0 or audio_end_ms > item.audio_ms:
            raise ClientError(
                "invalid_value",
                f"Audio content of {item.audio_ms}ms is already shorter than {audio_end_ms}ms",
                "audio_end_ms",
            )
        item.truncated_ms = audio_end_ms
        # The service drops the transcript of a truncated item so the model never "said" the unheard part.
        for part in item.payload.get("content") or []:
            if "transcript" in part:
                part["transcript"] = None
        await self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": item.id,
                "content_index": 0,
                "audio_end_ms": audio_end_ms,
            }
        )

    # --- responses ---------------------------------------------------------------------------

    async def _on_response_create(self, event: dict[str, Any]) -> None:
        if self.active is not None:
            raise ClientError(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self.active.id}. "
                "Wait until the response is finished before creating a new one.",
            )
        override = event.get("response") or {}
        self._check_tools(override, "response")
        self._start_response(override)

    async def _on_response_cancel(self, event: dict[str, Any]) -> None:
        wanted = event.get("response_id")
        if self.active is None or (wanted and wanted != self.active.id):
            raise ClientError(
                "response_cancel_not_active", "Cancellation failed: no active response found"
            )
        await self._cancel(self.active, "client_cancelled")

    def _start_response(self, override: dict[str, Any]) -> None:
        outcomes, replies = self.options.response_outcomes, self.options.reply_texts
        calls = self._choose_calls(override)
        # A function-call response says nothing: a scripted reply waits for the answer after it.
        run = Run(new_id("resp"), override, outcomes.popleft() if outcomes else "completed",
                  replies.popleft() if replies and not calls else None, calls=calls)
        self.active = run
        run.task = self._spawn(self._respond(run))

    async def _cancel(self, run: Run, reason: str) -> None:
        """Stop a response and wait until its closing events are out, so ordering stays stable."""
        run.cancel_reason = reason
        run.wake.set()
        if run.task is not None:
            await asyncio.wait({run.task})

    async def _pause(self, run: Run, seconds: float) -> None:
        """Sleep, waking early if the response is cancelled."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        try:
            await asyncio.wait_for(run.wake.wait(), timeout=seconds)
        except TimeoutError:
            pass

    def _unanswered(self) -> tuple[Item | None, list[Item]]:
        """The latest user item no assistant message answered (or None), and the items after it."""
        for index in range(len(self.items) - 1, -1, -1):
            item = self.items[index]
            if item.role in ("user", "assistant"):
                return (item if item.role == "user" else None), self.items[index + 1 :]
        return None, list(self.items)

    def _choose_calls(self, override: dict[str, Any]) -> list[tools.Call]:
        """The function calls a new response makes (tools.choose_calls); [] for a spoken answer."""
        declared = override.get("tools", self.session.get("tools") or [])
        choice = override.get("tool_choice", self.session.get("tool_choice", "auto"))
        parallel = override.get("parallel_tool_calls", True) is not False
        user, after = self._unanswered()
        text = None if user is None else user.heard if user.heard is not None else user.text
        if choice == "auto" and any(item.role == "function_call" for item in after):
            return []  # the user's words were already answered with calls: now their outputs are
        return tools.choose_calls(text, declared, choice, parallel=parallel)

    def reply_text(self) -> str:
        """The deterministic reply to the latest user item or the outputs after it (see docs)."""
        user, after = self._unanswered()
        names = self._call_names()
        outputs = [
            (names.get(item.payload.get("call_id"), ""), item.payload.get("output") or "")
            for item in after
            if item.role == "function_call_output"
        ]
        if outputs:
            return tools.answer(outputs)
        if user is None:
            return "Is there anything else I can help you with?"
        if user.kind == "audio":
            return f"I heard you speak for {user.audio_ms / 1000:.1f} seconds."
        text = " ".join(user.text.split())
        if len(text) > 120:
            text = text[:117].rstrip() + "..."
        return f"You wrote: {text}" + ("" if text[-1:] in ".?!" else ".")

    async def _respond(self, run: Run) -> None:
        try:
            await self._generate(run)
        except ConnectionClosed:
            pass
        finally:
            if self.active is run:
                self.active = None

    async def _generate(self, run: Run) -> None:
        """Stream one response in the service's order, honouring cancellation and the output budget."""
        modalities = dialects.output_modalities(self.dialect, self.session, run.override)
        audio_out = dialects.wants_audio(modalities)
        reply = run.reply if run.reply is not None else "" if run.calls else self.reply_text()
        voice = dialects.voice(self.dialect, self.session)
        pcm = (
            await synthesize(reply, voice=voice, speed=dialects.speed(self.dialect, self.session))
            if audio_out and not run.calls
            else b""
        )
        if self.options.response_delay_s:
            await self._pause(run, self.options.response_delay_s)
        history = list(self.items)
        budget, cut_reason = self._output_budget(run, reply, len(pcm) // BYTES_PER_MS)

        def response(
            status: str,
            output: list[dict[str, Any]],
            usage: dict[str, Any] | None = None,
            details: dict[str, Any] | None = None,
        ) -> dict[str, Any]:
            return dialects.response_object(
                self.dialect,
                self.session,
                response_id=run.id,
                conversation_id=self.conversation_id,
                status=status,
                modalities=modalities,
                output=output,
                usage=usage,
                status_details=details,
            )

        await self.send({"type": "response.created", "response": response("in_progress", [])})
        await self.send({"type": "rate_limits.updated", "rate_limits": self.options.rate_limits or _rate_limits()})
        if run.cancel_reason:
            await self._finish(run, response, history, [], "")
            return
        if run.outcome == "failed":
            await self._fail(run, response)
            return
        if run.calls:
            await self._call_functions(run, response, history)
            return
        item_id = new_id("item")
        previous = self.items[-1].id if self.items else None
        item = Item(
            item_id,
            "assistant",
            "audio" if audio_out else "text",
            dialects.assistant_item(
                self.dialect, item_id, status="in_progress", audio=audio_out, transcript=None
            ),
        )
        self.items.append(item)
        where = {"response_id": run.id, "item_id": item_id, "output_index": 0, "content_index": 0}
        await self.send(
            {
                "type": "response.output_item.added",
                "response_id": run.id,
                "output_index": 0,
                "item": item.payload,
            }
        )
        # The assistant item is complete only at the end of the response: no .done yet.
        await self._announce_item(item, previous, done=False)
        await self.send(
            {
                "type": "response.content_part.added",
                **where,
                "part": dialects.content_part(audio=audio_out, text=""),
            }
        )

        words = reply.split(" ")
        sent_text = ""
        cut = False  # the budget ran out: the service cuts the reply where it stands
        if audio_out:
            chunk_bytes = self.options.delta_ms * BYTES_PER_MS
            chunks = [pcm[i : i + chunk_bytes] for i in range(0, len(pcm), chunk_bytes)] or [b""]
            next_word = 0
            for index, chunk in enumerate(chunks):
                # Spread the words evenly over the audio; the transcript runs slightly ahead, as it does live.
                until = (
                    len(words)
                    if index == len(chunks) - 1
                    else math.ceil((index + 1) * len(words) / len(chunks))
                )
                if until > next_word:
                    delta = ("" if next_word == 0 else " ") + " ".join(words[next_word:until])
                    if budget is not None and _output_tokens(sent_text + delta, item.audio_ms) > budget:
                        cut = True
                        break
                    next_word = until
                    sent_text += delta
                    await self.send({"type": self.names.transcript_delta, **where, "delta": delta})
                if budget is not None:
                    room_ms = (
                        budget - _text_tokens(sent_text)
                    ) * MS_PER_OUTPUT_AUDIO_TOKEN - item.audio_ms
                    if room_ms * BYTES_PER_MS < len(chunk):
                        chunk, cut = chunk[: max(room_ms, 0) * BYTES_PER_MS], True
                if chunk or not cut:
                    await self.send(
                        {
                            "type": self.names.audio_delta,
                            **where,
                            "delta": base64.b64encode(chunk).decode(),
                        }
                    )
                    self.assistant_spoke = True
                    item.audio_ms += len(chunk) // BYTES_PER_MS
                if self.options.realtime_pacing:
                    await self._pause(run, len(chunk) / BYTES_PER_MS / 1000 / SPEED_UP)
                else:
                    await asyncio.sleep(0)
                if run.cancel_reason or cut:
                    break
            item.text = sent_text
            await self.send({"type": self.names.audio_done, **where})
            await self.send({"type": self.names.transcript_done, **where, "transcript": sent_text})
        else:
            for index, word in enumerate(words):
                delta = ("" if index == 0 else " ") + word
                if budget is not None:
                    room = budget * CHARS_PER_TEXT_TOKEN - len(sent_text)
                    if room < len(delta):
                        delta, cut = delta[: max(room, 0)], True
                if delta:
                    sent_text += delta
                    await self.send({"type": self.names.text_delta, **where, "delta": delta})
                await self._pause(run, 0.02 if self.options.realtime_pacing else 0)
                if run.cancel_reason or cut:
                    break
            item.text = sent_text
            await self.send({"type": self.names.text_done, **where, "text": sent_text})
        await self.send(
            {
                "type": "response.content_part.done",
                **where,
                "part": dialects.content_part(audio=audio_out, text=sent_text),
            }
        )
        status = "incomplete" if run.cancel_reason or cut else "completed"
        item.payload.update(
            dialects.assistant_item(
                self.dialect, item_id, status=status, audio=audio_out, transcript=sent_text
            )
        )
        await self.send(
            {
                "type": "response.output_item.done",
                "response_id": run.id,
                "output_index": 0,
                "item": item.payload,
            }
        )
        if self.dialect == GA:
            await self.send(
                {
                    "type": "conversation.item.done",
                    "previous_item_id": previous,
                    "item": item.payload,
                }
            )
        await self._finish(run, response, history, [item], sent_text, cut_reason if cut else None)

    async def _call_functions(
        self, run: Run, response: Callable[..., dict[str, Any]], history: list[Item]
    ) -> None:
        """Stream the response's function calls in the service's order; the client answers them."""
        items: list[Item] = []
        for index, call in enumerate(run.calls):
            if run.cancel_reason:
                break  # a cancelled response starts no further call
            item_id, call_id = new_id("item"), new_id("call", 16)
            previous = self.items[-1].id if self.items else None
            item = Item(
                item_id,
                "function_call",
                "text",
                tools.call_item(item_id, call_id, call.name, "", status="in_progress"),
            )
            self.items.append(item)
            items.append(item)
            added = {"response_id": run.id, "output_index": index, "item": item.payload}
            await self.send({"type": "response.output_item.added", **added})
            await self._announce_item(item, previous, done=False)
            where = {
                "response_id": run.id,
                "item_id": item_id,
                "output_index": index,
                "call_id": call_id,
            }
            for delta in tools.argument_chunks(call.arguments):
                await self.send(
                    {"type": "response.function_call_arguments.delta", **where, "delta": delta}
                )
                item.text += delta
                # The model takes a moment per chunk: paced, a barge-in can land mid-call.
                await self._pause(run, 0.1 if self.options.realtime_pacing else 0)
                if run.cancel_reason:
                    break
            # Sent even when cancelled, with what was streamed (so the types say); GA adds the name.
            done = {
                "type": "response.function_call_arguments.done",
                **where,
                "arguments": item.text,
            }
            if self.dialect == GA:
                done["name"] = call.name
            await self.send(done)
            item.payload.update(
                arguments=item.text, status="incomplete" if run.cancel_reason else "completed"
            )
            await self.send({"type": "response.output_item.done", **added})
            if self.dialect == GA:
                await self.send(
                    {
                        "type": "conversation.item.done",
                        "previous_item_id": previous,
                        "item": item.payload,
                    }
                )
        await self._finish(run, response, history, items, "".join(item.text for item in items))

    def _output_budget(self, run: Run, reply: str, audio_ms: int) -> tuple[int | None, str]:
        """The output tokens this response may use, and the reason it ends incomplete if it runs out."""
        full = _output_tokens(reply, audio_ms)
        budget: int | None = None
        reason = "max_output_tokens"
        if run.outcome.startswith("incomplete:"):
            # A forced cut stops about halfway, as a filter or a limit would mid-sentence.
            budget, reason = max(1, full // 2), run.outcome.partition(":")[2]
        limit = dialects.max_output_tokens(self.dialect, self.session)
        if limit is not None and (budget is None or limit < budget):
            budget, reason = limit, "max_output_tokens"
        return budget, reason

    async def _fail(self, run: Run, response: Callable[..., dict[str, Any]]) -> None:
        """End a response as `failed` with no output and no usage, as the service reports its own errors."""
        details = {
            "type": "failed",
            "error": {
                "type": "server_error",
                "code": None,
                "message": SERVER_ERROR_MESSAGE.format(session_id=self.session_id),
            },
        }
        zero = dialects.usage_object(
            self.dialect, input_text=0, input_audio=0, cached_text=0, cached_audio=0, output_text=0,
            output_audio=0,
        )
        await self._done(run, response("failed", [], zero, details))

    async def _finish(
        self,
        run: Run,
        response: Callable[..., dict[str, Any]],
        history: list[Item],
        items: list[Item],
        text: str,
        cut_reason: str | None = None,
    ) -> None:
        """Send response.done with usage computed from durations (see docs/simulator.md)."""
        usage = self._usage(history, sum(item.audio_ms for item in items), text)
        output = [item.payload for item in items]
        if run.cancel_reason:
            done = response(
                "cancelled", output, usage, {"type": "cancelled", "reason": run.cancel_reason}
            )
        elif cut_reason:
            done = response("incomplete", output, usage, {"type": "incomplete", "reason": cut_reason})
        else:
            done = response("completed", output, usage)
        await self._done(run, done)

    async def _done(self, run: Run, done: dict[str, Any]) -> None:
        """Free the conversation for the next response, then announce this one's end."""
        if self.active is run:
            self.active = None
        self.responses.append(done)
        await self.send({"type": "response.done", "response": done})

    def _usage(self, history: list[Item], audio_ms: int, text: str) -> dict[str, Any]:
        """Bill the whole conversation as input, as the service does every turn."""
        instructions = self.session.get("instructions") or ""
        input_text = _text_tokens(instructions)
        input_audio = 0
        for item in history:
            if item.kind == "audio":
                per_ms = 100 if item.role == "user" else 50
                input_audio += math.ceil(item.heard_ms / per_ms)
            else:
                input_text += _text_tokens(item.text)
        # What the previous turn already sent is a cached prefix now, its text and audio each cached
        # (capped at the current input: a truncation since may have shortened it). The service only
        # caches prefixes of 1024+ tokens; the simulator caches any, so short test chats show caching.
        previous_text, previous_audio = self.previous_input
        self.previous_input = (input_text, input_audio)
        return dialects.usage_object(
            self.dialect,
            input_text=input_text,
            input_audio=input_audio,
            cached_text=min(input_text, previous_text),
            cached_audio=min(input_audio, previous_audio),
            output_text=_text_tokens(text),
            output_audio=math.ceil(audio_ms / MS_PER_OUTPUT_AUDIO_TOKEN),
        )


def _text_tokens(text: str) -> int:
    """Text billing: about 4 characters per token."""
    return math.ceil(len(text) / CHARS_PER_TEXT_TOKEN)


def _output_tokens(text: str, audio_ms: int) -> int:
    """What a reply of this transcript and audio length bills as output."""
    return _text_tokens(text) + math.ceil(audio_ms / MS_PER_OUTPUT_AUDIO_TOKEN)


def user_transcript(audio_ms: int) -> str:
    """The deterministic stand-in for ASR: it states the length of what was heard."""
    return f"Speech of {audio_ms / 1000:.1f} seconds."


def _rate_limits() -> list[dict[str, Any]]:
    """Generous, static limits shaped like the service's."""
    return [
        {"name": "requests", "limit": 10000, "remaining": 9999, "reset_seconds": 0.006},
        {"name": "tokens", "limit": 2000000, "remaining": 1995000, "reset_seconds": 0.15},
    ]


def parse_frame(message: str | bytes) -> tuple[dict[str, Any] | None, str]:
    """Decode one WebSocket frame into an event dict, or explain why it is not one."""
    if isinstance(message, bytes):
        return None, "binary frames are not supported; send JSON text"
    try:
        event = json.loads(message)
    except json.JSONDecodeError as exc:
        return None, str(exc)
    if not isinstance(event, dict):
        return None, "expected a JSON object"
    return event, ""
