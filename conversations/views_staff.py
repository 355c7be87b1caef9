"""Staff pages: the live sessions of every worker, and ending one. Staff only: others get 403 (anonymous: the login)."""
from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from . import selectors, services
from .outage import REDIS_DOWN


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Let staff through and refuse everyone else with 403 (LoginRequiredMiddleware sends anonymous users to log in)."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def _row_json(row: selectors.LiveRow) -> dict[str, Any]:
    return {
        "conversation_id": row.conversation_id,
        "username": row.username,
        "started": row.started.timestamp(),
        "started_label": timezone.localtime(row.started).strftime("%H:%M:%S"),
        "duration_s": row.duration_s,
        "tokens": row.tokens,
        "cost": None if row.cost is None else str(row.cost),
        "worker": row.worker,
        "deployment": row.deployment,
        "end_url": reverse("conversations:live_end", kwargs={"conversation_id": row.conversation_id}),
    }


@require_GET
@never_cache
@staff_required
def live_sessions(request: HttpRequest) -> HttpResponse:
    """Every live conversation across the workers; the page's script refreshes the table from `live_sessions_json`."""
    try:
        rows = selectors.live_sessions()
    except REDIS_DOWN:  # the registry is in Redis: say so, rather than fail the page
        return render(request, "conversations/staff_live.html", {"rows": [], "registry_unavailable": True}, status=503)
    return render(request, "conversations/staff_live.html", {"rows": rows})


@require_GET
@never_cache
@staff_required
def live_sessions_json(request: HttpRequest) -> JsonResponse:
    """The live list as JSON, for the page's refresh."""
    try:
        rows = selectors.live_sessions()
    except REDIS_DOWN:  # the page says it could not refresh, and tries again
        return JsonResponse({"error": "registry_unavailable"}, status=503)
    return JsonResponse({"rows": [_row_json(row) for row in rows]})


@require_POST
@staff_required
def live_end(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """End a live conversation wherever it runs; without `confirmed` (no script to ask) show a confirmation first."""
    if request.POST.get("confirmed") != "1":
        row = next((r for r in selectors.live_sessions() if r.conversation_id == str(conversation_id)), None)
        return render(request, "conversations/staff_live_end.html", {"conversation_id": conversation_id, "row": row})
    if services.live_conversation_end(conversation_id=conversation_id, by=request.user):
        messages.success(request, _("The conversation is being ended; it leaves the list in a moment."))
    else:
        messages.error(request, _("The worker holding that conversation could not be reached. Try again in a moment."))
    return redirect("conversations:live")
