"""Redis going away under live sockets: the conversations keep talking and are stored; new ones still start."""
from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from channels.db import database_sync_to_async

from conversations.models import Conversation, Turn
from conversations.realtime.simulator import RealtimeSimulator

from .browser_support import free_port
from .relay import Transcript, collect, communicator, point_at

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("end_live_conversations"),
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server to run a Redis of its own"),
]


@pytest.fixture
def own_redis(settings):
    """A Redis of this test's own on a free port (the shared one is never stopped), as the channel layer."""
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{port}/0", "socket_timeout": 15}]},
    }}
    yield proc
    proc.kill()
    proc.wait()


@database_sync_to_async
def _stored(conversation_id):
    conversation = Conversation.objects.get(pk=conversation_id)
    return conversation, list(Turn.objects.filter(conversation=conversation).order_by("position"))


async def _talk(comm, text: str) -> Transcript:
    await comm.send_to(text_data='{"type":"text","text":"%s"}' % text)
    return await collect(comm, Transcript(), lambda s: bool(s.of_type("response_done")), timeout=20)


async def test_live_and_new_conversations_keep_talking_and_are_stored_when_redis_goes_away(settings, cookie, own_redis):
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=False) as sim:
        point_at(settings, sim)
        live = communicator(cookie)
        await live.connect()
        ready = (await collect(live, Transcript(), lambda s: bool(s.of_type("ready")))).of_type("ready")[0]

        own_redis.kill()
        own_redis.wait()

        reply = await _talk(live, "Are you still there")
        assert [m for m in reply.of_type("transcript_done") if m["role"] == "assistant"]
        assert not reply.of_type("error")

        # A socket opened while Redis is down cannot join its login group, and talks all the same.
        late = communicator(cookie)
        await late.connect()
        late_ready = (await collect(late, Transcript(), lambda s: bool(s.of_type("ready")))).of_type("ready")[0]
        assert (await _talk(late, "Hello from a new tab")).of_type("response_done")

        for comm in (live, late):
            await comm.disconnect(code=1000)  # Stop
        assert sim.validation_errors == []

    for opened in (ready, late_ready):
        conversation, turns = await _stored(opened["conversation_id"])
        assert conversation.status != "failed" and not conversation.error
        assert [t.role for t in turns] == ["user", "assistant"]
        assert turns[1].text
