"""Reads: queries that views and consumers use, scoped to the user who asks."""
from __future__ import annotations

import dataclasses

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from .models import VoicePreferences
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
