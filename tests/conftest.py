"""Shared fixtures: a running realtime simulator, logged-in users and their session cookies."""
from __future__ import annotations

import pytest
import pytest_asyncio

# The browser tests' fixtures (`account`, `open_browser`), shared without test modules importing each other.
pytest_plugins = ["tests.browser_fixtures"]


@pytest.fixture(scope="session", autouse=True)
def app_loaded():
    """Load the ASGI app before any test: loading it configures logging, which would drop a test's `caplog` handler."""
    import voiceapp.asgi  # noqa: F401,PLC0415


@pytest.fixture(autouse=True)
def default_language():
    """Leave the interface language as every test found it: a request in Spanish must not make the next test's messages Spanish."""
    yield
    from django.utils import translation

    translation.deactivate()


@pytest.fixture(autouse=True)
def limit_keys(settings):
    """Give every test limit counters of its own (a key prefix), and delete them from Redis afterwards."""
    import uuid

    prefix = f"test-{uuid.uuid4().hex[:12]}:limits:"
    settings.LIMIT_KEY_PREFIX = prefix
    yield prefix
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        try:
            keys = list(client.scan_iter(match=prefix + "*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@pytest_asyncio.fixture
async def simulator():
    """A strict realtime simulator on a loopback port, streaming as fast as it can."""
    from conversations.realtime.simulator import RealtimeSimulator

    sim = RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=False)
    await sim.start(host="127.0.0.1", port=0)
    try:
        yield sim
    finally:
        await sim.stop()
    assert sim.validation_errors == []


@pytest.fixture
def use_simulator(settings, simulator):
    """Point the app at the test simulator as if it were an Azure endpoint (GA dialect)."""
    from .relay import point_at

    point_at(settings, simulator)
    settings.REALTIME_CONNECT_TIMEOUT = 5.0
    return simulator


@pytest.fixture
def user(django_user_model):
    """A regular user."""
    return django_user_model.objects.create_user(username="ada", password="correct horse battery")


def session_cookie_for(user) -> bytes:
    """Log the user in with the test client and return the Cookie header value for a socket."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


@pytest.fixture
def cookie(user) -> bytes:
    """The session cookie of the logged-in `user`."""
    return session_cookie_for(user)


@pytest_asyncio.fixture
async def end_live_conversations(transactional_db):
    """End conversations a test left live (grace periods, parked relays) before its event loop closes."""
    yield
    from conversations.relay.registry import live_conversations

    for live in live_conversations.all():
        await live.end()


@pytest_asyncio.fixture(params=["redis", "cache"])
async def limit_store(request, limit_keys):
    """The limits' store on real Redis (LIMITS_TEST_REDIS_URL, db 6) and on a cache; only this test's keys are removed."""
    import os
    from zoneinfo import ZoneInfo

    import redis

    from conversations.limits import LimitStore

    url = os.environ.get("LIMITS_TEST_REDIS_URL", "redis://127.0.0.1:6379/6")
    if request.param == "redis":
        try:
            redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        except Exception:  # noqa: BLE001
            pytest.skip(f"no Redis at {url}")
        store = LimitStore(prefix=limit_keys, tz=ZoneInfo("UTC"), redis_url=url)
    else:
        from django.core.cache.backends.locmem import LocMemCache

        store = LimitStore(prefix=limit_keys, tz=ZoneInfo("UTC"), cache=LocMemCache(limit_keys, {}))
    yield store
    if store.redis is not None:
        keys = [k async for k in store.redis.scan_iter(match=limit_keys + "*")]
        if keys:
            await store.redis.delete(*keys)
    await store.close()
