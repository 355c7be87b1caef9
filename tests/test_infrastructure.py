"""The configured database, channel layer and cache work: PostgreSQL and Redis in CI, SQLite and memory by default."""
import pytest
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import caches
from django.db import connection


def test_the_channel_layer_matches_redis_url_and_delivers_messages():
    import asyncio

    layer = get_channel_layer()
    expected = "RedisChannelLayer" if settings.REDIS_URL else "InMemoryChannelLayer"
    assert type(layer).__name__ == expected

    async def round_trip():
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "hello", "n": 1})
        return await asyncio.wait_for(layer.receive(channel), 5)

    assert asyncio.run(round_trip()) == {"type": "hello", "n": 1}


def test_an_idle_consumer_outlives_the_layers_blocking_receive():
    """Waiting longer than channels-redis's 5 s blocking pop must not raise from the Redis client."""
    import asyncio

    if not settings.REDIS_URL:
        pytest.skip("the in-memory layer has no socket to time out")
    layer = get_channel_layer()

    async def idle_receive():
        channel = await layer.new_channel()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(channel), 6.5)

    asyncio.run(idle_receive())


def test_the_channel_layer_takes_a_burst_of_sockets_joining_groups_at_once():
    """redis-py's pool refuses past 100 connections in use; 300 sockets opening together must all get in."""
    import asyncio

    if not settings.REDIS_URL:
        pytest.skip("the in-memory layer has no connection pool")
    layer = get_channel_layer()

    async def burst():
        channels = [await layer.new_channel() for _ in range(300)]
        await asyncio.gather(*(layer.group_add("burst-test", c) for c in channels))
        # Every socket joined: a message to the group reaches each of them.
        await layer.group_send("burst-test", {"type": "hello"})
        received = await asyncio.wait_for(asyncio.gather(*(layer.receive(c) for c in channels)), 10)
        await asyncio.gather(*(layer.group_discard("burst-test", c) for c in channels))
        return received

    assert asyncio.run(burst()) == [{"type": "hello"}] * 300


def test_the_cache_matches_redis_url_and_counts_atomically():
    expected = "RedisCache" if settings.REDIS_URL else "LocMemCache"
    cache = caches["default"]
    assert type(cache).__name__ == expected
    cache.set("infra-counter", 0, 30)
    assert cache.incr("infra-counter") == 1
    assert cache.incr("infra-counter", 5) == 6
    cache.delete("infra-counter")


@pytest.mark.django_db
def test_the_database_matches_database_url():
    vendor = "postgresql" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "sqlite"
    assert connection.vendor == vendor
