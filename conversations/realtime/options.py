"""The conversation settings a user may choose, their limits per dialect, and how they become a session.

No Django imports: the form, the consumer and the tests all read the same limits from here.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .client import GA, PREVIEW
from .protocol import SessionConfig, TurnDetection

PREVIEW_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse")
GA_VOICES = (*PREVIEW_VOICES, "marin", "cedar")
TURN_DETECTION_MODES = ("server_vad", "semantic_vad", "push_to_talk")
EAGERNESS = ("auto", "low", "medium", "high")
TRANSCRIPTION_MODELS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
NOISE_REDUCTION = ("near_field", "far_field", "off")
# ISO-639-1 codes the transcription models handle well, with their English names for instructions.
LANGUAGES = {
    "en": "English",
    "es": "Spanish",
    "de": "German",
    "fr": "French",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "pl": "Polish",
    "ja": "Japanese",
    "zh": "Chinese",
}

INSTRUCTIONS_MAX_CHARS = 2000
VAD_THRESHOLD = (0.0, 1.0)
SILENCE_DURATION_MS = (200, 2000)
PREFIX_PADDING_MS = (0, 1000)
SPEED = (0.25, 1.5)
TEMPERATURE = (0.6, 1.2)  # preview only
MAX_RESPONSE_TOKENS = (1, 4096)

PRESETS: tuple[tuple[str, str], ...] = (
    ("Friendly assistant", "You are a friendly voice assistant. Keep answers short and conversational."),
    (
        "Language tutor",
        "You are a patient language tutor. Speak slowly and simply, correct my mistakes gently, "
        "and ask me a question after each answer.",
    ),
    (
        "Interview practice",
        "You are a job interviewer. Ask me one interview question at a time, listen to my answer, "
        "then give brief, specific feedback before the next question.",
    ),
    ("Concise expert", "You are an expert. Answer in one or two precise sentences, without filler."),
)


def transcription_model_for(saved: str, available: tuple[str, ...]) -> str:
    """The transcription model (on Azure, deployment) to use: the saved one if offered, else the first, else "" (off)."""
    if saved in available:
        return saved
    return available[0] if available else ""


def voices_for(dialect: str) -> tuple[str, ...]:
    """The voices the dialect's models offer: GA adds marin and cedar."""
    return GA_VOICES if dialect == GA else PREVIEW_VOICES


def has_temperature(dialect: str) -> bool:
    """Only the preview dialect takes a temperature."""
    return dialect == PREVIEW


@dataclass(frozen=True)
class Preferences:
    """A user's chosen conversation settings, already validated."""

    voice: str = "alloy"
    instructions: str = PRESETS[0][1]
    turn_detection: str = "server_vad"
    vad_threshold: float = 0.5
    silence_duration_ms: int = 500
    prefix_padding_ms: int = 300
    eagerness: str = "auto"
    transcription_model: str = "whisper-1"  # on Azure a deployment name; "" means off
    language: str = ""  # empty: let the model follow the user
    noise_reduction: str = "near_field"
    speed: float = 1.0
    max_response_tokens: int | None = None
    temperature: float = 0.8
    record: bool = True  # keep a recording of both sides (not a session option: the relay records)
    tools_disabled: tuple[str, ...] = ()  # tools the user turned off (conversations/tools/selectors.py)

    def with_changes(self, **changes: Any) -> Preferences:
        """A copy with some fields changed."""
        return replace(self, **changes)


def build_session_config(prefs: Preferences, dialect: str) -> SessionConfig:
    """Turn preferences into the session configuration the server enforces in this dialect."""
    instructions = prefs.instructions.strip()
    if prefs.language in LANGUAGES:
        # Transcription alone does not make the model answer in a language: ask for it too.
        instructions = f"{instructions}\n\nAlways answer in {LANGUAGES[prefs.language]}.".strip()
    if prefs.turn_detection == "push_to_talk":
        turn_detection = None
    else:
        turn_detection = TurnDetection(
            type="semantic_vad" if prefs.turn_detection == "semantic_vad" else "server_vad",
            threshold=prefs.vad_threshold,
            prefix_padding_ms=prefs.prefix_padding_ms,
            silence_duration_ms=prefs.silence_duration_ms,
            eagerness=prefs.eagerness,  # type: ignore[arg-type]
        )
    voices = voices_for(dialect)
    return SessionConfig(
        instructions=instructions,
        # A voice saved under another dialect (the deployment changed) falls back rather than failing.
        voice=prefs.voice if prefs.voice in voices else voices[0],
        turn_detection=turn_detection,
        transcription_model=prefs.transcription_model,
        transcription_language=prefs.language if prefs.language in LANGUAGES else "",
        noise_reduction=None if prefs.noise_reduction == "off" else prefs.noise_reduction,  # type: ignore[arg-type]
        temperature=prefs.temperature,
        speed=prefs.speed,
        max_output_tokens=prefs.max_response_tokens,
    )


def browser_settings(config: SessionConfig) -> dict[str, Any]:
    """The effective settings the page needs: turn mode, voice and language."""
    mode = "push_to_talk" if config.turn_detection is None else config.turn_detection.type
    return {"turn_detection": mode, "voice": config.voice, "language": config.transcription_language}
