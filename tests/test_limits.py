"""The limit rules as pure code: which limit applies to whom, and when each window resets."""
from datetime import datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from conversations.limits import (
    Limits,
    Totals,
    day_window,
    levels,
    month_window,
    over_budget,
    resolve,
    site_limits,
    too_many_new,
    when_text,
)

SITE = site_limits({"max_concurrent": 3, "new_per_hour": 0, "audio_minutes_per_day": 30,
                    "cost_per_day_usd": 0, "cost_per_month_usd": 20, "max_conversation_minutes": 0})
BERLIN = ZoneInfo("Europe/Berlin")


def test_zero_in_settings_means_unlimited():
    assert SITE == Limits(max_concurrent=3, audio_minutes_per_day=Decimal(30), cost_per_month_usd=Decimal(20))


def test_with_no_rows_the_site_defaults_apply():
    assert resolve(SITE, [], None) == SITE


def test_a_users_own_value_beats_their_groups_and_the_site():
    limits = resolve(SITE, [{"max_concurrent": 5}], {"max_concurrent": 1, "new_per_hour": None})
    assert limits.max_concurrent == 1


def test_a_group_value_beats_the_site_and_empty_fields_inherit():
    limits = resolve(SITE, [{"audio_minutes_per_day": Decimal("60.00"), "max_concurrent": None}], None)
    assert limits.audio_minutes_per_day == 60 and limits.max_concurrent == 3


def test_of_several_groups_the_most_generous_wins_and_zero_is_unlimited():
    assert resolve(SITE, [{"max_concurrent": 2}, {"max_concurrent": 4}], None).max_concurrent == 4
    assert resolve(SITE, [{"max_concurrent": 2}, {"max_concurrent": 0}], None).max_concurrent is None


def test_a_user_row_with_zero_lifts_a_site_limit():
    assert resolve(SITE, [], {"cost_per_month_usd": Decimal(0)}).cost_per_month_usd is None


def test_the_day_ends_at_local_midnight_in_the_site_time_zone():
    now = datetime(2026, 3, 28, 23, 30, tzinfo=timezone.utc)  # already the 29th in Berlin
    day = day_window(now, BERLIN)
    assert day.key == "2026-03-29"
    assert day.end == datetime(2026, 3, 30, 0, 0, tzinfo=BERLIN)
    assert day.end.timestamp() - day.start.timestamp() == 23 * 3600  # the clocks go forward that night


def test_the_month_window_rolls_over_the_year():
    month = month_window(datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc), BERLIN)
    assert month.key == "2027-01"  # half past midnight on New Year's Day in Berlin
    assert month.end == datetime(2027, 2, 1, tzinfo=BERLIN)


def test_a_start_over_the_daily_audio_limit_is_refused_with_the_reset_time():
    now = datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc)
    verdict = over_budget(SITE, Totals(audio_ms_today=30 * 60_000), now, BERLIN)
    assert verdict.limit == "audio_per_day"
    assert verdict.message == "You have reached your daily audio limit (30 minutes); it resets tomorrow at 00:00."
    assert verdict.resets_at == datetime(2026, 11, 26, tzinfo=BERLIN)
    assert verdict.browser_message("error")["resets_at"] == "2026-11-26T00:00:00+01:00"


def test_the_monthly_cost_limit_names_the_date_it_resets():
    now = datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc)
    verdict = over_budget(SITE, Totals(cost_month=Decimal("20.000001")), now, BERLIN)
    assert verdict.limit == "cost_per_month" and "on 2026-12-01 at 00:00" in verdict.message


def test_under_every_limit_nothing_is_refused_and_shares_are_reported():
    totals = Totals(audio_ms_today=27 * 60_000, cost_month=Decimal(1))
    assert over_budget(SITE, totals, datetime.now(timezone.utc), BERLIN) is None
    assert levels(SITE, totals) == {"audio_per_day": 0.9, "cost_per_month": 0.05}


def test_the_hourly_refusal_says_when_another_can_start():
    now = datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc)
    verdict = too_many_new(Limits(new_per_hour=2), datetime(2026, 11, 25, 15, 41, tzinfo=BERLIN), now, BERLIN)
    assert verdict.message.endswith("you can start another at 15:41.")
    assert when_text(datetime(2026, 11, 25, 15, 41, tzinfo=BERLIN), now, BERLIN) == "at 15:41"
