"""Translation between the app's session settings, the two upstream dialects and the browser protocol.

No Django imports. The browser never sends upstream events: it sends the small messages parsed by
`parse_browser_message`, and the server builds every upstream event here.
"""
from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .client import GA, PREVIEW

SAMPLE_RATE = 24_000
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000  # PCM16 mono: 48 bytes per millisecond
MAX_AUDIO_FRAME_BYTES = SAMPLE_RATE * 2  # one second
MAX_TEXT_CHARS = 4000
MAX_ITEM_ID_CHARS = 128
# Function calls from upstream: longer names, ids or arguments than any declared tool needs are cut, not trusted.
MAX_TOOL_NAME_CHARS = 64
MAX_CALL_ID_CHARS = 128
MAX_ARGUMENTS_CHARS = 64 * 1024
# More calls than this in one response are not run (a model in a loop, or a hostile upstream).
MAX_CALLS_PER_RESPONSE = 8


# --- Session configuration -------------------------------------------------------------------


@dataclass(frozen=True)
class TurnDetection:
    """How the service decides that the user has finished a turn."""

    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    create_response: bool = True
    interrupt_response: bool = True

    def render(self) -> dict[str, Any]:
        """Return the turn_detection object, which has the same shape in both dialects."""
        if self.type == "semantic_vad":
            return {
                "type": "semantic_vad",
                "eagerness": self.eagerness,
                "create_response": self.create_response,
                "interrupt_response": self.interrupt_response,
            }
        return {
            "type": "server_vad",
            "threshold": self.threshold,
            "prefix_padding_ms": self.prefix_padding_ms,
            "silence_duration_ms": self.silence_duration_ms,
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
        }


@dataclass(frozen=True)
class SessionConfig:
    """The session settings the server enforces on every upstream session."""

    instructions: str = ""
    voice: str = "alloy"
    # None means push-to-talk: the client commits the buffer and asks for a response itself.
    turn_detection: TurnDetection | None = field(default_factory=TurnDetection)
    transcription_model: str = "whisper-1"  # "": user speech is not transcribed
    transcription_language: str = ""
    noise_reduction: Literal["near_field", "far_field"] | None = "near_field"
    temperature: float = 0.8  # preview only: GA has no temperature
    speed: float = 1.0
    max_output_tokens: int | None = None  # None: "inf"

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict, as stored with the conversation."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionConfig:
        """Rebuild a config stored with `as_dict`."""
        data = dict(data)
        td = data.pop("turn_detection", None)
        return cls(turn_detection=TurnDetection(**td) if td else None, **data)


def _transcription(config: SessionConfig) -> dict[str, Any] | None:
    if not config.transcription_model:
        return None  # off: on Azure no transcription deployment is configured
    transcription: dict[str, Any] = {"model": config.transcription_model}
    if config.transcription_language:
        transcription["language"] = config.transcription_language
    return transcription


def session_update(config: SessionConfig, dialect: str, tools: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """Render the config as a `session.update` event in the given dialect, with the tools the model may call.

    A tool declaration (`{"type": "function", "name", "description", "parameters"}`) has the same flat shape
    in both dialects; without tools neither `tools` nor `tool_choice` is sent.
    """
    event = _session_update(config, dialect)
    if tools:
        event["session"]["tools"] = [dict(tool) for tool in tools]
        event["session"]["tool_choice"] = "auto"
    return event


def _session_update(config: SessionConfig, dialect: str) -> dict[str, Any]:
    turn_detection = config.turn_detection.render() if config.turn_detection else None
    noise = {"type": config.noise_reduction} if config.noise_reduction else None
    max_tokens: int | str = config.max_output_tokens if config.max_output_tokens else "inf"
    if dialect == PREVIEW:
        return {
            "type": "session.update",
            "session": {
                "modalities": ["text", "audio"],
                "instructions": config.instructions,
                "voice": config.voice,
                "input_audio_format": "pcm16",
                "output_audio_format": "pcm16",
                "input_audio_transcription": _transcription(config),
                "input_audio_noise_reduction": noise,
                "turn_detection": turn_detection,
                "temperature": config.temperature,
                "speed": config.speed,
                "max_response_output_tokens": max_tokens,
            },
        }
    if dialect != GA:
        raise ValueError(f"Unknown dialect {dialect!r}")
    pcm = {"type": "audio/pcm", "rate": SAMPLE_RATE}
    return {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "output_modalities": ["audio"],
            "instructions": config.instructions,
            "audio": {
                "input": {
                    "format": pcm,
                    "transcription": _transcription(config),
                    "noise_reduction": noise,
                    "turn_detection": turn_detection,
                },
                "output": {"format": pcm, "voice": config.voice, "speed": config.speed},
            },
            "max_output_tokens": max_tokens,
        },
    }


