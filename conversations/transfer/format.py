"""The versioned export format: build a document, and check an imported one into plain-worded problems."""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from ..realtime.protocol import share_cached

FORMAT = "voiceapp.conversation"
VERSION = 1
ROLES = ("user", "assistant", "tool")
# A tool turn's call id and tool name are sent upstream again when an imported conversation is continued:
# only the shapes the service itself uses (function names are at most 64 such characters).
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CALL_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
TOOL_TEXT_CHARS = 100_000
TOOL_SUMMARY_CHARS = 1000
CONVERSATION_STATUSES = ("active", "ended", "failed")
TOKEN_FIELDS = (
    "input_text_tokens", "input_audio_tokens", "input_cached_tokens", "output_text_tokens",
    "output_audio_tokens", "input_tokens", "output_tokens", "total_tokens",
    "input_cached_text_tokens", "input_cached_audio_tokens",
)
# PositiveIntegerField's upper bound on PostgreSQL; larger numbers would fail at insert, not here.
MAX_INT = 2_147_483_647
# The years an imported time may fall in (in UTC): far from the calendar's ends, where turning a time into
# another zone (UTC for the database, the site's zone for a page) would leave the calendar and fail.
MIN_YEAR, MAX_YEAR = 1970, 9000
# A file with thousands of problems is not worth listing one by one.
MAX_ERRORS = 100


@dataclasses.dataclass(frozen=True)
class ImportedTurn:
    """One turn of an imported conversation, checked."""

    role: str
    position: int
    text: str
    started_at: dt.datetime | None
    interrupted: bool
    audio_ms: int
    status: str
    status_reason: str
    response_id: str
    generated_ms: int = 0
    recording_ms: int | None = None
    tool: ImportedToolCall | None = None  # role "tool" only


@dataclasses.dataclass(frozen=True)
class ImportedToolCall:
    """What a tool turn of an imported conversation asked for and gave, checked."""

    call_id: str
    name: str
    arguments: str
    output: str
    summary: str


@dataclasses.dataclass(frozen=True)
class ImportedUsage:
    """The token usage of one response of an imported conversation, checked."""

    response_id: str
    model: str
    status: str
    tokens: dict[str, int]
    estimated: bool
    created_at: dt.datetime | None
    cost_usd: Decimal | None = None  # None: not in the file, priced on import


@dataclasses.dataclass(frozen=True)
class ImportedConversation:
    """A whole imported conversation, checked and ready to store."""

    original_id: str
    title: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    status: str
    provider: str
    deployment: str
    dialect: str
    error: str
    settings: dict[str, Any]
    turns: list[ImportedTurn]
    usage: list[ImportedUsage]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def build_document(
    *, conversation: Mapping[str, Any], turns: Iterable[Mapping[str, Any]], usage: Iterable[Mapping[str, Any]],
    exported_at: dt.datetime,
) -> dict[str, Any]:
    """The export document of one conversation from plain rows (as `QuerySet.values()` gives them)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": exported_at.isoformat(),
        "conversation": {
            "id": str(conversation["id"]),
            "title": conversation["title"],
            "started_at": _iso(conversation["started_at"]),
            "ended_at": _iso(conversation["ended_at"]),
            "status": conversation["status"],
            "provider": conversation["provider"],
            "deployment": conversation["deployment"],
            "dialect": conversation["dialect"],
            "error": conversation["error"],
        },
        "settings": conversation["settings"] or {},
        "turns": [
            {
                "role": t["role"],
                "position": t["position"],
                "text": t["text"],
                "started_at": _iso(t["created_at"]),
                "interrupted": t["interrupted"],
                "audio_ms": t["audio_ms"],
                "status": t["status"],
                "status_reason": t["status_reason"],
                "response_id": t["response_id"],
                "generated_ms": t["generated_ms"],
                "recording_ms": t["recording_ms"],
                **({"tool": _tool_of(t)} if t["role"] == "tool" else {}),
            }
            for t in turns
        ],
        "usage": [
            {
                "response_id": u["response_id"],
                "model": u["model"],
                "status": u["status"],
                **{name: u[name] for name in TOKEN_FIELDS},
                "estimated": u["estimated"],
                "created_at": _iso(u["created_at"]),
                # Text, so no float touches it; left out when no price fitted (unknown is not free).
                **({"cost_usd": f"{u['cost']:.6f}"} if u.get("priced") else {}),
            }
            for u in usage
        ],
    }


def _tool_of(turn: Mapping[str, Any]) -> dict[str, str]:
    """A tool turn's call as the export writes it."""
    return {"call_id": turn["tool_call_id"], "name": turn["tool_name"], "arguments": turn["tool_arguments"],
            "output": turn["tool_output"], "summary": turn["tool_summary"]}


