"""Writes: every change to conversations, turns and usage goes through these functions."""
from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import live, selectors
from .models import Conversation, RecordingChunk, Turn, Usage, VoicePreferences
from .realtime.options import Preferences
from .realtime.protocol import Usage as UsageCounts
from .realtime.protocol import storable_text
from .relay.effects import (
    ConversationEnded,
    JournalOp,
    SessionOpened,
    TurnAdded,
    TurnAudio,
    TurnOutcome,
    TurnRecorded,
    TurnText,
    TurnToolCall,
    TurnToolOutput,
    UsageRecorded,
)

logger = logging.getLogger(__name__)

TITLE_CHARS = 80

def conversation_start(
    *, user: AbstractBaseUser, provider: str, deployment: str, dialect: str, settings: dict[str, Any]
) -> Conversation:
    """Create the record of a new conversation as its socket opens."""
    return Conversation.objects.create(
        user=user, provider=provider, deployment=deployment, dialect=dialect, settings=settings
    )


def conversation_continue(*, conversation_id: Any, settings: dict[str, Any]) -> None:
    """Mark a stored conversation live again, with the settings its new upstream session uses."""
    Conversation.objects.filter(pk=conversation_id).update(
        status=Conversation.Status.ACTIVE, ended_at=None, error="", ended_by="", settings=settings
    )


def conversation_discard(*, conversation_id: Any) -> bool:
    """Delete a conversation that never got going (nothing was said); return whether it was deleted."""
    deleted, _ = Conversation.objects.filter(pk=conversation_id, turns__isnull=True).delete()
    return bool(deleted)


def conversation_rename(*, conversation: Conversation, title: str) -> None:
    """Give a conversation the title its user chose (a new user turn no longer changes it)."""
    conversation.title = " ".join(title.split())[: Conversation._meta.get_field("title").max_length]
    conversation.save(update_fields=["title"])


def conversation_delete(*, conversation: Conversation) -> None:
    """Delete a conversation with its turns and usage, and end it wherever it is live."""
    conversation_id = conversation.pk
    with transaction.atomic():
        conversation.delete()
        # After the commit: a relay told earlier could still write into rows about to go.
        transaction.on_commit(lambda: live.announce_deleted(conversation_id=conversation_id))


@transaction.atomic
def user_data_delete(*, user: AbstractBaseUser) -> int:
    """Delete all of a user's conversations (turns, usage and imports with them) and their settings; the login stays.

    Their live conversations end wherever they run. Returns how many conversations were deleted.
    """
    count = Conversation.objects.filter(user=user).count()
    Conversation.objects.filter(user=user).delete()
    VoicePreferences.objects.filter(user=user).delete()
    user_id = user.pk
    transaction.on_commit(lambda: live.announce_deleted(user_id=user_id))
    return count


def conversation_set_session(*, conversation_id: Any, upstream_session_id: str) -> None:
    """Remember the upstream session id (the latest one, when a session was replaced)."""
    Conversation.objects.filter(pk=conversation_id).update(upstream_session_id=upstream_session_id[:100])


def conversation_end(*, conversation_id: Any, failed: bool = False, error: str = "", ended_by: str = "user") -> None:
    """Mark a conversation as over and who ended it, keeping the first error that ended it."""
    status = Conversation.Status.FAILED if failed else Conversation.Status.ENDED
    Conversation.objects.filter(pk=conversation_id, ended_at__isnull=True).update(
        status=status, ended_at=timezone.now(), error=error[:2000], ended_by=ended_by
    )


def conversations_interrupt(*, conversation_ids: Sequence[Any]) -> int:
    """Close conversations whose worker died while they were live: ended, by "interrupted", when their last turn was stored.

    Only rows still active are touched (a conversation continued or ended meanwhile is left alone), so
    several workers may sweep at once. Returns how many were closed.
    """
    if not conversation_ids:
        return 0
    last_turn = Turn.objects.filter(conversation=OuterRef("pk")).order_by().values("conversation")
    last_turn = last_turn.annotate(last=Max("created_at")).values("last")
    return Conversation.objects.filter(
        pk__in=list(conversation_ids), status=Conversation.Status.ACTIVE, ended_at__isnull=True
    ).update(status=Conversation.Status.ENDED, ended_by=Conversation.EndedBy.INTERRUPTED,
             ended_at=Coalesce(Subquery(last_turn), F("started_at")))


