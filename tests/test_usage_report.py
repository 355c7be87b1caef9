"""Usage reports add up the ledger in SQL: totals, every day in the site's time zone, each user, a few queries."""
from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations.selectors_usage import (
    DayRange,
    Figures,
    minutes,
    usage_conversations,
    usage_of_conversations,
    usage_report,
)

from .usage_seed import FIRST, LAST, TOKEN_KINDS, ZONE, Seed, local, seed

pytestmark = pytest.mark.django_db
RANGE = DayRange(FIRST, LAST)


@pytest.fixture
def seeded(settings, django_user_model) -> Seed:
    settings.TIME_ZONE = ZONE
    return seed(django_user_model)


def expected(s: Seed, *, user: str | None = None, day: datetime.date | None = None) -> dict:
    """The figures added up in Python from the values the seed wrote: the independent side of every check."""
    def keep(name: str, when: datetime.datetime) -> bool:
        local_day = when.astimezone(ZoneInfo(ZONE)).date()
        return s.in_range(when) and (user is None or name == user) and (day is None or local_day == day)

    rows = [fields for name, when, fields in s.usage if keep(name, when)]
    turns = [(role, ms) for name, when, role, ms in s.turns if keep(name, when)]
    figures = {kind: sum(r[kind] for r in rows) for kind in (*TOKEN_KINDS, "input_cached_tokens", "total_tokens")}
    figures |= {
        "cost": sum((r["cost"] for r in rows), Decimal(0)),
        "unpriced": sum(not r["priced"] for r in rows),
        "estimated": sum(r["estimated"] for r in rows),
        "user_ms": sum(ms for role, ms in turns if role == "user"),
        "assistant_ms": sum(ms for role, ms in turns if role == "assistant"),
        "conversations": sum(keep(name, when) for name, when in s.conversations),
    }
    return figures


FIELDS = (*TOKEN_KINDS, "input_cached_tokens", "total_tokens", "cost", "unpriced", "estimated", "user_ms",
          "assistant_ms", "conversations")


def as_dict(figures: Figures) -> dict:
    return {name: getattr(figures, name) for name in FIELDS}


def test_the_totals_equal_the_sums_of_the_seeded_ledger_within_the_range(seeded):
    report = usage_report(days_range=RANGE, per_user=True)
    assert as_dict(report.totals) == expected(seeded)
    # Spelled out once, so a mistake in `expected` cannot hide one in the report.
    assert report.totals.cost == Decimal("1.417900")
    assert (report.totals.user_ms, report.totals.assistant_ms) == (107_345, 133_000)
    assert (report.totals.conversations, report.totals.unpriced, report.totals.estimated) == (4, 1, 1)
    assert report.totals.input_cached_tokens == 420
    assert report.totals.user_minutes == Decimal("1.79")  # 107,345 ms


def test_every_day_of_the_range_is_there_and_quiet_days_are_zeros(seeded):
    report = usage_report(days_range=RANGE)
    assert [d.day for d in report.days] == [FIRST + datetime.timedelta(days=n) for n in range(7)]
    for day in report.days:
        assert as_dict(day.figures) == expected(seeded, day=day.day), day.day
    quiet = report.days[2]  # the 3rd
    assert quiet.day == datetime.date(2026, 3, 3) and quiet.figures == Figures()


def test_days_are_the_sites_days_not_utcs(seeded):
    days = {d.day.day: d.figures for d in usage_report(days_range=RANGE).days}
    # 00:30 on the 1st in Madrid is the 28th of February in UTC: it counts on the 1st.
    assert (days[1].conversations, days[1].user_ms, days[1].cost) == (1, 60_000, Decimal("1.234567"))
    # An answer at 00:10 on the 5th (23:10 on the 4th in UTC) counts on the 5th; the question before it on the 4th.
    assert (days[4].user_ms, days[4].assistant_ms, days[4].total_tokens) == (12_345, 0, 0)
    assert (days[5].assistant_ms, days[5].total_tokens, days[5].estimated) == (20_000, 1_310, 1)
    # Started at 23:50 on the last day, answered after midnight: the conversation counts, its usage does not.
    assert (days[7].conversations, days[7].user_ms, days[7].total_tokens) == (1, 0, 0)


