"""Template context shared by every page."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def realtime(request: HttpRequest) -> dict[str, Any]:
    """Tell every page whether the assistant is the built-in simulator, and whether sign-up is open."""
    return {
        "realtime_simulated": settings.REALTIME_SIMULATED,
        "realtime_deployment": settings.AZURE_OPENAI_DEPLOYMENT,
        "signup_enabled": settings.SIGNUP_ENABLED,
    }
