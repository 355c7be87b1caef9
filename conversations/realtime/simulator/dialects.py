"""Everything that differs between the GA and preview dialects: session shapes, names, items, usage."""

from __future__ import annotations

import copy
import typing
from dataclasses import dataclass
from typing import Any

from openai.types.beta.realtime.session import Session as PreviewSession

GA = "ga"
PREVIEW = "preview"

DEFAULT_INSTRUCTIONS = (
    "You are a simulated realtime assistant. You answer every turn with a short, deterministic "
    "sentence describing what you received."
)
# The preview Session model only accepts these model names; other deployments omit `model`.
_PREVIEW_MODELS = frozenset(
    typing.get_args(typing.get_args(PreviewSession.model_fields["model"].annotation)[0])
)

SERVER_VAD_DEFAULTS: dict[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "create_response": True,
    "interrupt_response": True,
}
SEMANTIC_VAD_DEFAULTS: dict[str, Any] = {
    "type": "semantic_vad",
    "eagerness": "auto",
    "create_response": True,
    "interrupt_response": True,
}
# semantic_vad is simulated as server_vad whose silence grows as eagerness falls.
EAGERNESS_SILENCE_MS = {"high": 300, "medium": 700, "auto": 700, "low": 1200}


@dataclass(frozen=True)
class EventNames:
    """Server event names that GA renamed."""

    audio_delta: str
    audio_done: str
    transcript_delta: str
    transcript_done: str
    text_delta: str
    text_done: str
    assistant_audio: str  # assistant content part type in an item
    assistant_text: str


NAMES = {
    GA: EventNames(
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "response.output_text.delta",
        "response.output_text.done",
        "output_audio",
        "output_text",
    ),
    PREVIEW: EventNames(
        "response.audio.delta",
        "response.audio.done",
        "response.audio_transcript.delta",
        "response.audio_transcript.done",
        "response.text.delta",
        "response.text.done",
        "audio",
        "text",
    ),
}


