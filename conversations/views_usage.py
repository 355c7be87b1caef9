"""Usage pages: the staff dashboard (totals, per day, per user, CSV, drill-down) and each user's own month."""
from __future__ import annotations

import csv
import functools
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from . import selectors, selectors_usage
from .forms import UsageRangeForm
from .selectors_usage import DayRange, Figures, UsageReport

CHART_USERS = 10  # the per-user chart shows the biggest spenders; the table under it shows everyone
CONVERSATIONS_PAGE_SIZE = 50


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Let staff through; anyone else signed in gets a 403 (LoginRequiredMiddleware sends the anonymous to log in)."""
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise PermissionDenied("Staff only.")
        return view(request, *args, **kwargs)
    return wrapped


def _range_form(request: HttpRequest) -> UsageRangeForm:
    return UsageRangeForm(request.GET, today=selectors_usage.site_today())


def _days_range(form: UsageRangeForm) -> DayRange:
    return DayRange(form.cleaned_data["from"], form.cleaned_data["to"])


def chart_data(report: UsageReport) -> dict[str, Any]:
    """The figures the charts draw, for `json_script` (costs as strings so no digit is lost on the way)."""
    def row(figures: Figures) -> dict[str, Any]:
        return {
            "input": figures.input_tokens - figures.input_cached_tokens,
            "cached": figures.input_cached_tokens,
            "output": figures.output_tokens,
            "cost": str(figures.cost),
            "userMs": figures.user_ms,
            "assistantMs": figures.assistant_ms,
        }
    return {
        "days": [{"day": d.day.isoformat(), **row(d.figures)} for d in report.days],
        "users": [{"name": u.username, **row(u.figures)} for u in report.users[:CHART_USERS]],
    }


@require_GET
@staff_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Totals, a chart and table per day and per user over a range of days, with links to each user's list."""
    form = _range_form(request)
    if not form.is_valid():
        return render(request, "usage/dashboard.html", {"form": form}, status=400)
    report = selectors_usage.usage_report(days_range=_days_range(form), per_user=True)
    context = {"form": form, "report": report, "chart_data": chart_data(report), "chart_users": CHART_USERS,
               "time_zone": settings.TIME_ZONE}
    return render(request, "usage/dashboard.html", context)


CSV_FIGURES = (
    "conversations", "user_minutes", "assistant_minutes", *selectors_usage.TOKEN_FIELDS,
    "cost", "unpriced", "estimated",
)
CSV_HEADER = ("section", "day", "user_id", "username", *CSV_FIGURES)


def _csv_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula ("=…", "+…", "-…", "@…") is quoted with an apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@require_GET
@staff_required
def dashboard_csv(request: HttpRequest) -> HttpResponse:
    """The dashboard's figures as CSV: a header row, the totals, each day, each user (the same numbers as the page)."""
    form = _range_form(request)
    if not form.is_valid():
        errors = "; ".join(str(e) for errors in form.errors.values() for e in errors)
        return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
    days_range = _days_range(form)
    report = selectors_usage.usage_report(days_range=days_range, per_user=True)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"usage-{days_range.start.isoformat()}-{days_range.end.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(CSV_HEADER)

    def write(section: str, day: str, user_id: Any, username: str, figures: Figures) -> None:
        writer.writerow([section, day, user_id, _csv_cell(username), *(getattr(figures, f) for f in CSV_FIGURES)])

    write("total", "", "", "", report.totals)
    for day in report.days:
        write("day", day.day.isoformat(), "", "", day.figures)
    for user in report.users:
        write("user", "", user.user_id, user.username, user.figures)
    return response


@require_GET
@staff_required
def user_conversations(request: HttpRequest, user_id: int) -> HttpResponse:
    """One user's conversations with activity in the range, each with its minutes, tokens and cost in the range."""
    owner = selectors_usage.usage_user(user_id=user_id)
    if owner is None:
        raise Http404("No such user.")
    form = _range_form(request)
    if not form.is_valid():
        return render(request, "usage/user.html", {"form": form, "owner": owner}, status=400)
    days_range = _days_range(form)
    page = Paginator(selectors_usage.usage_conversations(user_id=owner.pk, days_range=days_range),
                     CONVERSATIONS_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "owner": owner,
        "page": page,
        "rows": selectors_usage.usage_of_conversations(conversations=page.object_list, days_range=days_range),
        "report": selectors_usage.usage_report(days_range=days_range, user_id=owner.pk),
    }
    return render(request, "usage/user.html", context)


@require_GET
@staff_required
def conversation_transcript(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """Any user's conversation as a read-only transcript for staff: no continue, rename, export or delete."""
    conversation = selectors_usage.usage_conversation(conversation_id=conversation_id)
    if conversation is None:
        raise Http404("No such conversation.")
    context = {"conversation": conversation, "transcript": selectors.transcript_of(conversation=conversation)}
    return render(request, "usage/conversation.html", context)


@require_GET
def my_usage(request: HttpRequest) -> HttpResponse:
    """The signed-in user's own usage this month, per day: audio minutes, tokens and estimated cost."""
    days_range = DayRange.month_of(selectors_usage.site_today())
    report = selectors_usage.usage_report(days_range=days_range, user_id=request.user.pk)
    return render(request, "usage/mine.html", {"report": report})
