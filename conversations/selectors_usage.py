"""Reads for usage reports: totals, per day and per user over a range of days, aggregated in SQL.

Each figure is counted on the day it happened in the site's TIME_ZONE: tokens and cost on the day the
usage row was written (the response's end), audio minutes on the day of their turn, conversations on
the day they started. A conversation continued a week later adds to that later day, so a finished
day's figures never change afterwards.
"""
from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, DecimalField, F, Func, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from .models import Conversation, Turn, Usage

TOKEN_FIELDS = (
    "input_text_tokens", "input_audio_tokens", "input_cached_tokens", "input_cached_text_tokens",
    "input_cached_audio_tokens", "output_text_tokens", "output_audio_tokens", "total_tokens",
)
MS_PER_MINUTE = Decimal(60_000)
MINUTE_PLACES = Decimal("0.01")  # minutes are shown (and exported) to a hundredth
COST = DecimalField(max_digits=16, decimal_places=6)  # as stored, summed exactly
ZERO_COST = Decimal("0.000000")


def minutes(ms: int) -> Decimal:
    """Milliseconds of audio as minutes to a hundredth, rounded half up (how pages and CSV show them)."""
    return (Decimal(ms) / MS_PER_MINUTE).quantize(MINUTE_PLACES, rounding=ROUND_HALF_UP)


