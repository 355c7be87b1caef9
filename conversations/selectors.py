"""Reads: queries that views and consumers use, scoped to the user who asks."""
from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from .models import Conversation, Turn, VoicePreferences
from .realtime.options import Preferences, transcription_model_for
from .relay.state import StoredTurn
from .upstream import transcription_models

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
    return _available_now(Preferences(**{name: getattr(row, name) for name in PREFERENCE_FIELDS}))


@dataclasses.dataclass(frozen=True)
class StoredConversation:
    """What the relay needs to continue a stored conversation."""

    id: Any
    dialect: str
    settings: dict[str, Any]
    turns: list[StoredTurn]


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
        )
        for t in conversation.turns.order_by("position")
    ]
    return StoredConversation(conversation.pk, conversation.dialect, conversation.settings, turns)


def conversation_for(*, user: AbstractBaseUser, conversation_id: str) -> Conversation | None:
    """The user's own conversation with that id, or None for a malformed id or anyone else's conversation."""
    try:
        pk = uuid.UUID(str(conversation_id))
    except (TypeError, ValueError):
        return None
    return Conversation.objects.filter(user=user, pk=pk).first()


def turns_of(*, conversation: Conversation) -> QuerySet[Turn]:
    """The conversation's turns in order of their place in it (each with its `status` and `status_reason`)."""
    return Turn.objects.filter(conversation=conversation).order_by("position")


def conversation_export(*, conversation: Conversation, exported_at: Any) -> dict[str, Any]:
    """The export document (docs/export-format.md) of one conversation, read in three queries."""
    from .models import Usage
    from .transfer.format import TOKEN_FIELDS, build_document

    row = {name: getattr(conversation, name) for name in (
        "id", "title", "started_at", "ended_at", "status", "provider", "deployment", "dialect", "settings", "error")}
    turns = Turn.objects.filter(conversation=conversation).order_by("position").values(
        "role", "position", "text", "created_at", "interrupted", "audio_ms", "status", "status_reason", "response_id")
    usage = Usage.objects.filter(conversation=conversation).order_by("created_at", "pk").values(
        "response_id", "model", "status", *TOKEN_FIELDS, "estimated", "created_at")
    return build_document(conversation=row, turns=turns, usage=usage, exported_at=exported_at)


def conversations_to_export(*, user: AbstractBaseUser) -> QuerySet[Conversation]:
    """All of the user's conversations, oldest first, for "export all"."""
    return Conversation.objects.filter(user=user).order_by("started_at", "pk")


def conversation_ids_imported(*, user: AbstractBaseUser, original_ids: list[str]) -> set[str]:
    """Which of these exported ids this user has already imported."""
    return set(
        Conversation.objects.filter(user=user, imported_from__in=original_ids).values_list("imported_from", flat=True)
    )
