"""System checks for realtime configuration mistakes that would otherwise surface mid-conversation."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register

from .realtime.client import GA, azure_dialect


@register()
def realtime_settings_check(app_configs: Any, **kwargs: Any) -> list[Any]:
    """Warn about endpoint and dialect settings that cannot work."""
    problems: list[Any] = []
    version = settings.AZURE_OPENAI_API_VERSION
    if version == "2024-10-01-preview":
        problems.append(
            Error(
                "AZURE_OPENAI_API_VERSION=2024-10-01-preview is retired by Azure.",
                hint="Unset it to use the GA /openai/v1/realtime path, or use 2025-04-01-preview.",
                id="conversations.E001",
            )
        )
    elif version and azure_dialect(version) == GA:
        problems.append(
            Warning(
                f"AZURE_OPENAI_API_VERSION={version} is ignored: only a -preview version selects the preview "
                "path; the GA /openai/v1/realtime path takes no api-version.",
                hint="Unset AZURE_OPENAI_API_VERSION, or set a preview version such as 2025-04-01-preview "
                "for an older gpt-4o-realtime-preview deployment.",
                id="conversations.W003",
            )
        )
    if settings.AZURE_OPENAI_ENDPOINT and not settings.AZURE_OPENAI_DEPLOYMENT:
        problems.append(
            Error("AZURE_OPENAI_DEPLOYMENT is empty.", hint="Name your realtime deployment.", id="conversations.E002")
        )
    if settings.AZURE_OPENAI_ENDPOINT and not settings.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT.strip():
        problems.append(
            Warning(
                "AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT is empty: what users say will not be transcribed.",
                hint="Deploy a transcription model (whisper, gpt-4o-mini-transcribe) and set its deployment name.",
                id="conversations.W004",
            )
        )
    if settings.AZURE_OPENAI_ENDPOINT and settings.OPENAI_API_KEY:
        problems.append(
            Warning(
                "Both AZURE_OPENAI_ENDPOINT and OPENAI_API_KEY are set; Azure is used.",
                id="conversations.W001",
            )
        )
    if settings.REDIS_URL == "" and not settings.DEBUG:
        problems.append(
            Warning(
                "REDIS_URL is not set: channel layers and throttling counters are per process.",
                hint="Set REDIS_URL when running more than one process.",
                id="conversations.W002",
            )
        )
    return problems
