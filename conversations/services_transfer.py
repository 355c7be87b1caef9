"""Writes of import: checked conversations from export files stored in the importing user's account."""
from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from . import selectors
from .models import Conversation, Turn, Usage
from .pricing import Price
from .transfer.format import ImportedConversation, ImportedTurn, ImportedUsage


@dataclasses.dataclass(frozen=True)
class ImportResult:
    """What an import did: the new conversations' ids and the exported ids that were already imported."""

    created: list[uuid.UUID]
    duplicates: list[str]


class ImportRaced(Exception):
    """Another import of the same conversation committed first; nothing of this one was kept."""


def _cost(usage: ImportedUsage, *, deployment: str, prices: list[Price]) -> dict[str, Any]:
    """The cost fields of an imported usage row: the exported cost as it was, else this site's price for it."""
    if usage.cost_usd is not None:
        return {"cost": usage.cost_usd, "priced": True, "price_id": None}
    cost = selectors.usage_cost(counts=SimpleNamespace(**usage.tokens), model=usage.model, deployment=deployment,
                                prices=prices)
    return {"cost": cost.usd, "priced": cost.priced, "price_id": cost.price.id if cost.price else None}


def _tool_fields(turn: ImportedTurn) -> dict[str, str]:
    """The columns of an imported tool turn's call (none for what people said)."""
    call = turn.tool
    if call is None:
        return {}
    return {"tool_call_id": call.call_id, "tool_name": call.name, "tool_arguments": call.arguments,
            "tool_output": call.output, "tool_summary": call.summary}


def _store(*, user: AbstractBaseUser, imported: ImportedConversation, prices: list[Price]) -> Conversation:
    conversation = Conversation.objects.create(
        user=user, title=imported.title, status=Conversation.Status.ENDED, provider=imported.provider,
        deployment=imported.deployment, dialect=imported.dialect, settings=imported.settings,
        error=imported.error, imported_from=imported.original_id,
    )
    # started_at and created_at are auto_now_add: the exported times are written after the insert.
    Conversation.objects.filter(pk=conversation.pk).update(
        started_at=imported.started_at, ended_at=imported.ended_at or imported.started_at
    )
    # Item ids must be unique in the conversation and short enough for the relay to seed upstream with them.
    prefix = f"imp_{conversation.pk.hex[:8]}_"
    # recording_ms stays empty: the recording is not in the file, and a continued import starts a recording
    # of its own at 0, into which the exported offsets would point at the wrong moments.
    turns = Turn.objects.bulk_create(
        Turn(conversation=conversation, role=t.role, position=t.position, item_id=f"{prefix}{t.position}",
             response_id=t.response_id, text=t.text, interrupted=t.interrupted, audio_ms=t.audio_ms,
             generated_ms=t.generated_ms, recording_ms=None, status=t.status, status_reason=t.status_reason,
             **_tool_fields(t))
        for t in imported.turns
    )
    dated = []
    for turn, source in zip(turns, imported.turns, strict=True):
        if source.started_at is not None:
            turn.created_at = source.started_at
            dated.append(turn)
    if dated:
        Turn.objects.bulk_update(dated, ["created_at"], batch_size=500)
    usage = Usage.objects.bulk_create(
        Usage(conversation=conversation, response_id=u.response_id, model=u.model, status=u.status,
              estimated=u.estimated, **u.tokens, **_cost(u, deployment=imported.deployment, prices=prices))
        for u in imported.usage
    )
    dated = []
    for row, source in zip(usage, imported.usage, strict=True):
        if source.created_at is not None:
            row.created_at = source.created_at
            dated.append(row)
    if dated:
        Usage.objects.bulk_update(dated, ["created_at"], batch_size=500)
    return conversation


def conversations_import(*, user: AbstractBaseUser, conversations: Sequence[ImportedConversation]) -> ImportResult:
    """Store the conversations as new ones of `user`, skipping those already imported; all or nothing."""
    try:
        with transaction.atomic():
            done = selectors.conversation_ids_imported(
                user=user, original_ids=[c.original_id for c in conversations])
            prices = selectors.price_list()
            created = [_store(user=user, imported=c, prices=prices).pk for c in conversations
                       if c.original_id not in done]
    except IntegrityError as exc:
        # The unique (user, imported_from) constraint: the same file was imported at the same moment.
        raise ImportRaced() from exc
    return ImportResult(created=created, duplicates=[c.original_id for c in conversations if c.original_id in done])
