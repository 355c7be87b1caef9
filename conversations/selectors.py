"""Reads: queries that views and consumers use, scoped to the user who asks."""
from __future__ import annotations

import dataclasses
import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from .models import Conversation, Turn, Usage, VoicePreferences
from .realtime.options import Preferences

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


def conversation_for(*, user: AbstractBaseUser, conversation_id: str) -> Conversation | None:
    """The user's own conversation with that id, or None for a malformed id or anyone else's conversation."""
    try:
        pk = uuid.UUID(str(conversation_id))
    except (TypeError, ValueError):
        return None
    return Conversation.objects.filter(user=user, pk=pk).first()


def turns_of(*, conversation: Conversation) -> QuerySet[Turn]:
    """The conversation's turns in order, each with `response_status` ("", "failed", "incomplete"…) from its usage row."""
    status = Usage.objects.filter(conversation=conversation, response_id=OuterRef("response_id")).values("status")[:1]
    return (
        Turn.objects.filter(conversation=conversation)
        .annotate(response_status=Coalesce(Subquery(status), Value("")))
        .order_by("position")
    )