# --- Client events built by the server ------------------------------------------------------------


def user_text_item(text: str) -> dict[str, Any]:
    """A typed user message, identical in both dialects."""
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
    }


def user_audio_item(pcm: bytes) -> dict[str, Any]:
    """A spoken user turn re-sent as an item (its audio, PCM16), identical in both dialects."""
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_audio", "audio": base64.b64encode(pcm).decode("ascii")}],
        },
    }


def assistant_text_item(text: str, dialect: str) -> dict[str, Any]:
    """An earlier assistant turn re-injected as history (neither dialect accepts audio here)."""
    content_type = "output_text" if dialect == GA else "text"
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "assistant", "content": [{"type": content_type, "text": text}]},
    }


def truncate_item(item_id: str, audio_end_ms: int) -> dict[str, Any]:
    """Cut the server's copy of an assistant item at what the user actually heard."""
    return {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": audio_end_ms}


def function_call_item(call_id: str, name: str, arguments: str, item_id: str | None = None) -> dict[str, Any]:
    """An earlier function call re-injected as history, identical in both dialects (its output follows it)."""
    item: dict[str, Any] = {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}
    if item_id:
        item["id"] = item_id
    return {"type": "conversation.item.create", "item": item}


def function_call_output_item(call_id: str, output: str) -> dict[str, Any]:
    """What a function call returned (JSON text), identical in both dialects."""
    return {"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call_id, "output": output}}


RESPONSE_CREATE: dict[str, Any] = {"type": "response.create"}
RESPONSE_CANCEL: dict[str, Any] = {"type": "response.cancel"}
INPUT_COMMIT: dict[str, Any] = {"type": "input_audio_buffer.commit"}
INPUT_CLEAR: dict[str, Any] = {"type": "input_audio_buffer.clear"}


# --- Upstream events → browser messages --------------------------------------------------------

# Errors the browser should not see: the first is benign after server VAD consumed the buffer.
QUIET_ERROR_CODES = frozenset({"input_audio_buffer_commit_empty", "response_cancel_not_active"})

AUDIO_DELTA_TYPES = frozenset({"response.audio.delta", "response.output_audio.delta"})
_AUDIO_DONE = frozenset({"response.audio.done", "response.output_audio.done"})
_TRANSCRIPT_DELTA = frozenset(
    {
        "response.audio_transcript.delta",
        "response.output_audio_transcript.delta",
        "response.text.delta",
        "response.output_text.delta",
    }
)
_TRANSCRIPT_DONE = {
    "response.audio_transcript.done": "transcript",
    "response.output_audio_transcript.done": "transcript",
    "response.text.done": "text",
    "response.output_text.done": "text",
}
_ITEM_CREATED = frozenset({"conversation.item.created", "conversation.item.added"})
# Every event that carries a whole function_call item: announced, then done with its full arguments.
_FUNCTION_CALL_ITEM = frozenset({"conversation.item.created", "conversation.item.added", "conversation.item.done",
                                 "response.output_item.added", "response.output_item.done"})
RESPONSE_STATUSES = frozenset({"completed", "cancelled", "incomplete", "failed"})


@dataclass(frozen=True)
class Usage:
    """Token usage of one response, flattened from either dialect's `response.usage`.

    The cached counts are part of the input counts (the service bills them at a lower price). GA reports
    how many of them are text and audio (`cached_tokens_details`); the preview types have no such split,
    so there the cached tokens are shared between text and audio in proportion to the input of each.
    """

    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    input_cached_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    # Last, so that positional construction of the counts above keeps working.
    input_cached_text_tokens: int = 0
    input_cached_audio_tokens: int = 0

    @classmethod
    def from_event(cls, usage: Any) -> Usage:
        """Read a `response.usage` object, tolerating missing or malformed details."""
        usage = _obj(usage)
        inp, out = _obj(usage.get("input_token_details")), _obj(usage.get("output_token_details"))
        text, audio, cached = (_count(inp.get(name)) for name in ("text_tokens", "audio_tokens", "cached_tokens"))
        cached_text, cached_audio = _cached_split(inp.get("cached_tokens_details"), cached, text, audio)
        return cls(
            input_text_tokens=text,
            input_audio_tokens=audio,
            input_cached_tokens=cached,
            output_text_tokens=_count(out.get("text_tokens")),
            output_audio_tokens=_count(out.get("audio_tokens")),
            input_tokens=_count(usage.get("input_tokens")),
            output_tokens=_count(usage.get("output_tokens")),
            total_tokens=_count(usage.get("total_tokens")),
            input_cached_text_tokens=cached_text,
            input_cached_audio_tokens=cached_audio,
        )


def _cached_split(details: Any, cached: int, text: int, audio: int) -> tuple[int, int]:
    """The cached input tokens as (text, audio): as reported, else shared as `share_cached` does."""
    details = _obj(details)
    if "text_tokens" in details or "audio_tokens" in details:
        return _count(details.get("text_tokens")), _count(details.get("audio_tokens"))
    return share_cached(cached, text, audio)


def share_cached(cached: int, text: int, audio: int) -> tuple[int, int]:
    """Share `cached` tokens between text and audio in proportion to the text and audio input.

    Rounded half up on the text side, the audio side taking the rest so the two add up to `cached`.
    With no text or audio input to go by, all of it counts as text.
    """
    if not cached:
        return 0, 0
    if not text + audio:
        return cached, 0
    cached_text = (2 * cached * text + text + audio) // (2 * (text + audio))
    return cached_text, cached - cached_text


# Upstream events are outside input: every field is read through these, so no shape makes the relay raise.


def _obj(value: Any) -> dict[str, Any]:
    """The value if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    """The value if it is a string, else empty; NUL and unpaired surrogates become U+FFFD, so it can be stored."""
    if not isinstance(value, str):
        return ""
    if value.isascii():  # the usual case, and a cheap test: only NUL can be wrong
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    return storable_text(value)


def _count(value: Any, limit: int = 2**31 - 1) -> int:
    """A non-negative integer count (tokens, milliseconds) from whatever was sent, capped to fit a column."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0
    return min(max(0, int(value)), limit)


def _message_text(item: dict[str, Any]) -> str:
    """Return the text of an item's text content parts (typed messages, re-injected history)."""
    parts = item.get("content")
    if not isinstance(parts, list):
        return ""
    return "".join(
        _str(p.get("text")) or _str(p.get("transcript"))
        for p in parts
        if isinstance(p, dict) and p.get("type") in {"input_text", "text", "output_text"}
    )


def _function_call(item: dict[str, Any], response_id: str) -> dict[str, Any]:
    """A function_call item as the core reads it: ids, name and arguments cut to size, whether it is complete."""
    return {
        "type": "function_call",
        "item_id": _str(item.get("id"))[:MAX_ITEM_ID_CHARS],
        "call_id": _str(item.get("call_id"))[:MAX_CALL_ID_CHARS],
        "name": _str(item.get("name"))[:MAX_TOOL_NAME_CHARS],
        "arguments": _str(item.get("arguments"))[:MAX_ARGUMENTS_CHARS],
        "response_id": response_id,
        "complete": item.get("status") == "completed",
    }


def _response_calls(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The function_call items a `response.done` lists in its output, at most MAX_CALLS_PER_RESPONSE + 1."""
    output = response.get("output")
    if not isinstance(output, list):
        return []
    response_id = _str(response.get("id"))
    calls = []
    for item in output:
        if isinstance(item, dict) and item.get("type") == "function_call":
            calls.append(_function_call(item, response_id))
            if len(calls) > MAX_CALLS_PER_RESPONSE:
                break  # one more than allowed is enough for the core to know there were too many
    return calls


def normalize(event: dict[str, Any]) -> tuple[dict[str, Any] | None, bytes | None]:
    """Translate one upstream event of either dialect into (browser-protocol message, audio bytes).

    Returns (None, None) for events the browser has no use for, or whose shape is wrong. Audio deltas
    come back as raw PCM with a small `audio` message the consumer uses for bookkeeping.
    """
    kind = _str(event.get("type"))
    item_id = _str(event.get("item_id"))
    if kind in AUDIO_DELTA_TYPES:
        try:
            pcm = base64.b64decode(_str(event.get("delta")))
        except ValueError:
            return None, None
        return {"type": "audio", "item_id": item_id}, pcm
    if kind in _TRANSCRIPT_DELTA:
        return {"type": "transcript", "role": "assistant", "item_id": item_id, "delta": _str(event.get("delta"))}, None
    if kind in _TRANSCRIPT_DONE:
        text = _str(event.get(_TRANSCRIPT_DONE[kind]))
        return {"type": "transcript_done", "role": "assistant", "item_id": item_id, "text": text}, None
    if kind in _AUDIO_DONE:
        return {"type": "audio_done", "item_id": item_id}, None
    if kind == "conversation.item.input_audio_transcription.delta":
        return {"type": "transcript", "role": "user", "item_id": item_id, "delta": _str(event.get("delta"))}, None
    if kind == "conversation.item.input_audio_transcription.completed":
        return {"type": "transcript_done", "role": "user", "item_id": item_id, "text": _str(event.get("transcript"))}, None
    if kind == "conversation.item.input_audio_transcription.failed":
        error = _obj(event.get("error"))
        return {
            "type": "transcription_failed",
            "item_id": item_id,
            "message": _str(error.get("message")) or "The transcription of what you said failed.",
        }, None
    if kind == "input_audio_buffer.speech_started":
        return {"type": "speech_started", "audio_start_ms": _count(event.get("audio_start_ms")), "item_id": item_id}, None
    if kind == "input_audio_buffer.speech_stopped":
        return {"type": "speech_stopped", "audio_end_ms": _count(event.get("audio_end_ms")), "item_id": item_id}, None
    if kind in _FUNCTION_CALL_ITEM and _obj(event.get("item")).get("type") == "function_call":
        return _function_call(_obj(event.get("item")), _str(event.get("response_id"))), None
    if kind == "response.function_call_arguments.delta":
        return {"type": "function_call_arguments", "item_id": item_id[:MAX_ITEM_ID_CHARS],
                "call_id": _str(event.get("call_id"))[:MAX_CALL_ID_CHARS],
                "delta": _str(event.get("delta"))[:MAX_ARGUMENTS_CHARS]}, None
    if kind == "response.function_call_arguments.done":
        # GA names the function here too; the preview event does not (the item announced it).
        return {"type": "function_call_arguments_done", "item_id": item_id[:MAX_ITEM_ID_CHARS], "call_id": _str(event.get("call_id"))[:MAX_CALL_ID_CHARS],
                "name": _str(event.get("name"))[:MAX_TOOL_NAME_CHARS],
                "arguments": _str(event.get("arguments"))[:MAX_ARGUMENTS_CHARS],
                "response_id": _str(event.get("response_id"))}, None
    if kind in _ITEM_CREATED:
        item = _obj(event.get("item"))
        role = item.get("role")
        if item.get("type") != "message" or role not in {"user", "assistant"}:
            return None, None
        return {
            "type": f"{role}_item",
            "item_id": _str(item.get("id")),
            "previous_item_id": _str(event.get("previous_item_id")),
            "text": _message_text(item),
        }, None
    if kind == "response.output_item.added":
        item = _obj(event.get("item"))
        if item.get("type") != "message":
            return None, None
        return {"type": "assistant_item", "item_id": _str(item.get("id")), "response_id": _str(event.get("response_id")),
                "text": ""}, None
    if kind == "response.created":
        return {"type": "response_created", "response_id": _str(_obj(event.get("response")).get("id"))}, None
    if kind == "response.done":
        response = _obj(event.get("response"))
        details = _obj(response.get("status_details"))
        error = _obj(details.get("error"))
        status = _str(response.get("status"))
        return {
            "type": "response_done",
            "response_id": _str(response.get("id")),
            "status": status if status in RESPONSE_STATUSES else "completed",
            # incomplete: max_output_tokens or content_filter; failed: the error's code or type.
            "reason": (_str(details.get("reason")) or _str(error.get("code")) or _str(error.get("type")))[:100],
            "usage": Usage.from_event(response.get("usage")),
            "calls": _response_calls(response),
        }, None
    if kind == "conversation.item.truncated":
        return {"type": "truncated", "item_id": item_id, "audio_end_ms": _count(event.get("audio_end_ms"))}, None
    if kind in {"session.created", "session.updated"}:
        session = _obj(event.get("session"))
        expires = session.get("expires_at")
        return {"type": kind.replace(".", "_"), "session_id": _str(session.get("id")), "model": _str(session.get("model")),
                "expires_at": _count(expires, limit=2**62) or None}, None
    if kind == "error":
        error = _obj(event.get("error"))
        return {"type": "upstream_error", "code": _str(error.get("code")) or _str(error.get("type")) or "error",
                "error_type": _str(error.get("type")), "message": _str(error.get("message")),
                "param": _str(error.get("param")) or None}, None
    return None, None


# --- Browser messages (the allowlist) -----------------------------------------------------------

# The longest text frame parsed at all: a 4000-character message escaped as \uXXXX pairs fits.
MAX_MESSAGE_CHARS = 64 * 1024
# The longest audio a barge-in can claim to have played: a day, far past any upstream session.
MAX_AUDIO_END_MS = 24 * 60 * 60 * 1000
# `t` is echoed only when JavaScript reads it back as the same number.
MAX_SAFE_INTEGER = 2**53 - 1
# `upstream_check` is the check socket's; the talk socket answers it as unknown.
BROWSER_MESSAGE_TYPES = frozenset(
    {"truncate", "text", "press", "commit", "cancel", "apply_settings", "ping", "upstream_check"}
)


class BrowserMessageError(ValueError):
    """A browser message was malformed or not allowed; the text is safe to show the user."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class BrowserCommand:
    """A validated browser control message."""

    type: Literal["truncate", "text", "press", "commit", "cancel", "apply_settings", "ping", "upstream_check"]
    item_id: str = ""
    audio_end_ms: int = 0  # 0..MAX_AUDIO_END_MS
    text: str = ""  # stripped, 1..MAX_TEXT_CHARS, valid Unicode (no lone surrogates)
    t: float | int | None = None  # finite, or None


def _has_lone_surrogate(text: str) -> bool:
    """Whether JSON escapes left half of a surrogate pair, which UTF-8 (and PostgreSQL) cannot store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def storable_text(text: str) -> str:
    """Text any database stores: unpaired surrogates (as a browser's TextEncoder does) and NUL become U+FFFD.

    PostgreSQL refuses NUL in text and UTF-8 cannot encode half a surrogate pair; either would make the
    write of a whole turn fail after it was said.
    """
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)
    return text


def _finite_number(value: Any) -> bool:
    """A JSON number that is neither a boolean nor NaN/±Infinity (which strict JSON cannot carry)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _echoable(t: Any) -> float | int | None:
    """The ping's `t` if it can go back as a number the page reads unchanged, else None."""
    if not _finite_number(t):
        return None
    if isinstance(t, int) and abs(t) > MAX_SAFE_INTEGER:
        return None
    return t


def parse_browser_message(raw: str) -> BrowserCommand:
    """Parse and validate a text frame from the browser against the allowlist."""
    if not isinstance(raw, str):
        raise BrowserMessageError("invalid_message", "A message must be JSON text.")
    # Checked before parsing, so a huge frame costs no parser time or memory.
    if len(raw) > MAX_MESSAGE_CHARS:
        raise BrowserMessageError("message_too_long", f"Messages are limited to {MAX_MESSAGE_CHARS} characters.")
    try:
        data = json.loads(raw)
    except RecursionError:
        # `[[[[...]]]]` nested deeper than Python's recursion limit; no message needs nesting at all.
        raise BrowserMessageError("invalid_json", "The message was nested too deeply.") from None
    except ValueError:  # includes integers longer than Python's 4300-digit limit
        raise BrowserMessageError("invalid_json", "The message was not valid JSON.") from None
    if not isinstance(data, dict):
        raise BrowserMessageError("invalid_message", "A message must be a JSON object.")
    kind = data.get("type")
    # A list or object as the type must not reach the set lookup below (unhashable).
    if not isinstance(kind, str) or kind not in BROWSER_MESSAGE_TYPES:
        if not isinstance(kind, str):
            raise BrowserMessageError("unknown_type", "A message needs a type, as a string.")
        raise BrowserMessageError("unknown_type", f"Unknown message type {kind[:40]!r}.")
    if kind == "truncate":
        item_id, end = data.get("item_id"), data.get("audio_end_ms")
        if (
            not isinstance(item_id, str)
            or not item_id
            or len(item_id) > MAX_ITEM_ID_CHARS
            or _has_lone_surrogate(item_id)
        ):
            raise BrowserMessageError("invalid_item_id", "A truncate message needs the item_id of the playing reply.")
        if not _finite_number(end) or not 0 <= end <= MAX_AUDIO_END_MS:
            raise BrowserMessageError(
                "invalid_audio_end_ms",
                f"audio_end_ms must be a number of milliseconds from 0 to {MAX_AUDIO_END_MS}.",
            )
        return BrowserCommand("truncate", item_id=item_id, audio_end_ms=int(end))
    if kind == "text":
        text = data.get("text")
        if not isinstance(text, str):
            raise BrowserMessageError("invalid_text", "A text message needs its text as a string.")
        text = storable_text(text).strip()
        if not text:
            raise BrowserMessageError("empty_text", "Type something before sending.")
        if len(text) > MAX_TEXT_CHARS:
            raise BrowserMessageError("text_too_long", f"Messages are limited to {MAX_TEXT_CHARS} characters.")
        return BrowserCommand("text", text=text)
    if kind == "ping":
        return BrowserCommand("ping", t=_echoable(data.get("t")))
    return BrowserCommand(kind)  # type: ignore[arg-type]  # press, commit, cancel, apply_settings, upstream_check


def check_audio_frame(frame: bytes) -> None:
    """Refuse audio frames that cannot be PCM16 or are unreasonably large."""
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise BrowserMessageError("invalid_audio", "Audio frames must be binary.")
    if len(frame) > MAX_AUDIO_FRAME_BYTES:
        raise BrowserMessageError("audio_frame_too_large", "Audio frames must be at most one second long.")
    if len(frame) % 2:
        raise BrowserMessageError("invalid_audio", "Audio frames must be 16-bit PCM (an even number of bytes).")


def error_message(code: str, message: str, *, fatal: bool = False) -> dict[str, Any]:
    """The browser's `error` message: plain words, and whether the socket closes next."""
    return {"type": "error", "code": code, "message": message, "fatal": fatal}


def dumps(message: dict[str, Any]) -> str:
    """Serialise a browser message compactly as strict JSON (NaN and Infinity raise ValueError)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)
