"""Two real server processes on one PostgreSQL and one Redis: when one is killed outright, the other's sweep closes
the conversation it held as interrupted once its live entry expired, and leaves its own live conversation alone."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.request

import pytest

from .browser_support import two_workers_served, until, wait_until

pytestmark = [pytest.mark.django_db(transaction=True)]

TTL_S = 2.0
GRACE_S = 1.0


@pytest.fixture
def two_sweeping_workers(django_user_model):
    """Servers A and B sweeping every half second, with a short registry TTL and grace period; the user's cookie."""
    from .conftest import session_cookie_for

    with two_workers_served("sweep", LIVE_REGISTRY_TTL_SECONDS=str(TTL_S), LIVE_REGISTRY_REFRESH_SECONDS="0.5",
                            SWEEP_INTERVAL_SECONDS="0.5", RELAY_GRACE_SECONDS=str(GRACE_S)) as (a, b, a_process):
        user = django_user_model.objects.create_user(username="ada", password="correct horse battery")
        yield {"a": a, "b": b, "a_process": a_process, "user": session_cookie_for(user).decode()}


async def _talk(url: str, cookie: str, text: str, ready: asyncio.Future, stop: asyncio.Event) -> int | None:
    """Open a talk socket, say `text` and wait for the reply, report the conversation id; hold it until `stop` (then Stop)."""
    from websockets.asyncio.client import connect

    async with connect(url.replace("http", "ws") + "/ws/talk/", origin=url, additional_headers={"Cookie": cookie},
                       open_timeout=10) as ws:
        conversation_id = (await until(ws, "ready", timeout=30))["conversation_id"]
        await ws.send(json.dumps({"type": "text", "text": text}))
        await until(ws, "response_done", timeout=30)
        ready.set_result(conversation_id)
        closed = asyncio.ensure_future(ws.wait_closed())
        await asyncio.wait({closed, asyncio.ensure_future(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if not closed.done():
            await ws.close(code=1000)
        return ws.close_code


def _page(url: str, cookie: str) -> str:
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def test_a_killed_workers_conversation_is_closed_as_interrupted_by_the_other_workers_sweep(two_sweeping_workers):
    from conversations.models import Conversation, Turn

    w = two_sweeping_workers

    async def run():
        loop = asyncio.get_running_loop()
        on_a, on_b, stop = loop.create_future(), loop.create_future(), asyncio.Event()
        held_by_a = asyncio.create_task(_talk(w["a"], w["user"], "Hello from the doomed worker", on_a, stop))
        held_by_b = asyncio.create_task(_talk(w["b"], w["user"], "Hello from the surviving worker", on_b, stop))
        orphan, survivor = await asyncio.wait_for(on_a, 30), await asyncio.wait_for(on_b, 30)
        # Its turns are stored before the crash (the journal writes within moments of the reply).
        await asyncio.to_thread(wait_until, lambda: Turn.objects.filter(conversation_id=orphan).count() >= 2, 10)
        os.kill(w["a_process"].pid, signal.SIGKILL)  # no shutdown, no goodbye: a crash
        await asyncio.wait_for(held_by_a, 15)
        closed = await asyncio.to_thread(
            wait_until, lambda: Conversation.objects.filter(pk=orphan, ended_by="interrupted").first(), TTL_S + GRACE_S + 10)
        still = await asyncio.to_thread(Conversation.objects.get, pk=survivor)
        history = await asyncio.to_thread(_page, w["b"] + "/history/", w["user"])
        stop.set()
        await asyncio.wait_for(held_by_b, 15)
        return orphan, closed, still, history

    orphan, closed, still, history = asyncio.run(run())
    last_turn = Turn.objects.filter(conversation_id=orphan).latest("created_at")
    assert (closed.status, closed.ended_at) == ("ended", last_turn.created_at)
    assert (still.status, still.ended_at, still.ended_by) == ("active", None, "")  # live on B all along
    row = history.split(f'href="/history/{orphan}/"', 1)[1].split("</li>", 1)[0]
    assert ">interrupted</span>" in row