class _Checker:
    """Collects problems with where they are while reading one document."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.count = 0

    def fail(self, where: str, message: str) -> None:
        # Counted past the cap but not kept: a file of a million broken turns must not fill memory.
        self.count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(f"{where}: {message}" if where else message)

    def obj(self, parent: Mapping[str, Any], key: str, where: str) -> dict[str, Any] | None:
        value = parent.get(key)
        if not isinstance(value, dict):
            self.fail(where, _("must be an object") if key in parent else _("is missing"))
            return None
        return value

    def string(self, parent: Mapping[str, Any], key: str, where: str, *, max_length: int,
               required: bool = True, default: str = "", non_empty: bool = False) -> str:
        if key not in parent:
            if required:
                self.fail(where, _("is missing"))
            return default
        value = parent[key]
        if not isinstance(value, str):
            self.fail(where, _("must be text"))
            return default
        if non_empty and not value:
            self.fail(where, _("must not be empty"))
        if len(value) > max_length:
            self.fail(where, _("must be at most %(count)s characters long") % {"count": max_length})
            return default
        if "\x00" in value:
            # PostgreSQL refuses NUL characters in text.
            self.fail(where, _("must not contain NUL characters"))
            return default
        if _lone_surrogate(value):
            self.fail(where, _half_pair())
            return default
        return value

    def choice(self, parent: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...]) -> str:
        value = parent.get(key)
        if key not in parent:
            self.fail(where, _("is missing"))
        elif value not in choices:
            self.fail(where, _("must be one of %(choices)s") % {"choices": ", ".join(repr(c) for c in choices)})
        else:
            return value
        return choices[0]

    def integer(self, parent: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> int:
        return self._integer(parent, key, where, required=required, default=0) or 0

    def integer_or_null(self, parent: Mapping[str, Any], key: str, where: str) -> int | None:
        """An optional count that may be null (and is null when missing)."""
        if parent.get(key, 0) is None:
            return None
        return self._integer(parent, key, where, required=False, default=None)

    def _integer(self, parent: Mapping[str, Any], key: str, where: str, *, required: bool,
                 default: int | None) -> int | None:
        if key not in parent:
            if required:
                self.fail(where, _("is missing"))
            return default
        value = parent[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
            self.fail(where, _("must be a whole number from 0 to %(max)s") % {"max": MAX_INT})
            return default
        return value

    def boolean(self, parent: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> bool:
        if key not in parent:
            if required:
                self.fail(where, _("is missing"))
            return False
        value = parent[key]
        if not isinstance(value, bool):
            self.fail(where, _("must be true or false"))
            return False
        return value

    def moment(self, parent: Mapping[str, Any], key: str, where: str, *, required: bool = True,
               nullable: bool = False) -> dt.datetime | None:
        if key not in parent:
            if required:
                self.fail(where, _("is missing"))
            return None
        value = parent[key]
        if value is None and nullable:
            return None
        if isinstance(value, str) and len(value) <= 64:
            try:
                parsed = dt.datetime.fromisoformat(value)
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is not None and parsed.utcoffset() is not None:
                try:
                    utc = parsed.astimezone(dt.UTC)
                except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 in UTC
                    utc = None
                # Inside the years a page can show in any time zone and the database reads back.
                if utc is not None and MIN_YEAR <= utc.year <= MAX_YEAR:
                    return parsed
                self.fail(where, _("must be between the years %(first)s and %(last)s")
                          % {"first": MIN_YEAR, "last": MAX_YEAR})
                return None
        self.fail(where, _("must be a date and time with a time zone, like 2026-01-31T14:05:00+00:00"))
        return None

    def array(self, parent: Mapping[str, Any], key: str, where: str) -> list[Any]:
        value = parent.get(key)
        if not isinstance(value, list):
            self.fail(where, _("must be a list") if key in parent else _("is missing"))
            return []
        return value


def _half_pair() -> str:
    """The problem with a JSON escape such as \\ud800: half of a UTF-16 pair, which no database stores as UTF-8."""
    return _("must be valid Unicode text (it holds half of a UTF-16 surrogate pair)")


def _lone_surrogate(text: str) -> bool:
    """Whether the text holds an unpaired surrogate (which UTF-8, and so the database, cannot encode)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _printable(text: str) -> str:
    """Text with line breaks and other unprintable characters escaped, so a problem stays on one line."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


def _check_json_text(c: _Checker, value: Any, where: str) -> None:
    """Report NUL characters anywhere in free-form JSON: PostgreSQL's jsonb refuses them."""
    # A loop, not recursion: the nesting depth of an uploaded file is not ours to choose.
    pending: list[tuple[Any, str]] = [(value, where)]
    while pending:
        item, at = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                c.fail(at, _("must not contain NUL characters"))
            elif _lone_surrogate(item):
                c.fail(at, _half_pair())
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    c.fail(at, _("must not contain NUL characters"))
                elif _lone_surrogate(key):
                    c.fail(at, _half_pair())
                pending.append((child, f"{at}.{_printable(key[:40])}"))
        elif isinstance(item, list):
            pending.extend((child, f"{at}[{index}]") for index, child in enumerate(item))


