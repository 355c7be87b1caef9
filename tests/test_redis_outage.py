"""Redis stopping and coming back, for everything that uses it (channel layer, limits, deployment slots, the live
registry): a live conversation keeps talking, a new one starts on this process's own limits, and once Redis is back
the registry lists the conversations again, their counters are in Redis and they can be reached again."""
from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest
import redis
from channels.db import database_sync_to_async

from conversations import live, live_registry
from conversations.models import Conversation, Turn
from conversations.realtime.simulator import RealtimeSimulator
from conversations.relay import quota

from .browser_support import free_port
from .relay import Transcript, collect, communicator, point_at

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("end_live_conversations"),
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server to run a Redis of its own"),
]


class OwnRedis:
    """A redis-server of this test's own on a free port (the shared one is never stopped), stopped and started at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping():
                    return
            except redis.exceptions.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def own_redis(settings, monkeypatch):
    """The app on a Redis of its own for everything: channel layer, limits, deployment slots, live registry."""
    server = OwnRedis()
    server.start()
    settings.REDIS_URL = server.url
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": server.url, "socket_timeout": 15}]},
    }}
    settings.LIVE_REGISTRY_REFRESH_SECONDS = 0.2
    settings.LIVE_REGISTRY_TTL_SECONDS = 2.0
    settings.DEPLOYMENT_MAX_SESSIONS = 10  # the deployment's slots are counted too
    monkeypatch.setattr(live_registry, "_heartbeat", None)  # this test's registry, on this Redis
    monkeypatch.setattr(quota, "RECOVERY_PROBE_S", 0.3)
    monkeypatch.setattr(live, "REJOIN_S", 0.3)
    yield server
    settings.REDIS_URL = ""  # nothing left to clean up in it: it goes
    server.stop()


async def _ready(comm) -> dict:
    return (await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")), timeout=20)).of_type("ready")[0]


async def _talk(comm, text: str) -> Transcript:
    await comm.send_to(text_data='{"type":"text","text":"%s"}' % text)
    return await collect(comm, Transcript(), lambda s: bool(s.of_type("response_done")), timeout=20)


async def _until(predicate, timeout: float = 10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := await predicate()):
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)
    return value


async def _listed() -> set[str]:
    try:
        return {e.conversation_id for e in await asyncio.to_thread(live_registry.live_entries)}
    except redis.exceptions.ConnectionError:
        return set()


async def test_conversations_carry_on_through_a_redis_outage_and_everything_recovers_when_it_returns(
        settings, cookie, user, own_redis, caplog):
    from django.conf import settings as live_settings

    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=False) as sim:
        point_at(settings, sim)
        first = communicator(cookie)
        await first.connect()
        a = (await _ready(first))["conversation_id"]
        await _until(lambda: _has(a))

        own_redis.stop()

        # The live conversation keeps talking, and what it uses is counted in this process meanwhile.
        reply = await _talk(first, "Are you still there")
        assert [m for m in reply.of_type("transcript_done") if m["role"] == "assistant"] and not reply.of_type("error")

        # A new conversation is admitted on this process's own limits, and talks.
        second = communicator(cookie)
        await second.connect()
        b_ready = await _ready(second)
        b = b_ready["conversation_id"]
        assert (await _talk(second, "Hello while Redis is away")).of_type("response_done")
        assert "Redis is unavailable" in caplog.text

        own_redis.start()  # an empty Redis: it lost every key, group and entry

        # The registry lists both again, and their live slots and counters are back in Redis.
        await _until(lambda: _has(a, b))
        client = redis.Redis.from_url(own_redis.url)
        slots_key = f"{live_settings.LIMIT_KEY_PREFIX}{user.pk}:live"
        await _until(lambda: asyncio.to_thread(lambda: client.zcard(slots_key) == 2))
        # (the slot is claimed first, then the counters are rebuilt from the ledger: a query later)
        await _until(lambda: asyncio.to_thread(lambda: client.keys(f"{live_settings.LIMIT_KEY_PREFIX}{user.pk}:audio:*")))

        # A new conversation starts normally, its slot in Redis beside the other two.
        third = communicator(cookie)
        await third.connect()
        await _ready(third)
        assert await asyncio.to_thread(client.zcard, slots_key) == 3
        await third.disconnect(code=1000)

        # The live conversation is reachable through the channel layer again: staff ending it reaches it.
        await _until(lambda: asyncio.to_thread(live.announce_end_by_staff, conversation_id=a, by="root"))
        ended = await collect(first, Transcript(), lambda s: False, timeout=15)
        assert ended.closed_code == 4430
        await second.disconnect(code=1000)
        client.close()
        assert sim.validation_errors == []

    @database_sync_to_async
    def stored(conversation_id):
        conversation = Conversation.objects.get(pk=conversation_id)
        return conversation, [t.role for t in Turn.objects.filter(conversation=conversation).order_by("position")]

    for conversation_id, by in ((a, "staff"), (b, "user")):
        conversation, roles = await _until(lambda: _ended(stored, conversation_id))
        assert (conversation.status, conversation.ended_by) == ("ended", by)
        assert roles == ["user", "assistant"]
    assert "Redis is back" in caplog.text


async def _has(*conversation_ids: str) -> bool:
    return set(conversation_ids) <= await _listed()


async def _ended(stored, conversation_id):
    conversation, roles = await stored(conversation_id)
    return (conversation, roles) if conversation.ended_at else None
