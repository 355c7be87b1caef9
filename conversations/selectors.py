"""Reads: queries that views and consumers use, scoped to the user who asks."""
from __future__ import annotations

import dataclasses
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet, Sum

from .models import Conversation, Turn, VoicePreferences
from .realtime.options import Preferences


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


PREFERENCE_FIELDS = tuple(f.name for f in dataclasses.fields(Preferences))


def preferences_default() -> Preferences:
    """The settings a user starts with, from the deployment's configuration."""
    return Preferences(
        voice=settings.REALTIME_VOICE,
        instructions=settings.REALTIME_INSTRUCTIONS,
        transcription_model=settings.REALTIME_TRANSCRIPTION_MODEL,
    )


def preferences_for(*, user: AbstractBaseUser) -> Preferences:
    """The user's saved conversation settings, or the defaults when they saved none."""
    row = VoicePreferences.objects.filter(user=user).first()
    if row is None:
        return preferences_default()
    return Preferences(**{name: getattr(row, name) for name in PREFERENCE_FIELDS})