def turn_add(
    *, conversation_id: Any, item_id: str, role: str, position: int, response_id: str = "", text: str = ""
) -> None:
    """Record that an item took its place in the conversation; repeating it changes nothing."""
    if Turn.objects.filter(conversation_id=conversation_id, item_id=item_id).exists():
        return
    if Turn.objects.filter(conversation_id=conversation_id, position=position).exists():
        # Another worker wrote this place first (a reconnect raced a closing relay): take the next free one.
        last = Turn.objects.filter(conversation_id=conversation_id).order_by("-position").first()
        position = last.position + 1 if last else 0
    Turn.objects.create(
        conversation_id=conversation_id,
        item_id=item_id,
        role=role,
        position=position,
        response_id=response_id,
        text=text,
    )
    if text and role == Turn.Role.USER:
        _title_from(conversation_id, text)


def turn_set_text(*, conversation_id: Any, item_id: str, text: str) -> None:
    """Store the final transcript (or typed text) of an item."""
    updated = Turn.objects.filter(conversation_id=conversation_id, item_id=item_id).update(text=text)
    if not updated:
        logger.warning("Transcript for unknown item %s in conversation %s", item_id, conversation_id)
        return
    role = Turn.objects.filter(conversation_id=conversation_id, item_id=item_id).values_list("role", flat=True)[0]
    if role == Turn.Role.USER and text:
        _title_from(conversation_id, text)


def turn_set_audio(
    *, conversation_id: Any, item_id: str, audio_ms: int, interrupted: bool = False, generated_ms: int = 0
) -> None:
    """Store how much audio an item had (heard, when cut short), whether it was cut, and how much was sent."""
    changes: dict[str, Any] = {"audio_ms": max(0, int(audio_ms))}
    if interrupted:
        changes["interrupted"] = True
    if generated_ms:
        changes["generated_ms"] = max(0, int(generated_ms))
    Turn.objects.filter(conversation_id=conversation_id, item_id=item_id).update(**changes)


def turn_set_outcome(*, conversation_id: Any, item_id: str, status: str, reason: str = "") -> None:
    """Store that an item did not come out whole (failed or incomplete reply, failed transcription)."""
    Turn.objects.filter(conversation_id=conversation_id, item_id=item_id).update(
        status=status[:24], status_reason=reason[:200]
    )


def turn_set_tool_call(*, conversation_id: Any, item_id: str, call_id: str, name: str, arguments: str) -> None:
    """Store what a function call turn asked for: its call id, the tool's name and the arguments the model wrote."""
    Turn.objects.filter(conversation_id=conversation_id, item_id=item_id).update(
        tool_call_id=call_id[:128], tool_name=name[:64], tool_arguments=storable_text(arguments)
    )


def turn_set_tool_output(*, conversation_id: Any, item_id: str, output: str, summary: str, status: str = "") -> None:
    """Store what a function call gave the model, what it did in plain words, and how it ended."""
    Turn.objects.filter(conversation_id=conversation_id, item_id=item_id).update(
        tool_output=storable_text(output), tool_summary=storable_text(summary)[:1000], status=status[:24]
    )


def turn_set_recording_ms(*, conversation_id: Any, item_id: str, recording_ms: int) -> None:
    """Store where an item starts in the conversation's recording."""
    Turn.objects.filter(conversation_id=conversation_id, item_id=item_id).update(recording_ms=max(0, int(recording_ms)))


class ConversationGone(Exception):
    """The conversation was deleted while something was still being written to it."""


def recording_chunk_add(*, conversation_id: Any, seq: int, data: bytes, start_ms: int, duration_ms: int) -> RecordingChunk:
    """Store one encoded stretch of a conversation's recording (the file first, then its row).

    `seq` is where the chunk plays; if another worker's relay took that number first (a browser that
    reconnected elsewhere), the chunk goes after the last one. Raises ConversationGone once deleted.
    """
    if not Conversation.objects.filter(pk=conversation_id).exists():
        raise ConversationGone(conversation_id)
    if RecordingChunk.objects.filter(conversation_id=conversation_id, seq=seq).exists():
        seq = (RecordingChunk.objects.filter(conversation_id=conversation_id).aggregate(m=Max("seq"))["m"] or 0) + 1
    chunk = RecordingChunk(conversation_id=conversation_id, seq=seq, start_ms=start_ms, duration_ms=duration_ms,
                           size=len(data))
    chunk.file.save(f"{seq:06d}.mp3", ContentFile(data), save=False)
    try:
        chunk.save()
    except Exception:
        chunk.file.storage.delete(chunk.file.name)  # no file without its row
        if not Conversation.objects.filter(pk=conversation_id).exists():
            raise ConversationGone(conversation_id) from None
        raise
    return chunk


