"""The relay's rules, as a pure core: upstream events and browser commands in, effects out.

No Django, no asyncio, no sockets. One `RelayCore` holds one conversation: its items with their
stored places, transcripts so far, audio forwarded and heard, the push-to-talk gate and the facts of
the current upstream session. It can be rebuilt from stored turns (`RelayCore.resume`), which is how
a continued conversation, a browser reconnect and a new upstream session all start.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..realtime import options, protocol
from ..realtime.protocol import BYTES_PER_MS, BrowserCommand, SessionConfig, Usage
from .effects import (
    CancelTool,
    Effect,
    Fatal,
    RunTool,
    SessionEnding,
    SessionOpened,
    SessionReady,
    ToBrowser,
    ToUpstream,
    TurnAdded,
    TurnAudio,
    TurnOutcome,
    TurnText,
    TurnToolCall,
    TurnToolOutput,
    UsageRecorded,
)

# The service refuses to commit less than 100 ms of audio.
MIN_COMMIT_BYTES = 100 * BYTES_PER_MS
# Client-chosen item ids: the service takes up to 32 characters.
_SEED_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# Rough tokens per character of text, as the service bills English text.
CHARS_PER_TOKEN = 4
SUMMARY_CHARS_PER_TURN = 160
# What the page shows while a tool without a working text of its own runs.
DEFAULT_WORKING_TEXT = "Working on it…"
# Calls the model asks for that never run still get an output: the service expects one per call, and the
# model can then say what happened instead of waiting for it.
CANCELLED_OUTPUT = json.dumps({"error": "cancelled", "message": "The user interrupted, so this call was cancelled."})
INTERRUPTED_OUTPUT = json.dumps({"error": "interrupted",
                                 "message": "The conversation was interrupted while this call ran; it has no result."})
TOO_MANY_OUTPUT = json.dumps({"error": "too_many_calls",
                              "message": f"At most {protocol.MAX_CALLS_PER_RESPONSE} calls are run per answer."})


def _unknown_tool_output(name: str) -> str:
    return json.dumps({"error": "unknown_tool", "message": f"There is no tool called {name!r} here."})


@dataclass(frozen=True, slots=True)
class StoredTurn:
    """A turn as the database has it, to rebuild a core from."""

    item_id: str
    role: str
    position: int
    text: str = ""
    interrupted: bool = False
    audio_ms: int = 0
    status: str = ""
    # A function call (role "tool"): what it asked for, and what it gave the model (None: the session ended first).
    call_id: str = ""
    tool_name: str = ""
    arguments: str = ""
    output: str | None = None
    summary: str = ""


@dataclass(slots=True)
class ToolCall:
    """A function call the model made, from its announcement to its output."""

    call_id: str
    name: str = ""
    arguments: str = ""
    complete: bool = False  # the arguments are whole (`.done`, or a completed item)
    # announced (its response still going) → running → done; or cancelled / interrupted
    state: str = "announced"
    cancel_wanted: bool = False  # the user moved on before its response was done: never run it
    output: str | None = None
    summary: str = ""
    ok: bool = False
    written: bool = False  # TurnToolCall queued
    unrecorded: bool = False  # stored without an output: its interrupted output is stored at the next seed


@dataclass(slots=True)
class Item:
    """What the relay knows about one conversation item."""

    role: str
    position: int
    response_id: str = ""
    parts: list[str] = field(default_factory=list)  # transcript deltas so far
    final: str | None = None  # transcript or text once complete
    audio_bytes: int = 0  # assistant audio forwarded to the browser
    audio_done: bool = False
    interrupted: bool = False  # truncated at what the user heard: its stored length is final
    status: str = ""  # "", "failed", "incomplete", "transcription_failed"
    stored: bool = False  # came from the database (an earlier session): never announced again
    announced: bool = False  # the browser has been told about it
    call: ToolCall | None = None  # role "tool": the function call this item is

    @property
    def text(self) -> str:
        """The best text so far: the final one, or the deltas received."""
        return self.final if self.final is not None else "".join(self.parts)


@dataclass(slots=True)
class SessionFacts:
    """What the relay knows about one upstream session."""

    session_id: str = ""
    model: str = ""
    expires_at: float | None = None  # epoch seconds, from session.created
    configured: bool = False  # session.updated confirmed our settings
    assistant_spoke: bool = False  # the voice is then fixed for this session
    response_id: str | None = None  # the response in progress
    response_item: str = ""  # its assistant item
    cancel_sent: bool = False
    pending_create: bool = False  # a response.create waits for the cancelled response's response.done
    # The user's turn ended (server VAD answers it) or a response was asked for, and response.created has not
    # come yet: replacing the session now would lose the reply the service is about to start.
    reply_expected: bool = False
    user_speaking: bool = False
    # A commit the relay sent itself, for speech server VAD had not ended (`commit_unfinished_speech`,
    # `end_replayed_turn`): how much audio it holds, and the user item it became once the service says so.
    relay_commit: bool = False
    relay_commit_ms: int = 0
    relay_item: str = ""
    speech_start_ms: dict[str, int] = field(default_factory=dict)
    awaiting_transcripts: set[str] = field(default_factory=set)
    seeded_ids: set[str] = field(default_factory=set)
    spoken_ids: set[str] = field(default_factory=set)  # assistant items with audio in this session: truncatable


class RelayCore:
    """One conversation's bookkeeping and rules, independent of sockets and storage."""

    def __init__(
        self,
        *,
        dialect: str,
        config: SessionConfig,
        staff: bool = False,
        seed_token_budget: int = 6000,
        tools: Sequence[dict[str, Any]] = (),
        tool_texts: Mapping[str, str] | None = None,
    ) -> None:
        self.dialect = dialect
        self.config = config
        # The function declarations sent with every session.update, and what the page shows while each runs.
        self.tools = tuple(tools)
        self.tool_names = frozenset(str(tool.get("name", "")) for tool in self.tools)
        self.tool_texts = dict(tool_texts or {})
        self.calls: dict[str, str] = {}  # call_id -> item_id
        self.answered_batches: set[str] = set()  # responses whose calls' outputs were followed by response.create
        self.staff = staff
        self.seed_token_budget = seed_token_budget
        self.items: dict[str, Item] = {}
        self.next_position = 0
        self.session = SessionFacts()
        self.ptt_open = False  # push-to-talk held: only then is audio forwarded
        self.ptt_bytes = 0
        self.transcription_failures = 0
        self.voice_fixed = False  # the assistant spoke in this conversation: keep its voice
        # The user turn a session ended before answering (see `_owed_reply`): the next session is asked for it.
        self.reply_owed: str | None = None

    @classmethod
    def resume(
        cls,
        turns: Iterable[StoredTurn],
        *,
        dialect: str,
        config: SessionConfig,
        staff: bool = False,
        seed_token_budget: int = 6000,
        tools: Sequence[dict[str, Any]] = (),
        tool_texts: Mapping[str, str] | None = None,
    ) -> RelayCore:
        """Rebuild the core of a stored conversation; new items take the places after its turns."""
        core = cls(dialect=dialect, config=config, staff=staff, seed_token_budget=seed_token_budget, tools=tools,
                   tool_texts=tool_texts)
        for turn in sorted(turns, key=lambda t: t.position):
            if turn.role == "tool":
                core._resume_call(turn)
                continue
            core.items[turn.item_id] = Item(
                role=turn.role,
                position=turn.position,
                final=turn.text,
                audio_bytes=turn.audio_ms * BYTES_PER_MS,
                audio_done=True,
                interrupted=turn.interrupted,
                status=turn.status,
                stored=True,
            )
            core.next_position = max(core.next_position, turn.position + 1)
            if turn.role == "assistant" and turn.audio_ms:
                core.voice_fixed = True
        return core

    def _resume_call(self, turn: StoredTurn) -> None:
        """A stored function call; one stored without its output was cut off by the end of its conversation."""
        call = ToolCall(call_id=turn.call_id, name=turn.tool_name, arguments=turn.arguments, complete=True,
                        state="done", output=turn.output, summary=turn.summary, ok=not turn.status, written=True)
        if call.output is None:
            call.state, call.output, call.ok, call.unrecorded = "interrupted", INTERRUPTED_OUTPUT, False, True
            call.summary = "Interrupted: the conversation ended while this ran."
        elif turn.status in ("cancelled", "interrupted"):
            call.state = turn.status
        self.items[turn.item_id] = Item(role="tool", position=turn.position, final="", audio_done=True,
                                        status=turn.status or ("interrupted" if call.unrecorded else ""), stored=True,
                                        call=call)
        if call.call_id:
            self.calls[call.call_id] = turn.item_id
        self.next_position = max(self.next_position, turn.position + 1)

    # --- Sessions --------------------------------------------------------------------------------

    @property
    def push_to_talk(self) -> bool:
        """Whether the user commits turns by hand (no server VAD)."""
        return self.config.turn_detection is None

    def open_session(self) -> tuple[SessionFacts, list[Effect]]:
        """Start a new upstream session's facts and return the configuration to send it first."""
        facts = SessionFacts()
        return facts, [ToUpstream(protocol.session_update(self.config, self.dialect, self.tools))]

    def seed(self, facts: SessionFacts, turn_audio: Mapping[str, bytes] | None = None) -> list[Effect]:
        """Re-inject the conversation so far into a new session, newest turns first within the token budget.

        A user turn the previous session took but never answered is asked for again (`_ask_owed_reply`):
        `turn_audio` holds the audio of the turn the relay last saw committed, by item id.
        """
        # A rollover seeds the next session while the current one still runs: what it owes is known only now.
        owed = self.reply_owed or self._owed_reply()
        self.reply_owed = None
        interrupted: list[Effect] = []
        for item_id, item in self.items.items():
            if item.call is not None and item.call.state == "announced" and not item.stored:
                # Its response stays with the old session (a rollover at the deadline): it never runs.
                self._settle(item_id, item, "interrupted", INTERRUPTED_OUTPUT,
                             "Interrupted: the voice service's session was renewed.", interrupted, send=False, tell=False)
        history = [
            (item_id, item)
            for item_id, item in sorted(self.items.items(), key=lambda pair: pair[1].position)
            if _seedable(item)
        ]
        kept: list[tuple[str, Item]] = []
        budget = self.seed_token_budget
        for item_id, item in reversed(history):
            cost = math.ceil(_seed_chars(item) / CHARS_PER_TOKEN) + 4
            if cost > budget:
                break
            budget -= cost
            kept.append((item_id, item))
        kept.reverse()
        left_out = history[: len(history) - len(kept)]
        effects: list[Effect] = interrupted + self._record_unrecorded_calls()
        if left_out:
            effects.append(ToUpstream(_system_note(_outline(left_out, self.seed_token_budget // 4 * CHARS_PER_TOKEN))))
            effects.append(
                ToBrowser(
                    {
                        "type": "note",
                        "code": "history_trimmed",
                        "message": f"The assistant remembers the last {len(kept)} turns word for word and "
                        f"the {len(left_out)} before them only in outline.",
                    }
                )
            )
        for item_id, item in kept:
            seed_id = item_id if _SEED_ID.match(item_id) else None
            if seed_id:
                facts.seeded_ids.add(seed_id)
            if item.call is not None:
                self._seed_call(item.call, seed_id, effects)
                continue
            if item.role == "user":
                event = protocol.user_text_item(item.text)
            else:
                event = protocol.assistant_text_item(item.text, self.dialect)
            if seed_id:
                event["item"]["id"] = seed_id
            effects.append(ToUpstream(event))
        if owed is not None and owed in self.items:
            self._ask_owed_reply(owed, facts, (turn_audio or {}).get(owed, b""), effects)
        return effects

    @staticmethod
    def _seed_call(call: ToolCall, seed_id: str | None, out: list[Effect]) -> None:
        """A call as history: the call, then its output; a call still running gets its output when it is done."""
        out.append(ToUpstream(protocol.function_call_item(call.call_id, call.name, call.arguments, seed_id)))
        if call.output is not None:
            out.append(ToUpstream(protocol.function_call_output_item(call.call_id, call.output)))

    def _record_unrecorded_calls(self) -> list[Effect]:
        """Store, once, the interrupted output of calls that were stored without one (their conversation was cut off)."""
        out: list[Effect] = []
        for item_id, item in self.items.items():
            call = item.call
            if call is not None and call.unrecorded:
                call.unrecorded = False
                out.append(TurnToolOutput(item_id, call.output or INTERRUPTED_OUTPUT, call.summary, "interrupted"))
        return out

    def _owed_reply(self) -> str | None:
        """The user turn the current session was about to answer and had not, if any.

        The service had the turn (server VAD ended it, or a response was asked for) but no reply came out
        of it yet: no response.created, or a response with neither audio nor text. Only when the newest
        turn with anything in it is the user's: an answered turn, or speech never committed, owes nothing.
        """
        s = self.session
        produced = bool(s.response_item) and self._has_content(self.items.get(s.response_item))
        if not (s.reply_expected or s.pending_create or (s.response_id is not None and not produced)):
            return None
        return self._unanswered_turn()

    def _unanswered_turn(self) -> str | None:
        """The newest turn with anything in it, when it is the user's (no reply has said anything since)."""
        for item_id, item in sorted(self.items.items(), key=lambda pair: pair[1].position, reverse=True):
            if item.role == "assistant" and not self._has_content(item):
                continue  # a reply that never said anything: the turn before it is still unanswered
            # A function call's output is the model's to answer, as a user turn is.
            return item_id if item.role in ("user", "tool") else None
        return None

    def answer_unanswered_turn(self) -> None:
        """Have the next session answer the newest turn if it is the user's and unanswered.

        For a browser that comes back by itself to a conversation that was just held elsewhere (another
        worker, which stopped or let go while the user had just spoken): the reply never came. A
        conversation continued from the history page is not answered unasked.
        """
        self.reply_owed = self._unanswered_turn()

    @staticmethod
    def _has_content(item: Item | None) -> bool:
        return item is not None and bool(item.audio_bytes or item.text.strip())

    def _ask_owed_reply(self, item_id: str, facts: SessionFacts, audio: bytes, out: list[Effect]) -> None:
        """Ask a new session for the reply its predecessor owed the user turn `item_id`.

        A turn with its transcript was seeded as text above. One without (the session ended before it
        wrote it down) is sent as the audio the user spoke, under its own id, so the model hears what was
        said; the new session does not transcribe an item it is given, so the turn is stored as not
        written down (as when transcription fails) and the reply still comes. Without that audio (or
        with audio too short to be speech) nothing sensible can be asked: the user is told to say it again.
        """
        item = self.items[item_id]
        if item.call is not None:
            # Answered once every call of its response has its output: a call still running asks when it is done.
            if self._batch_has_outputs(item.response_id):
                self.answered_batches.add(item.response_id)
                facts.reply_expected = True
                out.append(ToUpstream(protocol.RESPONSE_CREATE))
            return
        if not item.text.strip():
            if len(audio) < MIN_COMMIT_BYTES:
                out.append(ToBrowser(protocol.error_message(
                    "turn_lost", "The connection to the voice service dropped before it heard your last turn. "
                    "Please say it again.")))
                return
            event = protocol.user_audio_item(audio)
            if _SEED_ID.match(item_id):
                event["item"]["id"] = item_id
                facts.seeded_ids.add(item_id)
            out.append(ToUpstream(event))
            if self.config.transcription_model:
                if item.final is None:  # (`finish` marks it when the session that took it ended)
                    item.final, item.status = "", "transcription_failed"
                    out.append(TurnOutcome(item_id, "transcription_failed", "the voice service's session ended "
                                           "before it wrote this turn down"))
                out.append(ToBrowser({"type": "transcript_done", "role": "user", "item_id": item_id, "text": "",
                                      "failed": True}))
        facts.reply_expected = True
        out.append(ToUpstream(protocol.RESPONSE_CREATE))

    def switch_to(self, facts: SessionFacts) -> None:
        """Make `facts` the current session's: the previous session's response and gate are gone."""
        self.session = facts
        self.ptt_open, self.ptt_bytes = False, 0

    def idle(self) -> bool:
        """Whether now is a good moment to replace the upstream session (between turns)."""
        s = self.session
        return not (
            s.user_speaking
            or s.response_id is not None
            or s.pending_create
            or s.reply_expected
            or self.ptt_open
            or s.awaiting_transcripts
            or self.tools_running()  # last: it looks through the conversation's items, the rest are flags
        )

    def history(self) -> dict[str, Any]:
        """The `history` message: every item in conversation order, as the server has it."""
        ordered = sorted(self.items.items(), key=lambda pair: pair[1].position)
        items = []
        for item_id, item in ordered:
            entry = {"item_id": item_id, "role": item.role, "text": item.text, "interrupted": item.interrupted,
                     "status": item.status}
            if item.call is not None:
                # A call shows what it found in plain words; its output is the model's, not the page's.
                entry.update(text=item.call.summary, call_id=item.call.call_id, name=item.call.name)
            items.append(entry)
        return {"type": "history", "items": items}

    # --- Upstream events -----------------------------------------------------------------------

    def on_audio(self, item_id: str, nbytes: int, facts: SessionFacts) -> None:
        """Count forwarded assistant audio; the hot path, so no effects and nothing allocated per frame."""
        item = self.items.get(item_id)
        if item is None:
            item = self._add(item_id, "assistant", [], response_id=facts.response_id or "")
        item.audio_bytes += nbytes
        facts.spoken_ids.add(item_id)
        if facts.response_id is not None and not facts.response_item:
            facts.response_item = item_id
        facts.assistant_spoke = True
        self.voice_fixed = True

    def on_upstream(self, event: dict[str, Any], facts: SessionFacts) -> list[Effect]:
        """Apply one (non-audio) upstream event of the session `facts` describes."""
        message, _ = protocol.normalize(event)
        if message is None:
            return []
        handler = getattr(self, f"_up_{message['type']}", None)
        if handler is None:
            return []
        effects: list[Effect] = []
        handler(message, facts, effects)
        return effects

    def _up_session_created(self, m: dict[str, Any], s: SessionFacts, out: list[Effect]) -> None:
        s.session_id, s.model = m["session_id"], m["model"] or s.model
        s.expires_at = m["expires_at"]  # epoch seconds, or None; normalize checked it
        if s.session_id:
            out.append(SessionOpened(s.session_id))

    def _up_session_updated(self, m: dict[str, Any], s: SessionFacts, out: list[Effect]) -> None:
        if not s.configured:
            s.configured = True
            out.append(SessionReady())

    def _up_user_item(self, m: dict[str, Any], s: SessionFacts, out: list[Effect]) -> None:
        item_id = m["item_id"]
        if not item_id or item_id in s.seeded_ids:
            return  # history we seeded: stored and shown already
        item = self.items.get(item_id)
        if item is None:
            item = self._add(item_id, "user", out, text=m["text"])
        if item.announced or item.stored:
            return
        item.announced = True
        out.append(ToBrowser({"type": "user_item", "item_id": item_id}))
        if s.relay_commit and not s.relay_item and not m["text"]:
            s.relay_item = item_id  # the speech the relay committed: as long as the service heard it
            s.user_speaking = False  # (no speech_stopped comes for it)
            s.speech_start_ms.pop(item_id, None)
            out.append(TurnAudio(item_id, s.relay_commit_ms))
        if m["text"]:  # a typed message: its text is its transcript
            item.final = m["text"]
            out.append(ToBrowser({"type": "transcript_done", "role": "user", "item_id": item_id, "text": item.final}))
        elif self.config.transcription_model and item.final is None:
            s.awaiting_transcripts.add(item_id)

    def _up_assistant_item(self, m: dict[str, Any], s: SessionFacts, out: list[Effect]) -> None:
        item_id = m["item_id"]
        if not item_id or item_id in s.seeded_ids:
            return
        item = self.items.get(item_id)
        if item is None:
            item = self._add(item_id, "assistant", out, response_id=m.get("response_id", ""))
        if item.announced or item.stored:
            return
        item.announced = True
        item.response_id = item.response_id or m.get("response_id", "") or s.response_id or ""
        if s.response_id and item.response_id == s.response_id:
            s.response_item = item_id
        out.append(ToBrowser({"type": "assistant_item", "item_id": item_id, "response_id": item.response_id}))

    def _up_transcript(self, m: dict[str, Any], s: SessionFacts, out: list[Effect]) -> None:
        item = self._known(m["item_id"], m["role"], s, out)
        item.parts.append(m["delta"])
        out.append(ToBrowser(m))

    def _up_transcript_done(self, m: dict[str, Any], s: SessionFacts, out: list[Effect]) -> None:
        item = self._known(m["item_id"], m["role"], s, out)
        item.final = m["text"]
        s.awaiting_transcripts.discard(m["item_id"])
        out.append(TurnText(m["item_id"], m["text"]))
        out.append(ToBrowser(m))

    def _up_transcription_failed(self, m: dict[str, Any], s: SessionFacts, out: list[Effect]) -> None:
        item_id = m["item_id"]
        item = self._known(item_id, "user", s, out)
        item.final, item.status = "", "transcription_failed"
        s.awaiting_transcripts.discard(item_id)
        self.transcription_failures += 1
        out.append(TurnOutcome(item_id, "transcription_failed", m.get("message", "")[:200]))
        out.append(ToBrowser({"type": "transcript_done", "role": "user", "item_id": item_id, "text": "", "failed": True}))
        if self.transcription_failures == 1:  # once: after that each bubble gets a quiet marker
            out.append(ToBrowser(protocol.error_message(
                "transcription_failed",
                "What you say could not be written down, but the assistant still hears you."
                + (" Check AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT: it must name a deployment of a "
                   "transcription model." if self.staff else ""),
            )))

    def _up_audio_done(self, m: dict[str, Any], s: SessionFacts, out: list[Effect]) -> None:
        item = self._known(m["item_id"], "assistant", s, out)
        item.audio_done = True
        if not item.interrupted:
            out.append(TurnAudio(m["item_id"], item.audio_bytes // BYTES_PER_MS))
        out.append(ToBrowser(m))

    def _up_speech_started(self, m: dict[str, Any], s: SessionFacts, out: list[Effect]) -> None:
        s.user_speaking = True
        if m.get("item_id"):
            s.speech_start_ms[m["item_id"]] = m["audio_start_ms"]
        out.append(ToBrowser({"type": "speech_started", "audio_start_ms": m["audio_start_ms"]}))
        self._cancel_tools(out)  # barge-in (after the page heard to stop playing): the user's new turn comes first

    def _up_speech_stopped(self, m: dict[str, Any], s: SessionFacts, out: list[Effect]) -> None:
        s.user_speaking = False
        td = self.config.turn_detection
        s.reply_expected = s.reply_expected or (td is not None and td.create_response)
        item_id, end_ms = m["item_id"], m["audio_end_ms"]
        if item_id in s.speech_start_ms:
            duration = max(0, end_ms - s.speech_start_ms.pop(item_id))
            self._known(item_id, "user", s, out)
            out.append(TurnAudio(item_id, duration))
        out.append(ToBrowser({"type": "speech_stopped", "audio_end_ms": end_ms}))

    def _up_response_created(self, m: dict[str, Any], s: SessionFacts, out: list[Effect]) -> None:
        s.response_id, s.response_item, s.cancel_sent = m["response_id"], "", False
        s.reply_expected = False  # response_id stands for it from here

    def _up_response_done(self, m: dict[str, Any], s: SessionFacts, out: list[Effect]) -> None:
        response_id, status, reason = m["response_id"], m["status"], m.get("reason", "")
        item_id = s.response_item if s.response_id == response_id else ""
        if not item_id:
            item_id = next((i for i, it in self.items.items()
                            if it.response_id == response_id and it.role == "assistant"), "")
        if s.response_id == response_id or s.response_id is None:
            s.response_id, s.response_item = None, ""
        usage: Usage = m["usage"]
        out.append(UsageRecorded(response_id, s.model, status, usage))
        message = _outcome_message(status, reason)
        if item_id and status in ("failed", "incomplete"):
            self.items[item_id].status = status
            out.append(TurnOutcome(item_id, status, reason))
        out.append(ToBrowser({
            "type": "response_done",
            "response_id": response_id,
            "item_id": item_id,
            "status": status,
            "reason": reason,
            "message": message,
            "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
        }))
        if s.pending_create:
            s.pending_create = False
            s.reply_expected = True
            out.append(ToUpstream(protocol.RESPONSE_CREATE))
        if response_id:
            for call in m.get("calls", ()):
                self._up_function_call(call, s, out)
            self._run_calls(response_id, completed=status == "completed", out=out)

    # --- Function calls ------------------------------------------------------------------------

    def _up_function_call(self, m: dict[str, Any], s: SessionFacts, out: list[Effect]) -> None:
        item_id = m["item_id"]
        if not item_id or item_id in s.seeded_ids:
            return  # history we seeded: stored already
        item = self.items.get(item_id)
        if item is None:
            if m["call_id"] in self.calls:
                return  # the same call under another item id: hostile, or a confused upstream
            item = self._add(item_id, "tool", out, response_id=m["response_id"] or s.response_id or "")
        if item.stored or item.role != "tool":
            return
        call = item.call
        if call is None:
            call = item.call = ToolCall(call_id=m["call_id"])
            if call.call_id:
                self.calls[call.call_id] = item_id
        call.name = call.name or m["name"]
        if m["complete"] and not call.complete:
            call.arguments, call.complete = m["arguments"], True

    def _up_function_call_arguments(self, m: dict[str, Any], s: SessionFacts, out: list[Effect]) -> None:
        call = self._call_of(m["item_id"])
        if call is not None and not call.complete and len(call.arguments) < protocol.MAX_ARGUMENTS_CHARS:
            call.arguments = (call.arguments + m["delta"])[: protocol.MAX_ARGUMENTS_CHARS]

    def _up_function_call_arguments_done(self, m: dict[str, Any], s: SessionFacts, out: list[Effect]) -> None:
        call = self._call_of(m["item_id"])
        if call is None:
            return
        call.name = call.name or m["name"]
        if not call.complete:
            call.arguments, call.complete = m["arguments"], True

    def _call_of(self, item_id: str) -> ToolCall | None:
        item = self.items.get(item_id)
        if item is None or item.stored:
            return None
        return item.call

    def _batch(self, response_id: str) -> list[tuple[str, Item]]:
        """The calls one response made, in their order."""
        return sorted(
            ((item_id, item) for item_id, item in self.items.items()
             if item.call is not None and item.response_id == response_id),
            key=lambda pair: pair[1].position,
        )

    def _batch_has_outputs(self, response_id: str) -> bool:
        return all(item.call is not None and item.call.output is not None for _, item in self._batch(response_id))

    def _run_calls(self, response_id: str, *, completed: bool, out: list[Effect]) -> None:
        """The response that made these calls is done: run them, or answer the ones that cannot run at once."""
        started = 0
        for item_id, item in self._batch(response_id):
            call = item.call
            assert call is not None
            if call.state != "announced":
                continue
            self._write_call(item_id, call, out)
            if not call.call_id:
                # No output can name it: the model is not waiting for one.
                self._settle(item_id, item, "cancelled", CANCELLED_OUTPUT, "Cancelled.", out, send=False, tell=False)
            elif not completed or not call.complete or call.cancel_wanted:
                self._settle(item_id, item, "cancelled", CANCELLED_OUTPUT, "Cancelled.", out, tell=False)
            elif call.name not in self.tool_names:
                self._settle(item_id, item, "done", _unknown_tool_output(call.name), "No such tool.", out, ok=False)
            elif started >= protocol.MAX_CALLS_PER_RESPONSE:
                self._settle(item_id, item, "done", TOO_MANY_OUTPUT, "Too many calls at once.", out, ok=False)
            else:
                started += 1
                call.state = "running"
                out.append(RunTool(call.call_id, item_id, call.name, call.arguments))
                out.append(ToBrowser({"type": "tool_started", "item_id": item_id, "call_id": call.call_id,
                                      "name": call.name, "text": self.tool_texts.get(call.name) or DEFAULT_WORKING_TEXT}))
        self._answer_batch(response_id, out)

    def _answer_batch(self, response_id: str, out: list[Effect]) -> None:
        """Ask for the reply once every call of the response has its output, and none was cancelled."""
        batch = self._batch(response_id)
        if not batch or response_id in self.answered_batches:
            return
        states = {item.call.state for _, item in batch if item.call is not None}
        if states == {"done"}:
            self.answered_batches.add(response_id)
            self._create_response(out)
        elif "cancelled" in states and not states & {"announced", "running"}:
            self.answered_batches.add(response_id)  # the user moved on: no reply to the calls

    def _write_call(self, item_id: str, call: ToolCall, out: list[Effect]) -> None:
        if not call.written:
            call.written = True
            out.append(TurnToolCall(item_id, call.call_id, call.name, call.arguments))

    def _settle(self, item_id: str, item: Item, state: str, output: str, summary: str, out: list[Effect], *,
                ok: bool = False, send: bool = True, tell: bool = True) -> None:
        """Give a call its output: to the model (`send`), to the journal, and to the page (`tell`)."""
        call = item.call
        assert call is not None
        call.state, call.output, call.summary, call.ok = state, output, summary, ok
        status = "" if ok else ("failed" if state == "done" else state)
        item.status = status
        self._write_call(item_id, call, out)
        if send and call.call_id:
            out.append(ToUpstream(protocol.function_call_output_item(call.call_id, output)))
        out.append(TurnToolOutput(item_id, output, summary, status))
        if tell:
            out.append(ToBrowser({"type": "tool_finished", "item_id": item_id, "call_id": call.call_id,
                                  "name": call.name, "ok": ok, "status": "completed" if state == "done" else state,
                                  "summary": summary}))

    def tools_running(self) -> bool:
        """Whether a function call is running (or waits for its response to end before it runs)."""
        return any(item.call is not None and item.call.state in ("running", "announced") and not item.stored
                   for item in self.items.values())

    def tool_finished(self, call_id: str, output: str, *, ok: bool, summary: str) -> list[Effect]:
        """A call's result: its output goes to the model, and the reply is asked for once its response's calls are done.

        A result for a call that was cancelled meanwhile (or never ran) changes nothing.
        """
        item_id = self.calls.get(call_id)
        item = self.items.get(item_id) if item_id else None
        if item is None or item.call is None or item.call.state != "running":
            return []
        out: list[Effect] = []
        self._settle(item_id, item, "done", output, summary, out, ok=ok)  # type: ignore[arg-type]
        self._answer_batch(item.response_id, out)
        return out

    def _cancel_tools(self, out: list[Effect]) -> None:
        """The user moved on (spoke, typed, pressed, stopped, left): running calls stop, none still to run will."""
        for item_id, item in sorted(self.items.items(), key=lambda pair: pair[1].position):
            call = item.call
            if call is None or item.stored:
                continue
            if call.state == "announced":
                call.cancel_wanted = True  # cancelled when its response is done (its item may not be whole yet)
            elif call.state == "running":
                out.append(CancelTool(call.call_id))
                self._settle(item_id, item, "cancelled", CANCELLED_OUTPUT, "Cancelled.", out)
                self._answer_batch(item.response_id, out)

    def cancel_tools(self) -> list[Effect]:
        """The user stopped the conversation: running calls are cancelled as by a barge-in."""
        out: list[Effect] = []
        self._cancel_tools(out)
        return out

    def end_tools(self) -> list[Effect]:
        """The conversation ends: stop running calls and store them as interrupted (no session will hear of it)."""
        out: list[Effect] = []
        for item_id, item in self.items.items():
            call = item.call
            if call is not None and not item.stored and call.state == "running":
                out.append(CancelTool(call.call_id))
                self._settle(item_id, item, "interrupted", INTERRUPTED_OUTPUT,
                             "Interrupted: the conversation ended while this ran.", out, send=False)
        return out

    def _up_truncated(self, m: dict[str, Any], s: SessionFacts, out: list[Effect]) -> None:
        item = self._known(m["item_id"], "assistant", s, out)
        item.interrupted = True
        heard = m["audio_end_ms"]
        # What was sent before the cut: the transcript covers it, so heard/sent estimates the words heard.
        sent_ms = item.audio_bytes // BYTES_PER_MS
        item.audio_bytes = min(item.audio_bytes, heard * BYTES_PER_MS)
        out.append(TurnAudio(m["item_id"], heard, interrupted=True, generated_ms=max(sent_ms, heard)))
        out.append(ToBrowser({"type": "truncated", "item_id": m["item_id"], "audio_end_ms": heard}))

    def _up_upstream_error(self, m: dict[str, Any], s: SessionFacts, out: list[Effect]) -> None:
        code = m["code"]
        if code == "input_audio_buffer_commit_empty" and s.relay_commit and not s.relay_item:
            s.relay_commit = False  # too little was heard to be a turn: nothing to wait for
        if code in protocol.QUIET_ERROR_CODES:
            return
        if code == "session_expired":
            out.append(SessionEnding("expired"))
            return
        if not s.configured:
            # The service rejects a whole session.update and keeps its defaults: never run on those.
            param = m.get("param") or ""
            out.append(Fatal(
                "session_rejected",
                (f"The realtime service rejected the session settings ({param or code}: {m['message']}). "
                 "Check the conversation settings and AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT / the deployment's model.")
                if self.staff
                else "The voice service did not accept this conversation's settings. Try other settings, or ask "
                "an administrator to check the setup.",
            ))
            return
        if code == "conversation_already_has_active_response":
            s.pending_create = True  # the running response ends first; ours follows it
            return
        if m.get("error_type") == "server_error" or code == "server_error":
            out.append(ToBrowser(protocol.error_message(
                "server_error", "The voice service had a problem with that. Please say it again."
            )))
            return
        out.append(ToBrowser(protocol.error_message(code, m["message"] if self.staff else "The voice service reported a problem.")))

    # --- Browser commands ----------------------------------------------------------------------

    def on_browser_audio(self, nbytes: int) -> bool:
        """Whether a microphone frame may go upstream (the push-to-talk gate); counts what is held."""
        if self.config.turn_detection is not None:
            return True
        if not self.ptt_open:
            return False  # released: nothing the microphone hears reaches the model
        self.ptt_bytes += nbytes
        return True

    def on_browser(self, command: BrowserCommand) -> list[Effect]:
        """Translate a browser command into upstream events (and plain errors for commands that cannot apply)."""
        s = self.session
        out: list[Effect] = []
        if command.type == "truncate":
            item = self.items.get(command.item_id)
            # Only this session's audio can be cut: an earlier session's reply is text to the current one.
            if item is None or item.role != "assistant" or command.item_id not in s.spoken_ids:
                return [ToBrowser(protocol.error_message("unknown_item", "There is no assistant reply with that id to interrupt."))]
            # Clamp to what was forwarded: the service rejects a cut past the end of the audio.
            heard_ms = min(command.audio_end_ms, item.audio_bytes // BYTES_PER_MS)
            out.append(ToUpstream(protocol.truncate_item(command.item_id, heard_ms)))
        elif command.type == "text":
            self._cancel_running(out)
            self._cancel_tools(out)
            out.append(ToUpstream(protocol.user_text_item(command.text)))
            self._create_response(out)
        elif command.type == "press":
            self._cancel_running(out)
            self._cancel_tools(out)
            # Audio still held from a press whose release never came (the socket dropped mid-press, and the
            # browser came back) is what the user said: committed as a turn of its own rather than thrown away.
            held = self.push_to_talk and self.ptt_bytes >= MIN_COMMIT_BYTES
            out.append(ToUpstream(protocol.INPUT_COMMIT if held else protocol.INPUT_CLEAR))
            self.ptt_open, self.ptt_bytes = True, 0
        elif command.type == "commit":
            held_bytes, self.ptt_open, self.ptt_bytes = self.ptt_bytes, False, 0
            if self.push_to_talk and held_bytes < MIN_COMMIT_BYTES:
                out.append(ToUpstream(protocol.INPUT_CLEAR))
                out.append(ToBrowser(protocol.error_message("too_short", "Hold the button while you speak, then let go.")))
                return out
            out.append(ToUpstream(protocol.INPUT_COMMIT))
            self._create_response(out)
        elif command.type == "cancel":
            self._cancel_running(out)
            self._cancel_tools(out)
        return out

    def pending_create_overdue(self) -> list[Effect]:
        """The cancelled response never reported back in time: ask for the new one anyway."""
        if not self.session.pending_create:
            return []
        self.session.pending_create = False
        self.session.response_id = None
        self.session.reply_expected = True
        return [ToUpstream(protocol.RESPONSE_CREATE)]

    def apply_config(self, config: SessionConfig) -> list[Effect]:
        """Use new settings in the live session, keeping the voice once the assistant has spoken."""
        voice_locked = self.voice_fixed and config.voice != self.config.voice
        if voice_locked:
            config = dataclasses.replace(config, voice=self.config.voice)
        self.config = config
        self.ptt_open = False
        return [
            ToUpstream(protocol.session_update(config, self.dialect, self.tools)),
            ToBrowser({"type": "settings_applied", "settings": options.browser_settings(config), "voice_locked": voice_locked}),
        ]

    def _cancel_running(self, out: list[Effect]) -> None:
        s = self.session
        if s.response_id is not None and not s.cancel_sent:
            s.cancel_sent = True
            out.append(ToUpstream(protocol.RESPONSE_CANCEL))

    def _create_response(self, out: list[Effect]) -> None:
        # One response at a time: after a cancel, the new one waits for the cancelled response.done.
        if self.session.response_id is not None:
            self.session.pending_create = True
        else:
            self.session.reply_expected = True
            out.append(ToUpstream(protocol.RESPONSE_CREATE))

    # --- Endings -------------------------------------------------------------------------------

    def browser_left(self) -> list[Effect]:
        """The browser went away mid-conversation: stop a reply nobody hears, and keep what was heard."""
        out: list[Effect] = []
        s = self.session
        self.ptt_open = False
        self._cancel_tools(out)
        if s.response_id is not None:
            item_id = s.response_item
            item = self.items.get(item_id) if item_id else None
            self._cancel_running(out)
            s.pending_create = False
            if item is not None and item.audio_bytes and not item.audio_done:
                out.append(ToUpstream(protocol.truncate_item(item_id, item.audio_bytes // BYTES_PER_MS)))
        return out

    def commit_unfinished_speech(self, heard_ms: int) -> list[Effect]:
        """The conversation ends while the user speaks: commit what the service heard, without asking a reply.

        Server VAD ends a turn after 500 ms of silence, which a socket that closed never sends; a press
        whose release never came is the same. Without this commit the words go with the session. Nothing
        when nobody is speaking. `final_words_settled` says when the turn has its transcript.
        """
        s = self.session
        if self.push_to_talk:
            if self.ptt_bytes < MIN_COMMIT_BYTES:
                return []
            heard_ms, self.ptt_open, self.ptt_bytes = self.ptt_bytes // BYTES_PER_MS, False, 0
        elif not s.user_speaking:
            return []
        s.user_speaking = False
        s.speech_start_ms.clear()
        s.relay_commit, s.relay_commit_ms, s.relay_item = True, max(0, heard_ms), ""
        return [ToUpstream(protocol.INPUT_COMMIT)]

    def final_words_settled(self) -> bool:
        """Whether the session wrote down (or failed to) every user turn it took, the one the relay committed too."""
        s = self.session
        if s.relay_commit and not s.relay_item:
            return False
        return not s.awaiting_transcripts

    def end_replayed_turn(self, replayed_ms: int) -> list[Effect]:
        """Speech a dropped session heard but never committed was sent to this one again: end that turn, answer it.

        The page sends no audio while it reconnects, so the replay is followed at once by whatever the user
        says next: left to server VAD, the two would run into one turn, and the first would never be answered
        on its own.
        """
        td = self.config.turn_detection
        if td is None:
            return []
        s = self.session
        s.relay_commit, s.relay_commit_ms, s.relay_item = True, max(0, replayed_ms), ""
        out: list[Effect] = [ToUpstream(protocol.INPUT_COMMIT)]
        if td.create_response:
            self._create_response(out)
        return out

    def finish(self) -> list[Effect]:
        """Store what items still hold when a session or the conversation ends, and estimate unreported usage."""
        out: list[Effect] = []
        self.reply_owed = self._owed_reply()  # before the session's facts are cleared: the next one is asked
        for item_id, item in self.items.items():
            if item.stored:
                continue
            if item.call is not None:
                if item.call.state == "announced":  # its response went with the session: it never runs
                    self._settle(item_id, item, "interrupted", INTERRUPTED_OUTPUT,
                                 "Interrupted: the connection to the voice service dropped.", out, send=False, tell=False)
                continue
            if item.final is None and item.parts:
                item.final = "".join(item.parts)
                out.append(TurnText(item_id, item.final))
            # A truncated item already has the length that was heard; don't overwrite it with what was sent.
            if item.role == "assistant" and not item.audio_done and not item.interrupted and item.audio_bytes:
                item.interrupted = True
                sent_ms = item.audio_bytes // BYTES_PER_MS
                out.append(TurnAudio(item_id, sent_ms, interrupted=True, generated_ms=sent_ms))
        s = self.session
        if s.response_id is not None:
            item = self.items.get(s.response_item)
            audio_ms = item.audio_bytes // BYTES_PER_MS if item else 0
            text = item.text if item else ""
            # Assistant audio bills about one token per 50 ms; the input side is unknown and left at 0.
            audio_tokens, text_tokens = math.ceil(audio_ms / 50), math.ceil(len(text) / CHARS_PER_TOKEN)
            usage = Usage(
                output_audio_tokens=audio_tokens,
                output_text_tokens=text_tokens,
                output_tokens=audio_tokens + text_tokens,
                total_tokens=audio_tokens + text_tokens,
            )
            out.append(UsageRecorded(s.response_id, s.model, "cancelled", usage, estimated=True))
            s.response_id, s.response_item, s.pending_create = None, "", False
        for item_id in s.awaiting_transcripts:
            item = self.items.get(item_id)
            if item is not None and item.final is None and not item.parts:
                # No later session transcribes it: stored as not written down (the page shows its marker).
                item.final, item.status = "", "transcription_failed"
                out.append(TurnOutcome(item_id, "transcription_failed",
                                       "the voice service's session ended before it wrote this turn down"))
        s.user_speaking = False
        s.awaiting_transcripts.clear()
        return out

    # --- Helpers -------------------------------------------------------------------------------

    def _add(self, item_id: str, role: str, out: list[Effect], *, response_id: str = "", text: str = "") -> Item:
        """Give a new item the next place in the conversation and queue its row."""
        item = self.items[item_id] = Item(role=role, position=self.next_position, response_id=response_id)
        self.next_position += 1
        out.append(TurnAdded(item_id, role, item.position, response_id, text))
        return item

    def _known(self, item_id: str, role: str, s: SessionFacts, out: list[Effect]) -> Item:
        """The item with this id, added in place if upstream never announced it."""
        item = self.items.get(item_id)
        if item is None:
            item = self._add(item_id, role, out, response_id=s.response_id or "" if role == "assistant" else "")
        return item


def _outcome_message(status: str, reason: str) -> str:
    """Plain words for a reply that did not come out whole."""
    if status == "incomplete":
        if reason == "max_output_tokens":
            return "The answer was cut short: it reached the longest answer allowed in the settings."
        if reason == "content_filter":
            return "The answer was stopped by the service's content filter."
        return "The answer was cut short."
    if status == "failed":
        return "The voice service failed to answer. Please say it again."
    return ""


def _seedable(item: Item) -> bool:
    """Whether an item goes into a new session's history: something said, or a call it can name."""
    if item.call is not None:
        return bool(item.call.call_id and item.call.name)
    return bool(item.text.strip())


def _seed_chars(item: Item) -> int:
    """How much text an item costs the seed: a call's arguments and output."""
    if item.call is not None:
        return len(item.call.name) + len(item.call.arguments) + len(item.call.output or "")
    return len(item.text)


def _outline(items: Sequence[tuple[str, Item]], max_chars: int) -> str:
    """A short outline of turns that no longer fit word for word: the start of each, the newest that fit."""
    lines: list[str] = []
    used = 0
    for _, item in reversed(items):
        text = " ".join(item.text.split())
        if item.call is not None:
            text = f"{item.call.name} {item.call.arguments} gave: {item.call.summary or item.call.output or ''}"
            text = " ".join(text.split())
        if len(text) > SUMMARY_CHARS_PER_TURN:
            text = text[: SUMMARY_CHARS_PER_TURN - 1].rstrip() + "…"
        line = f"{item.role}: {text}"
        used += len(line) + 1
        if used > max_chars:
            lines.append("(and earlier turns, left out)")
            break
        lines.append(line)
    lines.reverse()
    return "Earlier in this conversation (in outline, oldest first):\n" + "\n".join(lines)


def _system_note(text: str) -> dict[str, Any]:
    """A system message item, the same in both dialects."""
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "system", "content": [{"type": "input_text", "text": text}]},
    }