def _turn(c: _Checker, raw: Any, where: str) -> ImportedTurn | None:
    if not isinstance(raw, dict):
        c.fail(where, _("must be an object"))
        return None
    before = c.count
    turn = ImportedTurn(
        role=c.choice(raw, "role", f"{where}.role", ROLES),
        position=c.integer(raw, "position", f"{where}.position"),
        text=c.string(raw, "text", f"{where}.text", max_length=100_000),
        started_at=c.moment(raw, "started_at", f"{where}.started_at", required=False, nullable=True),
        interrupted=c.boolean(raw, "interrupted", f"{where}.interrupted", required=False),
        audio_ms=c.integer(raw, "audio_ms", f"{where}.audio_ms", required=False),
        status=c.string(raw, "status", f"{where}.status", max_length=24, required=False),
        status_reason=c.string(raw, "status_reason", f"{where}.status_reason", max_length=200, required=False),
        response_id=c.string(raw, "response_id", f"{where}.response_id", max_length=128, required=False),
        # Added within version 1: files written before them have neither.
        generated_ms=c.integer(raw, "generated_ms", f"{where}.generated_ms", required=False),
        recording_ms=c.integer_or_null(raw, "recording_ms", f"{where}.recording_ms"),
        tool=_tool_call(c, raw, where),
    )
    return turn if c.count == before else None


def _tool_call(c: _Checker, raw: Mapping[str, Any], where: str) -> ImportedToolCall | None:
    """The `tool` object a tool turn must have and no other turn may."""
    if raw.get("role") != "tool":
        if "tool" in raw:
            c.fail(f"{where}.tool", _("only a turn with the role 'tool' has a tool call"))
        return None
    found = c.obj(raw, "tool", f"{where}.tool")
    if found is None:
        return None
    at = f"{where}.tool"
    call_id = c.string(found, "call_id", f"{at}.call_id", max_length=128, non_empty=True)
    name = c.string(found, "name", f"{at}.name", max_length=64, non_empty=True)
    if call_id and not _CALL_ID.fullmatch(call_id):
        c.fail(f"{at}.call_id", _("may hold only letters, digits, '_' and '-'"))
    if name and not _TOOL_NAME.fullmatch(name):
        c.fail(f"{at}.name", _("may hold only letters, digits, '_' and '-'"))
    return ImportedToolCall(
        call_id=call_id,
        name=name,
        arguments=c.string(found, "arguments", f"{at}.arguments", max_length=TOOL_TEXT_CHARS, required=False),
        output=c.string(found, "output", f"{at}.output", max_length=TOOL_TEXT_CHARS, required=False),
        summary=c.string(found, "summary", f"{at}.summary", max_length=TOOL_SUMMARY_CHARS, required=False),
    )


def _usage(c: _Checker, raw: Any, where: str) -> ImportedUsage | None:
    if not isinstance(raw, dict):
        c.fail(where, _("must be an object"))
        return None
    before = c.count
    tokens = {name: c.integer(raw, name, f"{where}.{name}", required=False) for name in TOKEN_FIELDS}
    if "input_cached_text_tokens" not in raw and "input_cached_audio_tokens" not in raw:
        # An export from before the split: shared as the app shares an unsplit report (realtime/protocol.py).
        tokens["input_cached_text_tokens"], tokens["input_cached_audio_tokens"] = share_cached(
            tokens["input_cached_tokens"], tokens["input_text_tokens"], tokens["input_audio_tokens"])
    usage = ImportedUsage(
        response_id=c.string(raw, "response_id", f"{where}.response_id", max_length=128, non_empty=True),
        model=c.string(raw, "model", f"{where}.model", max_length=100),
        status=c.string(raw, "status", f"{where}.status", max_length=16, required=False),
        tokens=tokens,
        estimated=c.boolean(raw, "estimated", f"{where}.estimated", required=False),
        created_at=c.moment(raw, "created_at", f"{where}.created_at", required=False, nullable=True),
        cost_usd=_cost(c, raw, f"{where}.cost_usd"),
    )
    return usage if c.count == before else None


_COST = re.compile(r"[0-9]{1,8}(\.[0-9]{1,6})?")