def recording_delete(*, conversation: Conversation) -> int:
    """Delete a conversation's recording (its files go once the delete commits); the transcript stays."""
    deleted, _ = RecordingChunk.objects.filter(conversation=conversation).delete()
    Turn.objects.filter(conversation=conversation).update(recording_ms=None)
    return deleted


def recordings_purge(*, older_than: Any) -> int:
    """Delete the recordings whose newest chunk is older than `older_than`; returns how many conversations lost one."""
    stale = (
        RecordingChunk.objects.values("conversation_id")
        .annotate(newest=Max("created_at"))
        .filter(newest__lt=older_than)
        .values_list("conversation_id", flat=True)
    )
    ids = list(stale)
    for start in range(0, len(ids), 500):
        batch = ids[start:start + 500]
        with transaction.atomic():
            # One by one, so the post_delete signal removes each file.
            for chunk in RecordingChunk.objects.filter(conversation_id__in=batch):
                chunk.delete()
            Turn.objects.filter(conversation_id__in=batch).update(recording_ms=None)
    return len(ids)


def usage_record(
    *, conversation_id: Any, response_id: str, model: str, status: str, usage: UsageCounts, estimated: bool = False
) -> None:
    """Store the token usage of one response with its cost at today's prices; a repeated response id is ignored."""
    # The preview dialect omits model names it does not know: then the conversation's deployment names it.
    deployment = "" if model else (
        Conversation.objects.filter(pk=conversation_id).values_list("deployment", flat=True).first() or "")
    cost = selectors.usage_cost(counts=usage, model=model, deployment=deployment)
    try:
        with transaction.atomic():
            Usage.objects.create(
                conversation_id=conversation_id,
                response_id=response_id,
                model=model[:100],
                status=status[:16],
                input_text_tokens=usage.input_text_tokens,
                input_audio_tokens=usage.input_audio_tokens,
                input_cached_tokens=usage.input_cached_tokens,
                input_cached_text_tokens=usage.input_cached_text_tokens,
                input_cached_audio_tokens=usage.input_cached_audio_tokens,
                output_text_tokens=usage.output_text_tokens,
                output_audio_tokens=usage.output_audio_tokens,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                total_tokens=usage.total_tokens,
                estimated=estimated,
                cost=cost.usd,
                price_id=cost.price.id if cost.price else None,
                priced=cost.priced,
            )
    except IntegrityError:
        logger.info("Usage for response %s was already recorded", response_id)


@dataclasses.dataclass(frozen=True)
class Repriced:
    """One usage row whose stored cost a repricing changed (or would change)."""

    usage_id: int
    conversation_id: Any
    response_id: str
    model: str
    old_cost: Decimal
    old_priced: bool
    new_cost: Decimal
    new_price: str  # the model of the price row now used; "" when none fitted


def usage_reprice(
    *, start: datetime.date, end: datetime.date | None = None, model: str = "", dry_run: bool = False
) -> tuple[int, list[Repriced]]:
    """Recompute the stored cost of the usage recorded from `start` to `end` (days, inclusive) at today's prices.

    For an operator correcting a wrong price: usage keeps the cost of its day otherwise. `model` limits it
    to the usage of that reported model name. Returns how many rows were looked at and those that changed.
    """
    rows = Usage.objects.filter(created_at__date__gte=start).annotate(deployment=F("conversation__deployment"))
    if end is not None:
        rows = rows.filter(created_at__date__lte=end)
    if model:
        rows = rows.filter(model=model)
    prices = selectors.price_list()
    seen, after, changes = 0, 0, []
    # In Python because the price lookup is (pricing.py); in pages by primary key, so no cursor stays open
    # on the rows being written (SQLite does not isolate the two).
    with transaction.atomic():
        while page := list(rows.filter(pk__gt=after).order_by("pk")[:500]):
            seen, after, changed = seen + len(page), page[-1].pk, []
            for row in page:
                cost = selectors.usage_cost(counts=row, model=row.model, deployment=row.deployment, prices=prices)
                price_id = cost.price.id if cost.price else None
                if (row.cost, row.price_id, row.priced) == (cost.usd, price_id, cost.priced):
                    continue
                changes.append(Repriced(row.pk, row.conversation_id, row.response_id, row.model, row.cost,
                                        row.priced, cost.usd, cost.price.model if cost.price else ""))
                row.cost, row.price_id, row.priced = cost.usd, price_id, cost.priced
                changed.append(row)
            if changed and not dry_run:
                Usage.objects.bulk_update(changed, ["cost", "price", "priced"])
    return seen, changes