def default_session(
    dialect: str, *, model: str, session_id: str, expires_at: int
) -> dict[str, Any]:
    """The session object sent in `session.created`, with the service's defaults."""
    if dialect == GA:
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": session_id,
            "model": model,
            "output_modalities": ["audio"],
            "instructions": DEFAULT_INSTRUCTIONS,
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "truncation": "auto",
            "prompt": None,
            "expires_at": expires_at,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": dict(SERVER_VAD_DEFAULTS, idle_timeout_ms=None),
                },
                "output": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "voice": "marin",
                    "speed": 1.0,
                },
            },
            "include": None,
        }
    session: dict[str, Any] = {
        "id": session_id,
        "object": "realtime.session",
        "model": model,
        "expires_at": expires_at,
        "modalities": ["text", "audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "voice": "alloy",
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_transcription": None,
        "input_audio_noise_reduction": None,
        "turn_detection": dict(SERVER_VAD_DEFAULTS),
        "tools": [],
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
        "speed": 1.0,
        "tracing": None,
    }
    if model not in _PREVIEW_MODELS:
        del session["model"]
    return session


def _fill_turn_detection(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A turn_detection object completed with the defaults of its type, as the service reports it."""
    if value is None:
        return None
    defaults = SEMANTIC_VAD_DEFAULTS if value.get("type") == "semantic_vad" else SERVER_VAD_DEFAULTS
    return {**defaults, **{k: v for k, v in value.items() if v is not None}}


def apply_update(dialect: str, session: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Return the session with a validated `session.update` payload applied (only fields present)."""
    merged = copy.deepcopy(session)
    if dialect == GA:
        for key, value in update.items():
            if key in ("type", "model"):
                continue
            if key == "audio" and isinstance(value, dict):
                for direction in ("input", "output"):
                    for field, setting in (value.get(direction) or {}).items():
                        if field == "turn_detection":
                            setting = _fill_turn_detection(setting)
                            if setting is not None and setting["type"] == "server_vad":
                                setting.setdefault("idle_timeout_ms", None)
                        merged["audio"][direction][field] = setting
            else:
                merged[key] = value
        return merged
    for key, value in update.items():
        if key == "model":
            continue
        merged[key] = _fill_turn_detection(value) if key == "turn_detection" else value
    return merged


def voice(dialect: str, session: dict[str, Any]) -> str:
    """The configured output voice."""
    return session["audio"]["output"]["voice"] if dialect == GA else session["voice"]


def requested_voice(dialect: str, update: dict[str, Any]) -> str | None:
    """The voice a `session.update` payload asks for, if any."""
    if dialect == GA:
        return ((update.get("audio") or {}).get("output") or {}).get("voice")
    return update.get("voice")


def voice_param(dialect: str) -> str:
    """Where the voice lives, for error params."""
    return "session.audio.output.voice" if dialect == GA else "session.voice"


def speed(dialect: str, session: dict[str, Any]) -> float:
    """The output speed multiplier."""
    value = session["audio"]["output"].get("speed") if dialect == GA else session.get("speed")
    return float(value or 1.0)


def turn_detection(dialect: str, session: dict[str, Any]) -> dict[str, Any] | None:
    """The turn_detection object, or None for push-to-talk."""
    return (
        session["audio"]["input"]["turn_detection"] if dialect == GA else session["turn_detection"]
    )


def transcription(dialect: str, session: dict[str, Any]) -> dict[str, Any] | None:
    """The input transcription settings, or None when transcription is off."""
    return (
        session["audio"]["input"]["transcription"]
        if dialect == GA
        else session["input_audio_transcription"]
    )


def max_output_tokens(dialect: str, session: dict[str, Any]) -> int | None:
    """The session's per-response output token limit, or None for "inf"."""
    key = "max_output_tokens" if dialect == GA else "max_response_output_tokens"
    value = session.get(key)
    return value if isinstance(value, int) else None


def output_modalities(
    dialect: str, session: dict[str, Any], override: dict[str, Any] | None = None
) -> list[str]:
    """What the response produces: GA is audio or text; preview is text, or text and audio."""
    key = "output_modalities" if dialect == GA else "modalities"
    if override and override.get(key):
        return list(override[key])
    return list(session[key])


def wants_audio(modalities: list[str]) -> bool:
    """Whether a response with these modalities speaks."""
    return "audio" in modalities


def user_audio_item(item_id: str, *, transcript: str | None = None) -> dict[str, Any]:
    """A committed user audio message, as the service shows it (no audio echoed back)."""
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": transcript}],
    }


def assistant_item(
    dialect: str, item_id: str, *, status: str, audio: bool, transcript: str | None
) -> dict[str, Any]:
    """An assistant message item; content is empty while the response is starting."""
    names = NAMES[dialect]
    content: list[dict[str, Any]] = []
    if transcript is not None:
        content = [
            {"type": names.assistant_audio, "transcript": transcript}
            if audio
            else {"type": names.assistant_text, "text": transcript}
        ]
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def content_part(*, audio: bool, text: str) -> dict[str, Any]:
    """The `part` of content_part events: the same shape in both dialects."""
    return {"type": "audio", "transcript": text} if audio else {"type": "text", "text": text}


def response_object(
    dialect: str,
    session: dict[str, Any],
    *,
    response_id: str,
    conversation_id: str,
    status: str,
    modalities: list[str],
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    status_details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `response` object of response.created / response.done."""
    response: dict[str, Any] = {
        "object": "realtime.response",
        "id": response_id,
        "status": status,
        "status_details": status_details,
        "output": output,
        "conversation_id": conversation_id,
        "usage": usage,
        "metadata": None,
    }
    if dialect == GA:
        response.update(
            output_modalities=modalities,
            max_output_tokens=session.get("max_output_tokens", "inf"),
            audio={
                "output": {
                    "format": session["audio"]["output"]["format"],
                    "voice": voice(dialect, session),
                }
            },
        )
    else:
        response.update(
            modalities=modalities,
            voice=session["voice"],
            output_audio_format=session["output_audio_format"],
            temperature=session.get("temperature", 0.8),
            max_output_tokens=session.get("max_response_output_tokens", "inf"),
        )
    return response


def usage_object(
    dialect: str,
    *,
    input_text: int,
    input_audio: int,
    cached_text: int,
    cached_audio: int,
    output_text: int,
    output_audio: int,
) -> dict[str, Any]:
    """Token usage in the dialect's shape (GA adds image tokens and the cached text/audio split)."""
    input_tokens = input_text + input_audio
    output_tokens = output_text + output_audio
    input_details: dict[str, Any] = {
        "cached_tokens": cached_text + cached_audio,
        "text_tokens": input_text,
        "audio_tokens": input_audio,
    }
    # The preview types (openai.types.beta.realtime) have no cached_tokens_details: only GA reports the split.
    if dialect == GA:
        input_details.update(
            image_tokens=0,
            cached_tokens_details={"text_tokens": cached_text, "audio_tokens": cached_audio, "image_tokens": 0},
        )
    return {
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_token_details": input_details,
        "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
    }
