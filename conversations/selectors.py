"""Reads: queries that views and consumers use, scoped to the user who asks."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet, Sum

from .models import Conversation, Turn


def conversation_list(*, user: AbstractBaseUser) -> QuerySet[Conversation]:
    """The user's conversations, newest first, with their turn count and total tokens."""
    return (
        Conversation.objects.filter(user=user)
        .annotate(turn_count=Count("turns", distinct=True), total_tokens=Sum("usage__total_tokens"))
        .order_by("-started_at")
    )


def conversation_get(*, user: AbstractBaseUser, conversation_id: Any) -> Conversation | None:
    """One of the user's conversations, or None if it does not exist or is someone else's."""
    return Conversation.objects.filter(user=user, pk=conversation_id).first()


def turn_list(*, conversation: Conversation) -> QuerySet[Turn]:
    """The turns of a conversation in conversation order."""
    return conversation.turns.order_by("position")


def turn_next_position(*, conversation_id: Any) -> int:
    """The position after the last stored turn, for continuing a conversation."""
    last = (
        Turn.objects.filter(conversation_id=conversation_id)
        .order_by("-position")
        .values_list("position", flat=True)
        .first()
    )
    return 0 if last is None else last + 1