def journal_apply_one(*, conversation_id: Any, op: JournalOp) -> None:
    """Apply one journal write of the relay to the database."""
    cid = conversation_id
    match op:
        case TurnAdded():
            turn_add(conversation_id=cid, item_id=op.item_id, role=op.role, position=op.position,
                     response_id=op.response_id, text=op.text)
        case TurnText():
            turn_set_text(conversation_id=cid, item_id=op.item_id, text=op.text)
        case TurnAudio():
            turn_set_audio(conversation_id=cid, item_id=op.item_id, audio_ms=op.audio_ms, interrupted=op.interrupted,
                           generated_ms=op.generated_ms)
        case TurnOutcome():
            turn_set_outcome(conversation_id=cid, item_id=op.item_id, status=op.status, reason=op.reason)
        case TurnToolCall():
            turn_set_tool_call(conversation_id=cid, item_id=op.item_id, call_id=op.call_id, name=op.name,
                               arguments=op.arguments)
        case TurnToolOutput():
            turn_set_tool_output(conversation_id=cid, item_id=op.item_id, output=op.output, summary=op.summary,
                                 status=op.status)
        case UsageRecorded():
            usage_record(conversation_id=cid, response_id=op.response_id, model=op.model, status=op.status,
                         usage=op.usage, estimated=op.estimated)
        case TurnRecorded():
            turn_set_recording_ms(conversation_id=cid, item_id=op.item_id, recording_ms=op.recording_ms)
        case SessionOpened():
            conversation_set_session(conversation_id=cid, upstream_session_id=op.upstream_session_id)
        case ConversationEnded():
            conversation_end(conversation_id=cid, failed=op.failed, error=op.error, ended_by=op.ended_by)
        case _:
            raise TypeError(f"Not a journal write: {op!r}")


def journal_apply(*, conversation_id: Any, ops: Sequence[JournalOp]) -> None:
    """Apply a batch of journal writes in one transaction: all of them, or none (the error is raised).

    A deleted conversation takes its writes with it: they are dropped, nothing is re-created. Whatever
    fails is raised to the journal, which retries a database outage and isolates a write that fails on
    its own (conversations/journal.py).
    """
    with transaction.atomic():
        if not _conversation_held(conversation_id):
            logger.info("Conversation %s was deleted; %d writes dropped", conversation_id, len(ops))
            return
        for op in ops:
            journal_apply_one(conversation_id=conversation_id, op=op)


def _conversation_held(conversation_id: Any) -> bool:
    """Whether the conversation exists, holding it until the transaction ends so a delete waits for the writes.

    FOR NO KEY UPDATE blocks a DELETE but not the key-share locks that inserting turns and chunks take.
    SQLite ignores it; there a delete cannot commit while this transaction reads anyway.
    """
    return Conversation.objects.select_for_update(no_key=True).filter(pk=conversation_id).exists()


def _title_from(conversation_id: Any, text: str) -> None:
    """Title an untitled conversation after the first thing the user said."""
    title = " ".join(text.split())[:TITLE_CHARS]
    Conversation.objects.filter(pk=conversation_id, title="").update(title=title)



def preferences_update(*, user: AbstractBaseUser, preferences: Preferences) -> None:
    """Save a user's validated conversation settings."""
    VoicePreferences.objects.update_or_create(user=user, defaults=dataclasses.asdict(preferences))


def live_conversation_end(*, conversation_id: Any, by: AbstractBaseUser) -> bool:
    """Ask the worker holding a live conversation to end it as staff member `by` did; False if it could not be asked.

    The holder cuts a running reply as Stop does, tells the user, and stores the conversation as ended by staff.
    """
    logger.info("Staff member %s ends live conversation %s", by.get_username(), conversation_id)
    return live.announce_end_by_staff(conversation_id=str(conversation_id), by=by.get_username())


def user_suspended(*, user_id: Any, by: str = "") -> None:
    """End every live conversation of a user who was just suspended (made inactive), once that commits."""
    logger.info("User %s was suspended%s; ending their live conversations", user_id, f" by {by}" if by else "")
    transaction.on_commit(lambda: live.announce_end_by_staff(user_id=user_id, by=by))
