"""Stored conversations for the history tests, with the times and usage a test needs."""
from __future__ import annotations

import datetime
from typing import Any

from django.utils import timezone

from conversations.models import Conversation, Turn, Usage

START = timezone.make_aware(datetime.datetime(2026, 3, 14, 9, 30))


def stored(
    user: Any,
    lines: list[tuple[str, str]] | list[dict[str, Any]],
    *,
    title: str = "",
    started_at: datetime.datetime = START,
    minutes: float | None = 5,
    status: str = Conversation.Status.ENDED,
) -> Conversation:
    """A conversation of `user` with turns ("user"/"assistant", text) or dicts of Turn fields, 10 s apart.

    `minutes` is how long it lasted (None: still in progress). Assistant turns get a response id each.
    """
    conversation = Conversation.objects.create(
        user=user, provider="simulator", deployment="gpt-realtime", dialect="ga", title=title, status=status
    )
    ended_at = started_at + datetime.timedelta(minutes=minutes) if minutes is not None else None
    Conversation.objects.filter(pk=conversation.pk).update(started_at=started_at, ended_at=ended_at)
    for position, line in enumerate(lines):
        fields = dict(zip(("role", "text"), line)) if isinstance(line, tuple) else dict(line)
        fields.setdefault("response_id", f"resp_{position}" if fields["role"] == "assistant" else "")
        turn = Turn.objects.create(conversation=conversation, position=position, item_id=f"item_{position}", **fields)
        Turn.objects.filter(pk=turn.pk).update(created_at=started_at + datetime.timedelta(seconds=10 * position))
    conversation.refresh_from_db()
    return conversation


def usage(conversation: Conversation, response_id: str, total: int, *, estimated: bool = False) -> Usage:
    """A usage row for one response of the conversation: a third input, the rest output."""
    return Usage.objects.create(
        conversation=conversation, response_id=response_id, model="gpt-realtime", status="completed",
        input_tokens=total // 3, output_tokens=total - total // 3, total_tokens=total, estimated=estimated,
    )