def _cost(c: _Checker, raw: Mapping[str, Any], where: str) -> Decimal | None:
    """An exported cost in USD: text like "0.201280" (it fits the column: 8 digits, 6 decimals), or absent."""
    if "cost_usd" not in raw:
        return None
    value = raw["cost_usd"]
    if isinstance(value, str) and _COST.fullmatch(value):
        return Decimal(value)
    c.fail(where, _("must be a number of US dollars written as text, like \"0.201280\""))
    return None


def more_problems(errors: list[str], count: int) -> list[str]:
    """The problems kept, followed by how many more there were when some were left out."""
    if count <= len(errors):
        return errors
    return [*errors, _("… and %(count)s more problems") % {"count": count - len(errors)}]


def parse_document(document: Any) -> tuple[ImportedConversation | None, list[str]]:
    """Check one decoded export document: the conversation, or None and every problem with where it is."""
    conversation, errors, count = check_document(document)
    return conversation, more_problems(errors, count)


def check_document(document: Any) -> tuple[ImportedConversation | None, list[str], int]:
    """Check one decoded export document: the conversation, or None, the first problems and how many there are."""
    c = _Checker()
    if not isinstance(document, dict):
        return None, [_("the file must hold a JSON object, the export of one conversation")], 1
    if document.get("format") != FORMAT:
        return None, [_("format: must be %(format)s; this is not a conversation export of this app")
                      % {"format": repr(FORMAT)}], 1
    version = document.get("version")
    if isinstance(version, bool) or version != VERSION:
        return None, [_("version: %(found)s is not supported; this app reads version %(version)s")
                      % {"found": repr(version)[:40], "version": VERSION}], 1
    c.moment(document, "exported_at", "exported_at", required=False)
    found = c.obj(document, "conversation", "conversation")
    # Without the object itself its fields are not reported missing one by one.
    present = found is not None
    conversation = found or {}
    original_id = c.string(conversation, "id", "conversation.id", max_length=100, non_empty=True, required=present)
    title = c.string(conversation, "title", "conversation.title", max_length=200, required=False)
    started_at = c.moment(conversation, "started_at", "conversation.started_at", required=present)
    ended_at = c.moment(conversation, "ended_at", "conversation.ended_at", required=False, nullable=True)
    status = (c.choice(conversation, "status", "conversation.status", CONVERSATION_STATUSES)
              if present else "ended")
    provider = c.string(conversation, "provider", "conversation.provider", max_length=16, required=False)
    deployment = c.string(conversation, "deployment", "conversation.deployment", max_length=100, required=False)
    dialect = c.string(conversation, "dialect", "conversation.dialect", max_length=16, required=False)
    error = c.string(conversation, "error", "conversation.error", max_length=2000, required=False)

    settings = c.obj(document, "settings", "settings") or {}
    if "voice" in settings and not isinstance(settings["voice"], str):
        # The relay looks the stored voice up when a conversation is continued.
        c.fail("settings.voice", _("must be text"))
    _check_json_text(c, settings, "settings")

    turns: list[ImportedTurn] = []
    positions: dict[int, int] = {}
    calls: dict[str, int] = {}
    for index, raw in enumerate(c.array(document, "turns", "turns")):
        turn = _turn(c, raw, f"turns[{index}]")
        if turn is None:
            continue
        if turn.position in positions:
            c.fail(f"turns[{index}].position", _("%(position)s is also the position of turns[%(other)s]")
                   % {"position": turn.position, "other": positions[turn.position]})
        positions.setdefault(turn.position, index)
        if turn.tool is not None:
            # A continued conversation gives each call to the model again: two with one id would be one call.
            if turn.tool.call_id in calls:
                c.fail(f"turns[{index}].tool.call_id", _("%(id)s is also the call id of turns[%(other)s]")
                       % {"id": repr(turn.tool.call_id), "other": calls[turn.tool.call_id]})
            calls.setdefault(turn.tool.call_id, index)
        turns.append(turn)

    usage: list[ImportedUsage] = []
    responses: dict[str, int] = {}
    for index, raw in enumerate(c.array(document, "usage", "usage")):
        row = _usage(c, raw, f"usage[{index}]")
        if row is None:
            continue
        if row.response_id in responses:
            c.fail(f"usage[{index}].response_id", _("%(id)s is also the response of usage[%(other)s]")
                   % {"id": repr(row.response_id), "other": responses[row.response_id]})
        responses.setdefault(row.response_id, index)
        usage.append(row)

    if c.count:
        return None, c.errors, c.count
    assert started_at is not None
    return ImportedConversation(
        original_id=original_id, title=title, started_at=started_at, ended_at=ended_at, status=status,
        provider=provider, deployment=deployment, dialect=dialect, error=error, settings=settings,
        turns=sorted(turns, key=lambda t: t.position), usage=usage,
    ), [], 0
