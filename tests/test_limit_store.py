"""The limit counters: atomic across concurrent writers in real Redis, and the same rules on the cache without it."""
import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from conversations.limits import Totals

pytestmark = pytest.mark.asyncio
# Real Redis expires a window's keys at the window's real end, so the tests' clock must be in the future:
# noon on the 2nd of next month (its next day is in the same month).
_next_month = (datetime.now(timezone.utc).replace(day=1) + timedelta(days=32)).replace(day=1)
NOW = _next_month.replace(day=2, hour=12, minute=0, second=0, microsecond=0)


@pytest.fixture
def store(limit_store):
    """The limits' store, on real Redis and on the cache (tests/conftest.py)."""
    return limit_store


async def test_a_user_not_in_the_store_has_no_totals_until_seeded(store):
    assert await store.totals(7, NOW) is None
    await store.seed(7, Totals(1000, Decimal("0.5"), Decimal("2.25")), NOW)
    assert await store.totals(7, NOW) == Totals(1000, Decimal("0.5"), Decimal("2.25"))


async def test_seeding_never_overwrites_what_another_worker_counted(store):
    await store.seed(7, Totals(), NOW)
    await store.add(7, audio_ms=500, now=NOW)
    await store.seed(7, Totals(), NOW)
    assert (await store.totals(7, NOW)).audio_ms_today == 500


async def test_concurrent_additions_are_all_counted_exactly(store):
    await store.seed(7, Totals(), NOW)
    await asyncio.gather(*(store.add(7, audio_ms=40, cost=Decimal("0.000123"), now=NOW) for _ in range(200)))
    assert await store.totals(7, NOW) == Totals(8000, Decimal("0.0246"), Decimal("0.0246"))


async def test_a_new_day_starts_from_zero_but_the_month_goes_on(store):
    await store.seed(7, Totals(), NOW)
    await store.add(7, audio_ms=100, cost=Decimal(1), now=NOW)
    tomorrow = NOW.replace(day=3, hour=0, minute=0, second=1)
    totals = await store.add(7, audio_ms=1, cost=Decimal(1), now=tomorrow)
    assert totals == Totals(1, Decimal(1), Decimal(2))


async def test_live_slots_stop_at_the_limit_and_free_up_when_released(store):
    assert await store.claim(7, "a", 2) is None
    assert await store.claim(7, "b", 2) is None
    assert await store.claim(7, "c", 2) == 2
    assert await store.claim(7, "a", 2) is None  # refreshing a slot one holds is never refused
    await store.release(7, "a")
    assert await store.claim(7, "c", 2) is None


async def test_simultaneous_claims_never_exceed_the_limit(store):
    results = await asyncio.gather(*(store.claim(7, f"s{i}", 3) for i in range(20)))
    assert sum(r is None for r in results) == 3


async def test_the_hourly_window_refuses_past_its_count_and_says_when(store):
    assert await store.hit_new(7, 2) is None
    assert await store.hit_new(7, 2) is None
    resets_at = await store.hit_new(7, 2)
    assert resets_at is not None and 3500 < resets_at.timestamp() - datetime.now(timezone.utc).timestamp() <= 3660
