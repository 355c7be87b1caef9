"""The deployment's cap and cool-down: atomic in real Redis across concurrent claims, the same rules on the cache."""
import asyncio
import random
import time

import pytest

from conversations import capacity
from conversations.capacity import Busy, DeploymentGate, full_wait, rate_limits_wait
from conversations.limits import SLOT_TTL_S


@pytest.fixture
def store(limit_store):
    """The limits' store, on real Redis and on the cache (tests/conftest.py)."""
    return limit_store


def _gate(store, deployment="gpt-realtime"):
    return DeploymentGate(store, provider="azure", deployment=deployment)


@pytest.mark.asyncio
async def test_a_cap_of_one_refuses_a_second_slot_with_a_wait_until_the_first_is_released(store):
    gate = _gate(store)
    assert await gate.claim("a", 1, full_wait_s=20) is None
    busy = await gate.claim("b", 1, full_wait_s=20)
    assert busy.reason == "full" and 15 <= busy.retry_after_s <= 25
    assert busy.message == f"The voice service is busy right now; try again in {busy.retry_after_s} s."
    await gate.release("a")
    assert await gate.claim("b", 1, full_wait_s=20) is None
    assert await gate.held() == 1


@pytest.mark.asyncio
async def test_zero_means_unlimited_and_each_deployment_has_its_own_slots(store):
    gate, other = _gate(store), _gate(store, "gpt-realtime-mini")
    for n in range(5):
        assert await gate.claim(f"s{n}", 0, full_wait_s=15) is None
    assert await gate.held() == 5
    assert await other.claim("x", 1, full_wait_s=15) is None


@pytest.mark.asyncio
async def test_concurrent_claims_never_exceed_the_cap(store):
    gate = _gate(store)
    results = await asyncio.gather(*(gate.claim(f"s{n}", 3, full_wait_s=15) for n in range(40)))
    assert sum(r is None for r in results) == 3
    assert await gate.held() == 3


@pytest.mark.asyncio
async def test_the_slots_of_a_holder_that_crashed_expire_by_themselves(store, monkeypatch):
    gate = _gate(store)
    assert await gate.claim("crashed", 1, full_wait_s=15) is None  # never refreshed, never released
    later = time.time() + SLOT_TTL_S + 1
    monkeypatch.setattr(capacity.time, "time", lambda: later)
    assert await gate.claim("next", 1, full_wait_s=15) is None


@pytest.mark.asyncio
async def test_a_refreshed_slot_outlives_its_first_expiry(store, monkeypatch):
    gate, start = _gate(store), time.time()
    assert await gate.claim("alive", 1, full_wait_s=15) is None
    monkeypatch.setattr(capacity.time, "time", lambda: start + SLOT_TTL_S - 10)
    await gate.refresh("alive")
    monkeypatch.setattr(capacity.time, "time", lambda: start + SLOT_TTL_S + 10)
    assert (await gate.claim("next", 1, full_wait_s=15)).reason == "full"


@pytest.mark.asyncio
async def test_a_cool_down_refuses_every_claim_with_the_seconds_left_then_lifts(store, monkeypatch):
    gate, start = _gate(store), time.time()
    monkeypatch.setattr(capacity.time, "time", lambda: start)
    await gate.cool_down(12)
    busy = await gate.claim("a", 0, full_wait_s=15)
    assert busy == Busy("cooling", 12)
    assert await gate.held() == 0  # nothing taken by a refusal
    monkeypatch.setattr(capacity.time, "time", lambda: start + 4.5)
    assert (await gate.claim("a", 0, full_wait_s=15)).retry_after_s == 8
    monkeypatch.setattr(capacity.time, "time", lambda: start + 12.5)
    assert await gate.claim("a", 0, full_wait_s=15) is None


@pytest.mark.asyncio
async def test_a_shorter_cool_down_never_cuts_a_longer_one(store):
    gate = _gate(store)
    long_end = await gate.cool_down(30)
    assert await gate.cool_down(5) == pytest.approx(long_end)
    assert await gate.cooling_until() == pytest.approx(long_end)


@pytest.mark.asyncio
async def test_a_cool_down_is_capped_so_one_report_cannot_shut_admission_for_long(store):
    gate = _gate(store)
    until = await gate.cool_down(86_400)
    assert until - time.time() <= capacity.MAX_COOL_DOWN_S + 1


def test_the_wait_when_full_is_the_backoff_with_jitter():
    waits = {full_wait(20, random.Random(seed)) for seed in range(50)}
    assert min(waits) >= 15 and max(waits) <= 25 and len(waits) > 3


@pytest.mark.parametrize(("limits", "wait"), [
    ([{"name": "requests", "limit": 100, "remaining": 0, "reset_seconds": 12.5}], 12.5),
    ([{"name": "tokens", "limit": 100000, "remaining": 1500, "reset_seconds": 3}], 3.0),
    ([{"name": "requests", "limit": 100, "remaining": 0, "reset_seconds": 0.2}], 1.0),
    ([{"name": "requests", "limit": 100, "remaining": 0, "reset_seconds": 4},
      {"name": "tokens", "limit": 1000, "remaining": 0, "reset_seconds": 9}], 9.0),
    ([{"name": "requests", "limit": 10000, "remaining": 9999, "reset_seconds": 0.006}], None),
    ([{"name": "tokens", "limit": 100000, "remaining": 5000, "reset_seconds": 3}], None),
    ([{"name": "other", "limit": 10, "remaining": 0, "reset_seconds": 3}], None),
    ([{"name": "requests", "limit": "x", "remaining": 0, "reset_seconds": 3}, "junk"], None),
    ([], None),
])
def test_rate_limits_near_zero_slow_admission_until_they_reset(limits, wait):
    assert rate_limits_wait(limits) == wait
