"""The registry of live conversations: entries listed while refreshed, gone once their worker stops refreshing them."""
from __future__ import annotations

import asyncio
import logging
import os
import secrets

import pytest

from conversations.live_registry import Heartbeat, LocalLiveStore, RedisLiveStore, new_worker_id

pytestmark = pytest.mark.asyncio


def _redis_url() -> str | None:
    """The run's Redis (REDIS_URL), else this machine's on 6379 db 8 if it answers; None skips."""
    import redis

    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/8"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return None
    return url


@pytest.fixture
def redis_store_factory():
    """Stores on a real Redis under a key prefix of this test's own; only those keys are deleted afterwards."""
    url = _redis_url()
    if url is None:
        pytest.skip("needs a Redis (REDIS_URL, or 127.0.0.1:6379)")
    prefix = f"test-live-{secrets.token_hex(4)}"
    made: list[RedisLiveStore] = []

    def make(ttl_s: float) -> RedisLiveStore:
        made.append(RedisLiveStore(url, prefix=prefix, ttl_s=ttl_s))
        return made[-1]

    yield make
    for store in made:
        store._sync_client().delete(store.expiry_key, store.entries_key)
        store.close()


def _ids(store) -> list[str]:
    return [e.conversation_id for e in store.entries()]


async def _add(beat: Heartbeat, conversation_id: str, username: str = "ada"):
    entry = beat.add(conversation_id=conversation_id, user_id=1, username=username, deployment="gpt-realtime")
    await asyncio.sleep(0.05)  # the heartbeat task writes it
    return entry


async def test_an_entry_is_listed_with_its_facts_until_its_conversation_ends(redis_store_factory):
    store = redis_store_factory(ttl_s=5)
    beat = Heartbeat(store, worker=new_worker_id(), refresh_s=1)
    entry = await _add(beat, "c1", username="<b>ada</b>")
    [listed] = store.entries()
    assert listed == entry
    assert listed.worker == beat.worker and listed.username == "<b>ada</b>" and listed.deployment == "gpt-realtime"
    beat.remove(entry)
    await asyncio.sleep(0.05)
    assert store.entries() == []
    await beat.stop()


async def test_an_entry_nobody_refreshes_drops_out_after_its_ttl_and_is_pruned(redis_store_factory):
    store = redis_store_factory(ttl_s=0.5)
    beat = Heartbeat(store, worker="crashed:1:aa", refresh_s=0.4)
    await _add(beat, "c1")
    await beat.stop()  # what a killed worker does: nothing more
    assert _ids(store) == ["c1"]
    await asyncio.sleep(0.7)
    assert _ids(store) == []
    client = store._sync_client()
    assert client.zcard(store.expiry_key) == 0 and client.hlen(store.entries_key) == 0


async def test_the_heartbeat_keeps_entries_listed_past_their_ttl(redis_store_factory):
    store = redis_store_factory(ttl_s=0.6)
    beat = Heartbeat(store, worker=new_worker_id(), refresh_s=0.15)
    await _add(beat, "c1")
    await asyncio.sleep(1.5)
    assert _ids(store) == ["c1"]
    await beat.stop()


async def test_a_worker_that_stops_refreshing_drops_out_and_the_others_stay(redis_store_factory):
    a = Heartbeat(redis_store_factory(ttl_s=0.8), worker="host:1:aaaaaa", refresh_s=0.2)
    b = Heartbeat(redis_store_factory(ttl_s=0.8), worker="host:2:bbbbbb", refresh_s=0.2)
    await _add(a, "held-by-a")
    await _add(b, "held-by-b")
    assert sorted(_ids(b.store)) == ["held-by-a", "held-by-b"]  # one registry, every worker's entries
    await a.stop()
    await asyncio.sleep(1.3)
    assert [(e.conversation_id, e.worker) for e in b.store.entries()] == [("held-by-b", "host:2:bbbbbb")]
    await b.stop()


async def test_one_task_refreshes_every_conversation_of_the_process(redis_store_factory):
    store = redis_store_factory(ttl_s=5)
    beat = Heartbeat(store, worker=new_worker_id(), refresh_s=1)
    for n in range(300):
        beat.add(conversation_id=f"c{n}", user_id=n, username=f"u{n}", deployment="d")
    await asyncio.sleep(0.2)
    heartbeats = [t for t in asyncio.all_tasks() if t.get_name() == "live-registry-heartbeat"]
    assert len(heartbeats) == 1
    assert len(store.entries()) == 300
    await beat.stop()


async def test_a_redis_outage_is_logged_and_costs_the_conversation_nothing(caplog):
    from .browser_support import free_port

    store = RedisLiveStore(f"redis://127.0.0.1:{free_port()}/0", prefix="nowhere", ttl_s=5)
    beat = Heartbeat(store, worker=new_worker_id(), refresh_s=0.1)
    with caplog.at_level(logging.WARNING):
        entry = beat.add(conversation_id="c1", user_id=1, username="ada", deployment="d")  # never raises, never waits
        await asyncio.sleep(0.3)
    assert any("live-conversation registry" in r.getMessage() for r in caplog.records)
    beat.remove(entry)
    await beat.stop()


async def test_without_redis_the_list_is_this_process_entries():
    store = LocalLiveStore()
    beat = Heartbeat(store, worker=new_worker_id(), refresh_s=1)
    first = await _add(beat, "c1")
    await _add(beat, "c2")
    assert _ids(store) == ["c1", "c2"]  # oldest first
    beat.remove(first)
    await asyncio.sleep(0.05)
    assert _ids(store) == ["c2"]
    await beat.stop()
