"""What the relay core asks for: messages, upstream events, journal writes and lifecycle signals.

Plain frozen values with no Django and no I/O; the consumer carries them out in order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from ..realtime.protocol import Usage


@dataclass(frozen=True, slots=True)
class ToBrowser:
    """Send a JSON control message to the browser (dropped while no browser is attached)."""

    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToUpstream:
    """Send one client event to the current upstream session."""

    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SessionReady:
    """The upstream session confirmed its configuration (`session.updated`): it can be used."""


@dataclass(frozen=True, slots=True)
class SessionEnding:
    """Upstream said this session is over (e.g. `session_expired`): switch to a new one now."""

    reason: str


@dataclass(frozen=True, slots=True)
class Fatal:
    """The conversation cannot go on: tell the browser in plain words and end it."""

    code: str
    message: str
    close_code: int = 1011


@dataclass(frozen=True, slots=True)
class RunTool:
    """Run one function call the model asked for, off the audio path; its result goes to `RelayCore.tool_finished`."""

    call_id: str
    item_id: str
    name: str
    arguments: str  # JSON text as the model wrote it: the registry validates it


@dataclass(frozen=True, slots=True)
class CancelTool:
    """Stop a running function call: its output was already given as cancelled, so its result is not wanted."""

    call_id: str


# --- Journal writes: typed, applied in order by the journal through services -----------------------


@dataclass(frozen=True, slots=True)
class TurnAdded:
    """An item took its place in the conversation."""

    item_id: str
    role: str
    position: int
    response_id: str = ""
    text: str = ""


@dataclass(frozen=True, slots=True)
class TurnText:
    """The final (or, at the end, partial) text of an item."""

    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class TurnAudio:
    """How much of an item's audio counts (what the user heard), and whether it was cut short."""

    item_id: str
    audio_ms: int
    interrupted: bool = False
    generated_ms: int = 0  # for a cut: how much audio had been sent when it was cut (0: not known)


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """An item did not come out whole: a failed or incomplete reply, or a failed transcription."""

    item_id: str
    status: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TurnToolCall:
    """What a function call turn (TurnAdded with role "tool") asked for: its call id, tool name and arguments."""

    item_id: str
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class TurnToolOutput:
    """What a function call gave the model, in plain words for people too, and how it ended."""

    item_id: str
    output: str
    summary: str
    status: str = ""  # "" (it ran), "failed", "cancelled" or "interrupted"


@dataclass(frozen=True, slots=True)
class TurnRecorded:
    """Where an item starts in the conversation's recording."""

    item_id: str
    recording_ms: int


@dataclass(frozen=True, slots=True)
class UsageRecorded:
    """The tokens of one response; `estimated` when the service never reported them."""

    response_id: str
    model: str
    status: str
    usage: Usage
    estimated: bool = False


@dataclass(frozen=True, slots=True)
class SessionOpened:
    """A new upstream session serves the conversation."""

    upstream_session_id: str


@dataclass(frozen=True, slots=True)
class ConversationEnded:
    """The conversation is over (it can still be continued later)."""

    failed: bool = False
    error: str = ""
    # Who ended it: "user" (Stop, logout, or the browser left for good), "staff" (End on the live list, or
    # the user was suspended) or "system" (a failure, or the server stopping).
    ended_by: str = "user"


JournalOp = Union[TurnAdded, TurnText, TurnAudio, TurnOutcome, TurnToolCall, TurnToolOutput, TurnRecorded,
                  UsageRecorded, SessionOpened, ConversationEnded]
JOURNAL_OPS = (TurnAdded, TurnText, TurnAudio, TurnOutcome, TurnToolCall, TurnToolOutput, TurnRecorded, UsageRecorded,
               SessionOpened, ConversationEnded)
Effect = Union[ToBrowser, ToUpstream, SessionReady, SessionEnding, Fatal, RunTool, CancelTool, JournalOp]


def describe(op: JournalOp) -> str:
    """A journal write as a log line may show it: its type and ids, lengths instead of text, never the words."""
    match op:
        case TurnAdded():
            return (f"TurnAdded item={op.item_id} role={op.role} position={op.position} response={op.response_id or '-'} "
                    f"text={len(op.text)} chars")
        case TurnText():
            return f"TurnText item={op.item_id} text={len(op.text)} chars"
        case TurnAudio():
            return f"TurnAudio item={op.item_id} audio_ms={op.audio_ms} interrupted={op.interrupted}"
        case TurnOutcome():
            return f"TurnOutcome item={op.item_id} status={op.status}"
        case TurnToolCall():
            return (f"TurnToolCall item={op.item_id} call={op.call_id} tool={op.name} "
                    f"arguments={len(op.arguments)} chars")
        case TurnToolOutput():
            return (f"TurnToolOutput item={op.item_id} status={op.status or 'ok'} output={len(op.output)} chars "
                    f"summary={len(op.summary)} chars")
        case TurnRecorded():
            return f"TurnRecorded item={op.item_id} recording_ms={op.recording_ms}"
        case UsageRecorded():
            return f"UsageRecorded response={op.response_id} model={op.model} status={op.status}"
        case SessionOpened():
            return f"SessionOpened session={op.upstream_session_id}"
        case ConversationEnded():
            return f"ConversationEnded failed={op.failed} ended_by={op.ended_by} error={len(op.error)} chars"
    return type(op).__name__