def test_the_range_ends_are_midnights_in_the_sites_time_zone(seeded):
    # The 28th of February alone holds dee's first conversation and ends at a Madrid midnight.
    report = usage_report(days_range=DayRange(datetime.date(2026, 2, 28), datetime.date(2026, 2, 28)))
    assert (report.totals.conversations, report.totals.cost, report.totals.user_ms) == (1, Decimal("9.000000"), 1_000)
    report = usage_report(days_range=DayRange(datetime.date(2026, 3, 8), datetime.date(2026, 3, 8)))
    assert (report.totals.conversations, report.totals.cost, report.totals.user_ms) == (0, Decimal("7.000000"), 2_000)


def test_in_utc_the_same_rows_fall_on_other_days(settings, seeded):
    settings.TIME_ZONE = "UTC"
    days = {d.day.day: d.figures for d in usage_report(days_range=RANGE).days}
    assert days[1].conversations == 0 and days[4].assistant_ms == 20_000 and days[5].assistant_ms == 0


def test_each_user_has_their_own_sums_and_the_costliest_come_first(seeded):
    report = usage_report(days_range=RANGE, per_user=True)
    assert [u.username for u in report.users] == ["bob", "ada", "dee"]
    for row in report.users:
        assert row.user_id == seeded.users[row.username].pk
        assert as_dict(row.figures) == expected(seeded, user=row.username), row.username
    # The users' figures add up to the totals.
    assert sum((u.figures.cost for u in report.users), Decimal(0)) == report.totals.cost
    assert sum(u.figures.total_tokens for u in report.users) == report.totals.total_tokens


def test_one_users_report_counts_only_their_usage(seeded):
    report = usage_report(days_range=RANGE, user_id=seeded.users["ada"].pk)
    assert as_dict(report.totals) == expected(seeded, user="ada")
    for day in report.days:
        assert as_dict(day.figures) == expected(seeded, user="ada", day=day.day)
    assert report.users == []


def test_a_range_with_nothing_in_it_is_all_zeros():
    report = usage_report(days_range=DayRange(FIRST, FIRST + datetime.timedelta(days=2)), per_user=True)
    assert report.totals == Figures() and [d.figures for d in report.days] == [Figures()] * 3 and report.users == []
    assert report.totals.cost == Decimal("0.000000")


def test_the_report_takes_the_same_few_queries_however_many_rows(seeded, django_assert_max_num_queries):
    with CaptureQueriesContext(connection) as before:
        usage_report(days_range=RANGE, per_user=True)
    conversation = seeded.by_title["Planning a trip"]
    for n in range(30):
        seeded.response(conversation, local(3 + n % 4, 12, n), cost="0.000001", output_text_tokens=1)
        seeded.turn(conversation, "assistant", 100, local(3 + n % 4, 12, n))
    with django_assert_max_num_queries(10), CaptureQueriesContext(connection) as after:
        report = usage_report(days_range=RANGE, per_user=True)
    assert len(after.captured_queries) == len(before.captured_queries)
    assert report.totals.cost == Decimal("1.417930")


def test_a_users_conversations_in_range_have_their_figures_within_the_range(seeded, django_assert_max_num_queries):
    ada = seeded.users["ada"]
    with django_assert_max_num_queries(3):
        rows = usage_of_conversations(conversations=usage_conversations(user_id=ada.pk, days_range=RANGE),
                                      days_range=RANGE)
    assert [r.conversation.title for r in rows] == ["Unknown model", "Planning a trip"]
    trip = rows[1].figures
    assert (trip.user_ms, trip.assistant_ms, trip.total_tokens, trip.cost) == (42_345, 65_000, 4_460, Decimal("0.183333"))
    # Only the 5th: the trip was started before, but its continuation counts, with its figures of that day.
    fifth = DayRange(datetime.date(2026, 3, 5), datetime.date(2026, 3, 5))
    rows = usage_of_conversations(conversations=usage_conversations(user_id=ada.pk, days_range=fifth), days_range=fifth)
    assert [(r.conversation.title, r.figures.assistant_ms, r.figures.cost) for r in rows] == [
        ("Planning a trip", 20_000, Decimal("0.033333"))]


def test_minutes_are_rounded_half_up_to_a_hundredth():
    assert (minutes(0), minutes(299), minutes(300), minutes(90_000), minutes(8_970)) == (
        Decimal("0.00"), Decimal("0.00"), Decimal("0.01"), Decimal("1.50"), Decimal("0.15"))


def test_the_default_range_is_the_last_thirty_days_and_the_month_starts_on_the_first():
    today = datetime.date(2026, 3, 14)
    assert DayRange.last_days(30, today=today) == DayRange(datetime.date(2026, 2, 13), today)
    assert DayRange.month_of(today) == DayRange(datetime.date(2026, 3, 1), today)
