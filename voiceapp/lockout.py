"""The login page's answer while too many wrong passwords have locked an account for one address."""
from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None,
                     credentials: dict[str, Any] | None = None) -> HttpResponse:
    """Say in plain words that sign-in is paused and until when (django-axes' AXES_LOCKOUT_CALLABLE)."""
    cool_off = settings.AXES_COOLOFF_TIME
    # Every attempt while locked starts the cool-off again (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT),
    # this one included, so the account opens again one cool-off from now.
    retry_at = timezone.now() + cool_off
    response = render(request, "registration/locked_out.html", {
        "retry_at": retry_at,
        "minutes": math.ceil(cool_off.total_seconds() / 60),
        "next": request.POST.get("next", "") or request.GET.get("next", ""),
    }, status=settings.AXES_HTTP_RESPONSE_CODE)
    response["Retry-After"] = str(math.ceil(cool_off.total_seconds()))
    return response
