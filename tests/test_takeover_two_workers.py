"""A browser that reconnects to another worker takes its conversation along: the worker that held it stores it and
lets go, so the conversation goes on whole in one place (found by the soak, benchmarks/soak.py)."""
from __future__ import annotations

import asyncio
import json

import pytest

from .browser_support import two_workers_served, until

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_workers(django_user_model):
    """Servers A and B on this test's PostgreSQL database and a Redis; a user's session cookie."""
    from .conftest import session_cookie_for

    with two_workers_served("takeover", LIMIT_CONCURRENT_CONVERSATIONS="0") as (a, b, _):
        user = django_user_model.objects.create_user(username="ada", password="correct horse battery")
        yield {"a": a, "b": b, "cookie": session_cookie_for(user).decode()}


async def _open(base: str, cookie: str, conversation_id: str | None = None):
    from websockets.asyncio.client import connect

    url = base.replace("http", "ws") + "/ws/talk/" + (f"?conversation={conversation_id}" if conversation_id else "")
    return await connect(url, origin=base, additional_headers={"Cookie": cookie}, open_timeout=10)


async def _ready(ws) -> tuple[dict, list[dict]]:
    """The `ready` message, and the history items sent before it (none for a new conversation)."""
    history: list[dict] = []
    async with asyncio.timeout(30):
        while True:
            frame = await ws.recv()
            if isinstance(frame, str):
                message = json.loads(frame)
                if message["type"] == "history":
                    history = message["items"]
                elif message["type"] == "ready":
                    return message, history


async def _say(ws, text: str) -> None:
    await ws.send(json.dumps({"type": "text", "text": text}))
    await until(ws, "response_done", timeout=30)


def test_a_browser_that_goes_back_and_forth_between_workers_keeps_every_turn_in_one_conversation(two_workers):
    from conversations.models import Conversation

    a, b, cookie = two_workers["a"], two_workers["b"], two_workers["cookie"]

    async def run():
        ws = await _open(a, cookie)
        ready, _ = await _ready(ws)
        conversation_id = ready["conversation_id"]
        await _say(ws, "first")
        ws.transport.abort()  # the network goes; the page comes back through the other worker

        ws = await _open(b, cookie, conversation_id)
        ready, on_b = await _ready(ws)
        assert ready["continued"] and ready["conversation_id"] == conversation_id
        await _say(ws, "second")
        ws.transport.abort()  # and back to A, well within A's grace period had A kept its copy

        ws = await _open(a, cookie, conversation_id)
        ready, on_a = await _ready(ws)
        await _say(ws, "third")
        await ws.close(1000)  # Stop
        return conversation_id, on_b, on_a, ready

    conversation_id, on_b, on_a, ready = asyncio.run(run())
    assert [(i["role"], i["text"]) for i in on_b][:1] == [("user", "first")] and len(on_b) == 2
    # A had let go of its copy: it continues from what B stored instead of resuming what it knew before.
    assert ready["continued"] and not ready["resumed"]
    assert [i["role"] for i in on_a] == ["user", "assistant"] * 2
    assert [i["text"] for i in on_a if i["role"] == "user"] == ["first", "second"]

    def settled():
        c = Conversation.objects.get(pk=conversation_id)
        return c if c.status == "ended" and c.turns.count() == 6 else None

    from .browser_support import wait_until

    conversation = wait_until(settled, 15)
    assert conversation.ended_by == "user"
    turns = list(conversation.turns.order_by("position").values_list("role", "text", "position"))
    assert [t[2] for t in turns] == list(range(6))
    assert [t[1] for t in turns if t[0] == "user"] == ["first", "second", "third"]
