"""Reads: queries that views and consumers use, scoped to the user who asks."""
from __future__ import annotations

import dataclasses
import datetime
import logging
import re
import secrets
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVector
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import (
    Count,
    DecimalField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from .models import Conversation, ModelPrice, RecordingChunk, Turn, Usage, VoicePreferences
from .pricing import Cost, Price, TokenCounts, estimate
from .realtime.options import Preferences, transcription_model_for
from .relay.state import StoredTurn
from .upstream import transcription_models

logger = logging.getLogger(__name__)

PREFERENCE_FIELDS = tuple(f.name for f in dataclasses.fields(Preferences))


def _available_now(prefs: Preferences) -> Preferences:
    """The preferences with a transcription model the configured provider has (on Azure: its deployment, or off)."""
    model = transcription_model_for(prefs.transcription_model, transcription_models())
    return prefs if model == prefs.transcription_model else prefs.with_changes(transcription_model=model)


def preferences_default() -> Preferences:
    """The settings a user starts with, from the deployment's configuration."""
    return _available_now(
        Preferences(
            voice=settings.REALTIME_VOICE,
            instructions=settings.REALTIME_INSTRUCTIONS,
            transcription_model=settings.REALTIME_TRANSCRIPTION_MODEL,
        )
    )


def preferences_for(*, user: AbstractBaseUser) -> Preferences:
    """The user's saved conversation settings, or the defaults when they saved none."""
    return preferences_for_user_id(user_id=user.pk)


def preferences_for_user_id(*, user_id: Any) -> Preferences:
    """The saved conversation settings of the user with this id."""
    row = VoicePreferences.objects.filter(user_id=user_id).first()
    if row is None:
        return preferences_default()
    saved = {name: getattr(row, name) for name in PREFERENCE_FIELDS}
    # Stored as a JSON list; the preferences are frozen, so a tuple.
    saved["tools_disabled"] = tuple(name for name in saved["tools_disabled"] if isinstance(name, str))
    return _available_now(Preferences(**saved))


@dataclasses.dataclass(frozen=True)
class StoredConversation:
    """What the relay needs to continue a stored conversation."""

    id: Any
    dialect: str
    settings: dict[str, Any]
    turns: list[StoredTurn]
    open: bool = False  # not ended: live in some worker (or left so by one that died)


def conversation_for_relay(*, user: AbstractBaseUser, conversation_id: Any) -> StoredConversation | None:
    """The user's own conversation with its turns in order, or None when it is not theirs or does not exist."""
    try:
        conversation = Conversation.objects.get(pk=conversation_id, user=user)
    except (Conversation.DoesNotExist, ValidationError, ValueError):
        return None
    turns = [
        StoredTurn(
            item_id=t.item_id, role=t.role, position=t.position, text=t.text,
            interrupted=t.interrupted, audio_ms=t.audio_ms, status=t.status,
            call_id=t.tool_call_id, tool_name=t.tool_name, arguments=t.tool_arguments,
            # A call stored without its output was cut off by the end of its conversation.
            output=t.tool_output or None, summary=t.tool_summary,
        )
        for t in conversation.turns.order_by("position")
    ]
    return StoredConversation(conversation.pk, conversation.dialect, conversation.settings, turns,
                              open=conversation.ended_at is None)


def conversation_is_open(*, conversation_id: Any) -> bool:
    """Whether a conversation exists and has not ended (its last writes are done once it has)."""
    return Conversation.objects.filter(pk=conversation_id, ended_at__isnull=True).exists()


def active_conversation_ids() -> list[str]:
    """Every conversation the database still has as active (live somewhere, or left so by a worker that died)."""
    ids = Conversation.objects.filter(status=Conversation.Status.ACTIVE, ended_at__isnull=True).values_list("pk", flat=True)
    return [str(pk) for pk in ids]


def conversation_for(*, user: AbstractBaseUser, conversation_id: str) -> Conversation | None:
    """The user's own conversation with that id, or None for a malformed id or anyone else's conversation."""
    try:
        pk = uuid.UUID(str(conversation_id))
    except (TypeError, ValueError):
        return None
    return Conversation.objects.filter(user=user, pk=pk).first()


@dataclasses.dataclass(frozen=True)
class Recording:
    """A conversation's recording: its chunks in playing order, one MP3 stream when joined."""

    chunks: list[RecordingChunk]
    duration_ms: int
    size: int


def recording_of(*, conversation: Conversation) -> Recording | None:
    """The conversation's recording, or None when nothing of it was recorded."""
    chunks = list(RecordingChunk.objects.filter(conversation=conversation).order_by("seq"))
    if not chunks:
        return None
    return Recording(chunks, sum(c.duration_ms for c in chunks), sum(c.size for c in chunks))


def recording_next_place(*, conversation_id: Any) -> tuple[int, int]:
    """Where more recording of a conversation goes: the next chunk number and the position (ms) it starts at."""
    last = RecordingChunk.objects.filter(conversation_id=conversation_id).order_by("-seq").first()
    if last is None:
        return 0, 0
    return last.seq + 1, last.start_ms + last.duration_ms


def recording_exists(*, conversation: Conversation) -> bool:
    """Whether any of the conversation was recorded."""
    return RecordingChunk.objects.filter(conversation=conversation).exists()


def turns_of(*, conversation: Conversation) -> QuerySet[Turn]:
    """The conversation's turns in order of their place in it (each with its `status` and `status_reason`)."""
    return Turn.objects.filter(conversation=conversation).order_by("position")


# --- History -------------------------------------------------------------------------------------

# No stemming: transcripts come in any language. Migration 0005 indexes exactly these expressions.
SEARCH_CONFIG = "simple"
# On the ranking, a match in the title counts as much as two matching lines.
TITLE_RANK_WEIGHT = 2.0
EXCERPT_CHARS = 160


def _search_words(q: str) -> list[str]:
    """The words of a search, as the SQLite fallback matches them (every one must appear)."""
    return q.split()


def _postgres() -> bool:
    """Whether the database has PostgreSQL's full-text search."""
    return connection.vendor == "postgresql"


def conversation_list(
    *,
    user: AbstractBaseUser,
    q: str = "",
    started_from: datetime.date | None = None,
    started_to: datetime.date | None = None,
) -> QuerySet[Conversation]:
    """The user's conversations with something in them, newest first (best match first when searching).

    Each has `turn_count` (what was said, tool calls left out), `duration` (None while in progress) and `has_recording`. A search matches
    the title, or one line of the transcript containing every word: PostgreSQL full-text search
    (ranked), or a case-insensitive `icontains` on other databases. Dates are days in the current time zone, inclusive.
    """
    conversations = (
        Conversation.objects.filter(user=user)
        .annotate(
            # What was said: the tools the assistant used are lines of their own, not turns of the talk.
            turn_count=Count("turns", filter=~Q(turns__role=Turn.Role.TOOL)),
            duration=ExpressionWrapper(F("ended_at") - F("started_at"), output_field=DurationField()),
            has_recording=Exists(RecordingChunk.objects.filter(conversation=OuterRef("pk"))),
        )
        # Nothing to read in a conversation where nothing was said (one that failed at once, say).
        .filter(turn_count__gt=0)
    )
    if started_from is not None:
        conversations = conversations.filter(started_at__date__gte=started_from)
    if started_to is not None:
        conversations = conversations.filter(started_at__date__lte=started_to)
    q = q.strip()
    if not q:
        return conversations.order_by("-started_at")
    if not _postgres():
        words = _search_words(q)
        title_has_all = Q(*[Q(title__icontains=w) for w in words])
        lines = Turn.objects.filter(*[Q(text__icontains=w) for w in words], conversation__user=user)
        lines = lines.values("conversation_id")
        return conversations.filter(title_has_all | Q(pk__in=lines)).order_by("-started_at")
    query = SearchQuery(q, config=SEARCH_CONFIG, search_type="websearch")
    matching_lines = Turn.objects.annotate(document=SearchVector("text", config=SEARCH_CONFIG)).filter(document=query)
    line_ranks = (
        matching_lines.filter(conversation=OuterRef("pk"))
        .order_by()
        .values("conversation")
        .annotate(total=Sum(SearchRank(F("document"), query)))
        .values("total")
    )
    title_rank = SearchRank(SearchVector("title", config=SEARCH_CONFIG), query)
    return (
        conversations.alias(title_document=SearchVector("title", config=SEARCH_CONFIG))
        .filter(
            Q(title_document=query)
            | Q(pk__in=matching_lines.filter(conversation__user=user).values("conversation_id"))
        )
        .annotate(
            rank=title_rank * TITLE_RANK_WEIGHT
            + Coalesce(Subquery(line_ranks, output_field=FloatField()), 0.0, output_field=FloatField())
        )
        .order_by("-rank", "-started_at")
    )


def conversation_exists_for(*, user: AbstractBaseUser) -> bool:
    """Whether the user has any conversation the history lists (to tell "none yet" from "no match")."""
    return conversation_list(user=user).exists()


@dataclasses.dataclass(frozen=True)
class HistoryRow:
    """One conversation on a page of the history list, with what matched a search."""

    conversation: Conversation
    title: str | SafeString  # the title, with matching words marked on PostgreSQL
    excerpt: str | SafeString = ""  # the best matching line, when searching
    excerpt_role: str = ""


def history_rows(*, conversations: Sequence[Conversation], q: str = "") -> list[HistoryRow]:
    """The rows of one page of the history: matching words marked (PostgreSQL) or a plain excerpt."""
    q = q.strip()
    if not q or not conversations:
        return [HistoryRow(c, c.title) for c in conversations]
    ids = [c.pk for c in conversations]
    if _postgres():
        titles, lines = _highlights(ids, q)
    else:
        titles, lines = {}, _plain_excerpts(ids, q)
    rows = []
    for c in conversations:
        role, excerpt = lines.get(c.pk, ("", ""))
        rows.append(HistoryRow(c, titles.get(c.pk) or c.title, excerpt, role))
    return rows


def _highlights(ids: list[Any], q: str) -> tuple[dict[Any, SafeString], dict[Any, tuple[str, SafeString]]]:
    """Titles and best matching lines with the matching words in <mark>, everything else escaped."""
    # Random markers: no transcript can contain them, so only the markers PostgreSQL put in become tags.
    token = secrets.token_hex(8)
    start, stop = f"[[hl:{token}]]", f"[[/hl:{token}]]"
    query = SearchQuery(q, config=SEARCH_CONFIG, search_type="websearch")
    marks = {"config": SEARCH_CONFIG, "start_sel": start, "stop_sel": stop}
    titles = {
        pk: _marked(headline, start, stop)
        for pk, headline in Conversation.objects.filter(pk__in=ids)
        .alias(document=SearchVector("title", config=SEARCH_CONFIG))
        .filter(document=query)
        .annotate(headline=SearchHeadline("title", query, highlight_all=True, **marks))
        .values_list("pk", "headline")
    }
    best_lines = (
        Turn.objects.filter(conversation_id__in=ids)
        .annotate(document=SearchVector("text", config=SEARCH_CONFIG))
        .filter(document=query)
        .annotate(
            rank=SearchRank(F("document"), query),
            # The whole line: in excerpt mode ts_headline drops whatever looks like an HTML tag, so the
            # excerpt is cut here instead, and shows the words exactly as they were said or typed.
            headline=SearchHeadline("text", query, highlight_all=True, **marks),
        )
        # PostgreSQL's DISTINCT ON: the best-ranked line of each conversation, the earliest on a tie.
        .order_by("conversation_id", "-rank", "position")
        .distinct("conversation_id")
        .values_list("conversation_id", "role", "headline")
    )
    lines = {pk: (role, _marked(headline, start, stop, excerpt=True)) for pk, role, headline in best_lines}
    return titles, lines


def _marked(headline: str, start: str, stop: str, *, excerpt: bool = False) -> SafeString:
    """Escape a headline and mark only the search's own markers; an excerpt keeps about EXCERPT_CHARS.

    The one place where stored text becomes markup: every piece is escaped, and only <mark> is added.
    """
    # Pieces between markers alternate: unmarked, marked, unmarked, ...
    pieces = re.split(f"{re.escape(start)}|{re.escape(stop)}", headline)
    begin, end = 0, sum(len(p) for p in pieces)
    if excerpt and end > EXCERPT_CHARS:
        first_match = len(pieces[0]) if len(pieces) > 1 else 0
        begin = max(0, first_match - EXCERPT_CHARS // 3)
        end = min(end, max(begin + EXCERPT_CHARS, first_match + (len(pieces[1]) if len(pieces) > 1 else 0)))
        # Never cut a marked word in two (`<mark>quokk</mark>…`): end before it instead.
        at = 0
        for index, piece in enumerate(pieces):
            if index % 2 and at < end < at + len(piece):
                end = at
                break
            at += len(piece)
    html, at = [], 0
    for index, piece in enumerate(pieces):
        shown = piece[max(0, begin - at): max(0, end - at)]
        at += len(piece)
        if shown:
            html.append(f"<mark>{escape(shown)}</mark>" if index % 2 else escape(shown))
    total = at
    return mark_safe(("…" if begin else "") + "".join(html) + ("…" if end < total else ""))  # noqa: S308


def _plain_excerpts(ids: list[Any], q: str) -> dict[Any, tuple[str, str]]:
    """The first line of each conversation containing every word, cut around the first word (not marked)."""
    words = _search_words(q)
    found: dict[Any, tuple[str, str]] = {}
    lines = Turn.objects.filter(*[Q(text__icontains=w) for w in words], conversation_id__in=ids)
    for pk, role, text in lines.order_by("conversation_id", "position").values_list("conversation_id", "role", "text"):
        if pk not in found:
            found[pk] = (role, _excerpt(text, words[0]))
    return found


def _excerpt(text: str, word: str) -> str:
    """About EXCERPT_CHARS of `text` around the first occurrence of `word`."""
    text = " ".join(text.split())
    if len(text) <= EXCERPT_CHARS:
        return text
    at = max(0, text.lower().find(word.lower()))
    begin = max(0, at - EXCERPT_CHARS // 3)
    end = begin + EXCERPT_CHARS
    return ("…" if begin else "") + text[begin:end].strip() + ("…" if end < len(text) else "")


@dataclasses.dataclass(frozen=True)
class TranscriptLine:
    """One turn as the conversation page shows it."""

    turn: Turn
    offset: datetime.timedelta  # since the conversation started
    tokens: int | None  # total tokens of the response that produced it (assistant turns)
    tokens_estimated: bool
    heard: str = ""  # an interrupted reply: the words the user probably heard...
    unheard: str = ""  # ...and the rest, generated but never played
    heard_share: float | None = None  # heard/generated audio, None when it cannot be estimated
    cost: Decimal | None = None  # USD, of the response that produced it; None when it has no price


@dataclasses.dataclass(frozen=True)
class Transcript:
    """A conversation's lines and its token totals."""

    lines: list[TranscriptLine]
    duration: datetime.timedelta | None  # None while in progress
    input_tokens: int
    output_tokens: int
    total_tokens: int
    estimated: bool  # some usage was counted by the app, not reported by the service
    cost: Decimal = Decimal(0)  # USD, of the responses that had a price when they were recorded
    priced: int = 0  # responses with a price
    unpriced: int = 0  # responses without one: the cost leaves them out


def transcript_of(*, conversation: Conversation) -> Transcript:
    """The conversation's turns in order with their times, tokens and heard shares, and its token totals."""
    usage = Usage.objects.filter(conversation_id=OuterRef("conversation_id"), response_id=OuterRef("response_id"))
    turns = (
        turns_of(conversation=conversation)
        .annotate(
            offset=ExpressionWrapper(F("created_at") - F("conversation__started_at"), output_field=DurationField()),
            tokens=Subquery(usage.values("total_tokens")[:1]),
            tokens_estimated=Subquery(usage.values("estimated")[:1]),
            cost=Subquery(usage.filter(priced=True).values("cost")[:1]),
        )
    )
    turns = list(turns)
    # A response that spoke and called a tool shows its tokens once, on what it said.
    spoken = {t.response_id for t in turns if t.role != Turn.Role.TOOL and t.response_id}
    lines = []
    for turn in turns:
        split = None
        if turn.role == Turn.Role.ASSISTANT and turn.interrupted:
            split = heard_split(turn.text, heard_ms=turn.audio_ms, generated_ms=turn.generated_ms)
        # The journal writes rows a moment after the fact; a turn never starts before its conversation.
        offset = max(turn.offset or datetime.timedelta(0), datetime.timedelta(0))
        counted = bool(turn.response_id) and (turn.role != Turn.Role.TOOL or turn.response_id not in spoken)
        if counted and turn.role == Turn.Role.TOOL:
            spoken.add(turn.response_id)  # several calls of one response: counted on the first
        line = TranscriptLine(turn, offset, turn.tokens if counted else None, bool(turn.tokens_estimated),
                              cost=turn.cost if counted else None)
        if split is not None:
            line = dataclasses.replace(line, heard=split[0], unheard=split[1], heard_share=split[2])
        lines.append(line)
    totals = Usage.objects.filter(conversation=conversation).aggregate(
        input_tokens=Coalesce(Sum("input_tokens"), 0),
        output_tokens=Coalesce(Sum("output_tokens"), 0),
        total_tokens=Coalesce(Sum("total_tokens"), 0),
        estimated=Count("pk", filter=Q(estimated=True)),
        cost_total=Coalesce(Sum("cost", filter=Q(priced=True)), Value(Decimal(0)),
                            output_field=DecimalField(max_digits=14, decimal_places=6)),
        priced_count=Count("pk", filter=Q(priced=True)),
        unpriced_count=Count("pk", filter=Q(priced=False)),
    )
    duration = conversation.ended_at - conversation.started_at if conversation.ended_at else None
    return Transcript(lines, duration, totals["input_tokens"], totals["output_tokens"], totals["total_tokens"],
                      bool(totals["estimated"]), totals["cost_total"], totals["priced_count"],
                      totals["unpriced_count"])


_WORD = re.compile(r"\S+")


def heard_split(text: str, *, heard_ms: int, generated_ms: int) -> tuple[str, str, float] | None:
    """Split an interrupted reply into the words probably heard and the rest, with the heard share.

    An estimate: the share of the words equal to the share of the audio played (heard over generated),
    as if the words were evenly spread over the audio. None when the generated length is unknown.
    """
    if generated_ms <= 0 or not text.strip():
        return None
    share = min(1.0, max(0.0, heard_ms / generated_ms))
    words = list(_WORD.finditer(text))
    count = round(len(words) * share)
    if count == 0:
        return "", text.strip(), share
    cut = words[count - 1].end()
    return text[:cut].strip(), text[cut:].strip(), share


def conversation_export(*, conversation: Conversation, exported_at: Any) -> dict[str, Any]:
    """The export document (docs/export-format.md) of one conversation, read in three queries."""
    from .models import Usage
    from .transfer.format import TOKEN_FIELDS, build_document

    row = {name: getattr(conversation, name) for name in (
        "id", "title", "started_at", "ended_at", "status", "provider", "deployment", "dialect", "settings", "error")}
    turns = Turn.objects.filter(conversation=conversation).order_by("position").values(
        "role", "position", "text", "created_at", "interrupted", "audio_ms", "status", "status_reason", "response_id",
        "generated_ms", "recording_ms", "tool_call_id", "tool_name", "tool_arguments", "tool_output", "tool_summary")
    usage = Usage.objects.filter(conversation=conversation).order_by("created_at", "pk").values(
        "response_id", "model", "status", *TOKEN_FIELDS, "estimated", "created_at", "cost", "priced")
    return build_document(conversation=row, turns=turns, usage=usage, exported_at=exported_at)


def conversations_to_export(*, user: AbstractBaseUser) -> QuerySet[Conversation]:
    """All of the user's conversations, oldest first, for "export all"."""
    return Conversation.objects.filter(user=user).order_by("started_at", "pk")


def conversation_ids_imported(*, user: AbstractBaseUser, original_ids: list[str]) -> set[str]:
    """Which of these exported ids this user has already imported."""
    return set(
        Conversation.objects.filter(user=user, imported_from__in=original_ids).values_list("imported_from", flat=True)
    )


PRICE_FIELDS = ("text_input", "cached_text_input", "text_output", "audio_input", "cached_audio_input", "audio_output")
# Process-wide on purpose: a missing price is worth one warning per model name, not one per reply.
_unpriced_logged: set[str] = set()


def price_list() -> list[Price]:
    """This site's model prices as plain values (a handful of rows, read in one small query)."""
    return [Price(**row) for row in ModelPrice.objects.values("id", "model", *PRICE_FIELDS)]


def usage_cost(
    *, counts: TokenCounts, model: str, deployment: str = "", prices: Sequence[Price] | None = None
) -> Cost:
    """What one response's tokens cost at this site's prices (see pricing.estimate); a missing price is logged once."""
    cost = estimate(counts, model=model, deployment=deployment, prices=price_list() if prices is None else prices,
                    deployment_models=settings.REALTIME_DEPLOYMENT_MODELS)
    if not cost.priced and cost.model not in _unpriced_logged:
        _unpriced_logged.add(cost.model)
        logger.warning(
            "No price for the model %r: its usage is stored with no cost. Add the model in the admin's model "
            "prices, or name the model this deployment runs in REALTIME_DEPLOYMENT_MODELS.", cost.model)
    return cost


# --- Live sessions (staff) ---------------------------------------------------------------------------


def live_costs(*, conversation_ids: Sequence[Any]) -> dict[str, tuple[int, Any]]:
    """Tokens and cost (None where usage has no cost field) so far, per conversation id, in one aggregate query."""
    if not conversation_ids:
        return {}
    sums: dict[str, Any] = {"tokens": Coalesce(Sum("total_tokens"), 0)}
    has_cost = any(f.name == "cost" for f in Usage._meta.get_fields())
    if has_cost:
        sums["cost"] = Sum("cost")
    rows = (
        Usage.objects.filter(conversation_id__in=list(conversation_ids))
        .order_by()
        .values("conversation_id")
        .annotate(**sums)
    )
    return {str(row["conversation_id"]): (row["tokens"], row.get("cost")) for row in rows}


@dataclasses.dataclass(frozen=True)
class LiveRow:
    """One live conversation on the staff list, with what it has used so far."""

    conversation_id: str
    user_id: int | None
    username: str
    started: datetime.datetime
    duration_s: int
    tokens: int
    cost: Any  # Decimal USD, or None before usage has a cost
    worker: str
    deployment: str

    @property
    def duration(self) -> datetime.timedelta:
        """How long it has been live."""
        return datetime.timedelta(seconds=self.duration_s)


def live_sessions() -> list[LiveRow]:
    """Every live conversation across the workers (registry entries), oldest first, with its running usage."""
    from .live_registry import live_entries

    entries = live_entries()
    ids = []
    for entry in entries:
        try:
            ids.append(uuid.UUID(entry.conversation_id))
        except ValueError:
            continue  # not an id this app wrote: listed, with no usage
    costs = live_costs(conversation_ids=ids)
    now = datetime.datetime.now(datetime.UTC)
    rows = []
    for entry in entries:
        started = datetime.datetime.fromtimestamp(entry.started, datetime.UTC)
        tokens, cost = costs.get(entry.conversation_id, (0, None))
        rows.append(LiveRow(
            conversation_id=entry.conversation_id, user_id=entry.user_id, username=entry.username, started=started,
            duration_s=max(0, int((now - started).total_seconds())), tokens=tokens, cost=cost, worker=entry.worker,
            deployment=entry.deployment,
        ))
    return rows
