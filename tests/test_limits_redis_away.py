"""Limits while Redis is unreachable: new conversations are admitted on this process's own counters, the budgets
still hold (seeded from the database's ledger), and a conversation's counting moves back to Redis when it returns."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
import redis
from channels.db import database_sync_to_async

from conversations.models import Conversation, Usage
from conversations.outage import redis_outage
from conversations.relay import quota as quota_module
from conversations.relay.admission import DeploymentBusy, admit_deployment
from conversations.relay.quota import LimitReached, admit
from conversations.realtime.client import RealtimeTarget

from .browser_support import free_port

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_away(settings, monkeypatch):
    """REDIS_URL names a port nothing listens on."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setattr(redis_outage, "since", None)
    yield
    settings.REDIS_URL = ""  # nothing to clean up there


def _spent(user, usd: str) -> None:
    conversation = Conversation.objects.create(user=user, provider="simulator", deployment="d", dialect="ga")
    Usage.objects.create(conversation=conversation, response_id="resp_1", model="gpt-realtime", cost=Decimal(usd))


@pytest.mark.asyncio
async def test_a_new_conversation_is_admitted_on_local_counters_and_the_outage_is_logged_once(user, redis_away, caplog):
    first = await admit(user, new=True)
    second = await admit(user, new=True)
    assert first.store.redis is None and first.redis_store is not None  # counting in this process
    assert caplog.text.count("Redis is unavailable") == 1
    for q in (first, second):
        await q.close()


@pytest.mark.asyncio
async def test_the_live_conversation_limit_holds_in_this_process(user, redis_away, settings):
    settings.LIMIT_CONCURRENT_CONVERSATIONS = 1
    first = await admit(user, new=True)
    with pytest.raises(LimitReached, match="conversation"):
        await admit(user, new=True)
    await first.close()
    await (await admit(user, new=True)).close()  # its slot was freed


@pytest.mark.asyncio
async def test_the_daily_budget_still_holds_from_the_ledger(user, redis_away, settings):
    settings.LIMIT_COST_PER_DAY_USD = 0.5
    await database_sync_to_async(_spent)(user, "0.75")
    with pytest.raises(LimitReached):
        await admit(user, new=True)


@pytest.mark.asyncio
async def test_the_deployment_cap_holds_in_this_process(redis_away, settings):
    settings.DEPLOYMENT_MAX_SESSIONS = 1
    target = RealtimeTarget(provider="azure", url="wss://example.invalid", dialect="ga",
                            deployment=f"d-{free_port()}")
    slot = await admit_deployment(target)
    assert slot.redis_gate is not None
    with pytest.raises(DeploymentBusy):
        await admit_deployment(target)
    await slot.close()


@pytest.mark.asyncio
async def test_counting_moves_back_to_redis_with_the_slot_and_counters_rebuilt_from_the_ledger(user, settings, monkeypatch):
    import os

    url = os.environ.get("LIMITS_TEST_REDIS_URL", "redis://127.0.0.1:6379/6")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception:  # noqa: BLE001
        pytest.skip(f"no Redis at {url}")
    await database_sync_to_async(_spent)(user, "0.25")
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # away
    q = await admit(user, new=True)
    assert q.redis_store is not None
    settings.REDIS_URL = url  # "back": the store it returns to is the real one
    q.redis_store = quota_module.limit_store()
    assert await q.back_to_redis()
    client = redis.Redis.from_url(url)
    try:
        assert client.zscore(f"{settings.LIMIT_KEY_PREFIX}{user.pk}:live", q.slot) is not None
        totals = await q.store.totals(user.pk, datetime.now(timezone.utc))
        assert totals.cost_today == Decimal("0.25")
    finally:
        await q.close()
        for key in client.scan_iter(match=settings.LIMIT_KEY_PREFIX + "*"):
            client.delete(key)
        client.close()
        settings.REDIS_URL = ""


def test_the_staff_live_list_says_redis_is_away_instead_of_failing(client, django_user_model, settings, monkeypatch):
    from conversations import live_registry

    staff = django_user_model.objects.create_user(username="root", password="x", is_staff=True)
    client.force_login(staff)
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setattr(live_registry, "_heartbeat", None)
    page = client.get("/staff/live/")
    assert page.status_code == 503 and "cannot be reached right now" in page.content.decode()
    refresh = client.get("/staff/live.json")
    assert refresh.status_code == 503 and refresh.json() == {"error": "registry_unavailable"}
    settings.REDIS_URL = ""
