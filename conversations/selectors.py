"""Reads: queries that views and consumers use, scoped to the user who asks."""
from __future__ import annotations

import dataclasses

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from .models import VoicePreferences
from .realtime.options import Preferences, transcription_model_for
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
    row = VoicePreferences.objects.filter(user=user).first()
    if row is None:
        return preferences_default()
    return _available_now(Preferences(**{name: getattr(row, name) for name in PREFERENCE_FIELDS}))