@dataclasses.dataclass(frozen=True)
class DayRange:
    """Whole days from `start` to `end`, both included, in the site's time zone."""

    start: datetime.date
    end: datetime.date

    def bounds(self) -> tuple[datetime.datetime, datetime.datetime]:
        """The first instant of `start` and of the day after `end`, as aware datetimes (a half-open interval)."""
        zone = timezone.get_default_timezone()
        first = datetime.datetime.combine(self.start, datetime.time.min)
        after = datetime.datetime.combine(self.end + datetime.timedelta(days=1), datetime.time.min)
        return timezone.make_aware(first, zone), timezone.make_aware(after, zone)

    def days(self) -> list[datetime.date]:
        """Every day of the range, in order."""
        return [self.start + datetime.timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    @classmethod
    def last_days(cls, count: int, *, today: datetime.date | None = None) -> DayRange:
        """The `count` days up to and including today (the site's today)."""
        today = today or site_today()
        return cls(today - datetime.timedelta(days=count - 1), today)

    @classmethod
    def month_of(cls, day: datetime.date) -> DayRange:
        """The month of `day` from its first day up to `day` itself."""
        return cls(day.replace(day=1), day)


def site_today() -> datetime.date:
    """Today in the site's TIME_ZONE (not the visitor's): the days of every report are the site's days."""
    return timezone.localdate(timezone=timezone.get_default_timezone())


@dataclasses.dataclass(frozen=True)
class Figures:
    """What was used in some stretch of time: conversations, audio, tokens by kind, and their cost."""

    conversations: int = 0
    user_ms: int = 0
    assistant_ms: int = 0
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    input_cached_tokens: int = 0  # part of the input counts above, billed at the cached price
    input_cached_text_tokens: int = 0
    input_cached_audio_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0
    total_tokens: int = 0
    cost: Decimal = ZERO_COST  # USD as stored; usage without a price counts 0
    unpriced: int = 0  # usage rows without a price: the cost leaves them out
    estimated: int = 0  # usage rows counted by the app because the service never reported them

    @property
    def user_minutes(self) -> Decimal:
        return minutes(self.user_ms)

    @property
    def assistant_minutes(self) -> Decimal:
        return minutes(self.assistant_ms)

    @property
    def input_tokens(self) -> int:
        return self.input_text_tokens + self.input_audio_tokens

    @property
    def output_tokens(self) -> int:
        return self.output_text_tokens + self.output_audio_tokens

    @classmethod
    def of(cls, *rows: Mapping[str, Any] | None) -> Figures:
        """Figures from aggregate rows (dicts from `.values().annotate()` or `.aggregate()`); missing ones are 0."""
        names = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for row in rows:
            values.update({k: v for k, v in (row or {}).items() if k in names and v is not None})
        if "cost" in values:
            # PostgreSQL sums to the column's places; SQLite's sum comes back with 15 digits (and a float's error).
            values["cost"] = Decimal(values["cost"]).quantize(ZERO_COST, rounding=ROUND_HALF_UP)
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class DayFigures:
    """One day's figures."""

    day: datetime.date
    figures: Figures


@dataclasses.dataclass(frozen=True)
class UserFigures:
    """One user's figures over the range."""

    user_id: int
    username: str
    figures: Figures


@dataclasses.dataclass(frozen=True)
class UsageReport:
    """Totals, every day of the range (zero where nothing happened) and, for the whole site, each user."""

    days_range: DayRange
    totals: Figures
    days: list[DayFigures]
    users: list[UserFigures] = dataclasses.field(default_factory=list)


def _usage_sums() -> dict[str, Any]:
    sums: dict[str, Any] = {name: Coalesce(Sum(name), 0) for name in TOKEN_FIELDS}
    sums["cost"] = Coalesce(Sum("cost"), Value(ZERO_COST), output_field=COST)
    sums["unpriced"] = Count("pk", filter=Q(priced=False))
    sums["estimated"] = Count("pk", filter=Q(estimated=True))
    return sums


def _turn_sums() -> dict[str, Any]:
    return {
        "user_ms": Coalesce(Sum("audio_ms", filter=Q(role=Turn.Role.USER)), 0),
        "assistant_ms": Coalesce(Sum("audio_ms", filter=Q(role=Turn.Role.ASSISTANT)), 0),
    }


def _sources(days_range: DayRange, user_id: int | None) -> tuple[QuerySet, QuerySet, QuerySet]:
    """Usage, turns and conversations in the range (of one user, if given), unordered for grouping."""
    first, after = days_range.bounds()
    usage = Usage.objects.filter(created_at__gte=first, created_at__lt=after)
    turns = Turn.objects.filter(created_at__gte=first, created_at__lt=after)
    conversations = Conversation.objects.filter(started_at__gte=first, started_at__lt=after)
    if user_id is not None:
        usage = usage.filter(conversation__user_id=user_id)
        turns = turns.filter(conversation__user_id=user_id)
        conversations = conversations.filter(user_id=user_id)
    # The models' default orderings would join the GROUP BY and split every group.
    return usage.order_by(), turns.order_by(), conversations.order_by()


def _grouped(querysets: Iterable[tuple[QuerySet, str | Func, dict[str, Any]]]) -> dict[Any, dict[str, Any]]:
    """Run each grouped aggregate (queryset, what to group by, sums) and merge their rows by group."""
    merged: dict[Any, dict[str, Any]] = {}
    for queryset, group, sums in querysets:
        expression = F(group) if isinstance(group, str) else group
        for row in queryset.values(bucket=expression).annotate(**sums).order_by():
            merged.setdefault(row.pop("bucket"), {}).update(row)
    return merged


def usage_report(*, days_range: DayRange, user_id: int | None = None, per_user: bool = False) -> UsageReport:
    """Totals and per-day figures over the range, and per-user ones when asked; a fixed number of queries.

    With `user_id`, only that user's usage counts (their own usage page). Users come ordered by cost,
    then by audio minutes, most first.
    """
    usage, turns, conversations = _sources(days_range, user_id)
    totals = Figures.of(
        usage.aggregate(**_usage_sums()),
        turns.aggregate(**_turn_sums()),
        conversations.aggregate(conversations=Count("pk")),
    )

    zone = timezone.get_default_timezone()
    by_day = _grouped([
        (usage, TruncDate("created_at", tzinfo=zone), _usage_sums()),
        (turns, TruncDate("created_at", tzinfo=zone), _turn_sums()),
        (conversations, TruncDate("started_at", tzinfo=zone), {"conversations": Count("pk")}),
    ])
    # The gaps are filled over the range's dates, not over rows: a quiet day is a row of zeros.
    days = [DayFigures(day, Figures.of(by_day.get(day))) for day in days_range.days()]

    users: list[UserFigures] = []
    if per_user:
        by_user = _grouped([
            (usage, "conversation__user_id", _usage_sums()),
            (turns, "conversation__user_id", _turn_sums()),
            (conversations, "user_id", {"conversations": Count("pk")}),
        ])
        names = dict(get_user_model().objects.filter(pk__in=by_user).values_list("pk", "username"))
        users = [UserFigures(pk, names.get(pk, ""), Figures.of(row)) for pk, row in by_user.items()]
        users.sort(key=lambda u: (-u.figures.cost, -(u.figures.user_ms + u.figures.assistant_ms), u.username))
    return UsageReport(days_range, totals, days, users)


@dataclasses.dataclass(frozen=True)
class ConversationFigures:
    """One conversation and what it used within the range."""

    conversation: Conversation
    figures: Figures


def usage_conversations(*, user_id: int, days_range: DayRange) -> QuerySet[Conversation]:
    """The user's conversations that started, or had a turn or a usage row, within the range; newest first."""
    first, after = days_range.bounds()
    in_range = {"created_at__gte": first, "created_at__lt": after}
    active = Q(started_at__gte=first, started_at__lt=after)
    active |= Q(pk__in=Turn.objects.filter(conversation__user_id=user_id, **in_range).values("conversation_id"))
    active |= Q(pk__in=Usage.objects.filter(conversation__user_id=user_id, **in_range).values("conversation_id"))
    return Conversation.objects.filter(active, user_id=user_id).order_by("-started_at", "pk")


def usage_of_conversations(
    *, conversations: Iterable[Conversation], days_range: DayRange
) -> list[ConversationFigures]:
    """Each conversation's audio minutes, tokens and cost within the range (two queries for any number)."""
    conversations = list(conversations)
    first, after = days_range.bounds()
    ids = [c.pk for c in conversations]
    in_range = {"conversation_id__in": ids, "created_at__gte": first, "created_at__lt": after}
    by_conversation = _grouped([
        (Usage.objects.filter(**in_range).order_by(), "conversation_id", _usage_sums()),
        (Turn.objects.filter(**in_range).order_by(), "conversation_id", _turn_sums()),
    ])
    return [ConversationFigures(c, Figures.of(by_conversation.get(c.pk))) for c in conversations]


def usage_conversation(*, conversation_id: Any) -> Conversation | None:
    """Any user's conversation with its owner, for staff reading a transcript; None when there is none."""
    return Conversation.objects.select_related("user").filter(pk=conversation_id).first()


def usage_user(*, user_id: int) -> Any:
    """The user with this id, or None."""
    return get_user_model().objects.filter(pk=user_id).first()
