"""Reads for limits: a user's effective limits and what the ledger says they used in the current windows."""
from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from .limits import LIMIT_FIELDS, Limits, Totals, day_window, month_window, resolve, site_limits
from .models import GroupLimits, Turn, Usage, UserLimits


def site_default_limits() -> Limits:
    """The site's defaults from the LIMIT_* settings."""
    return site_limits({
        "max_concurrent": settings.LIMIT_CONCURRENT_CONVERSATIONS,
        "new_per_hour": settings.LIMIT_NEW_CONVERSATIONS_PER_HOUR,
        "audio_minutes_per_day": settings.LIMIT_AUDIO_MINUTES_PER_DAY,
        "cost_per_day_usd": settings.LIMIT_COST_PER_DAY_USD,
        "cost_per_month_usd": settings.LIMIT_COST_PER_MONTH_USD,
        "max_conversation_minutes": settings.LIMIT_CONVERSATION_MINUTES,
    })


def limits_for_user(*, user_id: Any) -> Limits:
    """The limits that apply to one user: their own row, else their groups' (most generous), else the site's."""
    own = UserLimits.objects.filter(user_id=user_id).values(*LIMIT_FIELDS).first()
    groups = list(GroupLimits.objects.filter(group__user__id=user_id).values(*LIMIT_FIELDS))
    return resolve(site_default_limits(), groups, own)


def site_time_zone() -> ZoneInfo:
    """The time zone the daily and monthly windows follow (TIME_ZONE)."""
    return ZoneInfo(settings.TIME_ZONE)


def ledger_totals(*, user_id: Any, now: datetime.datetime | None = None) -> Totals:
    """What the database records for a user in today's and this month's windows (one aggregate per sum)."""
    now, tz = now or timezone.now(), site_time_zone()
    day, month = day_window(now, tz), month_window(now, tz)
    audio = Turn.objects.filter(conversation__user_id=user_id, created_at__gte=day.start, created_at__lt=day.end
                                ).aggregate(ms=Sum("audio_ms"))["ms"] or 0
    costs = Usage.objects.filter(conversation__user_id=user_id, created_at__gte=month.start, created_at__lt=month.end)
    month_cost = costs.aggregate(usd=Sum("cost"))["usd"] or Decimal(0)
    day_cost = costs.filter(created_at__gte=day.start, created_at__lt=day.end).aggregate(usd=Sum("cost"))["usd"] or Decimal(0)
    return Totals(int(audio), day_cost, month_cost)


def users_with_usage(*, now: datetime.datetime | None = None) -> list[Any]:
    """Ids of users with usage or audio this month (whose counters a rebuild writes)."""
    now, tz = now or timezone.now(), site_time_zone()
    month = month_window(now, tz)
    with_cost = Usage.objects.filter(created_at__gte=month.start, created_at__lt=month.end
                                     ).values_list("conversation__user_id", flat=True).distinct()
    with_audio = Turn.objects.filter(created_at__gte=month.start, created_at__lt=month.end
                                     ).values_list("conversation__user_id", flat=True).distinct()
    return sorted(set(with_cost) | set(with_audio))
