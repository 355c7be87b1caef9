"""Deleting a conversation that is live elsewhere ends it: the browser is told and closed for good, upstream closes, no row comes back."""
from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
from channels.db import database_sync_to_async

from conversations import services
from conversations.models import Conversation, Turn, Usage
from conversations.realtime.simulator import RealtimeSimulator
from conversations.relay.registry import live_conversations

from .audio import frames, silence, speech
from .relay import Transcript, collect, communicator, point_at

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("end_live_conversations")]

DELETED = "This conversation was deleted in another window."


async def _logged_in(settings, user):
    """An async test client logged in as `user`, and the cookie of that login for a socket."""
    from django.test import AsyncClient

    client = AsyncClient()
    await client.aforce_login(user)
    return client, f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


async def _open(cookie: bytes) -> tuple:
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    return comm, seen, seen.of_type("ready")[0]["conversation_id"]


@database_sync_to_async
def _rows(conversation_ids) -> tuple[int, int, int]:
    return (Conversation.objects.filter(pk__in=conversation_ids).count(),
            Turn.objects.filter(conversation_id__in=conversation_ids).count(),
            Usage.objects.filter(conversation_id__in=conversation_ids).count())


async def _until(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def _microphone(comm, pcm: bytes) -> None:
    """Send PCM in real time, as a microphone does, until the socket goes."""
    with contextlib.suppress(Exception):
        for frame in frames(pcm):
            await comm.send_to(bytes_data=frame)
            await asyncio.sleep(0.04)


def _gone(conversation_id: str) -> bool:
    """Whether the relay of this conversation finished ending (its last writes flushed or dropped)."""
    return all(live.conversation_id != conversation_id for live in live_conversations.all())


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_deleting_a_conversation_mid_reply_closes_its_socket_for_good_and_stores_nothing_more(settings, user, caplog):
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=True) as sim:
        point_at(settings, sim)
        client, cookie = await _logged_in(settings, user)
        comm, seen, conversation_id = await _open(cookie)
        await comm.send_to(text_data='{"type":"text","text":"Please talk for a while"}')
        seen = await collect(comm, seen, lambda s: s.audio_bytes >= 48 * 300)  # the reply is streaming
        # The microphone keeps sending while the other window deletes.
        speaking = asyncio.create_task(_microphone(comm, speech() + silence(2000)))

        response = await client.post(f"/history/{conversation_id}/delete/")
        assert response.status_code == 302

        seen = await collect(comm, seen, lambda s: False)
        speaking.cancel()
        assert seen.closed_code == 4410  # final: the page neither resumes nor continues it
        error = seen.of_type("error")[-1]
        assert error == {"type": "error", "code": "conversation_deleted", "message": DELETED, "fatal": True}
        await _until(lambda: sim.sessions[0].closed)
        assert live_conversations.get(conversation_id) is None
        await comm.disconnect()
        await _until(lambda: _gone(conversation_id))
        assert sim.validation_errors == []

    assert await _rows([conversation_id]) == (0, 0, 0)
    assert _errors(caplog) == []


async def test_deleting_a_conversation_waiting_for_its_browser_ends_it_in_the_process_that_holds_it(settings, user, caplog):
    settings.RELAY_GRACE_SECONDS = 60.0  # the grace period must not be what ends it
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=False) as sim:
        point_at(settings, sim)
        _, cookie = await _logged_in(settings, user)
        comm, seen, conversation_id = await _open(cookie)
        await comm.send_to(text_data='{"type":"text","text":"Remember the word apricot"}')
        await collect(comm, seen, lambda s: bool(s.of_type("response_done")))
        await comm.disconnect(code=1001)  # the network dropped: the conversation waits for the browser
        await asyncio.sleep(0.1)
        live = live_conversations.get(conversation_id)
        assert live is not None and live.link is None and not sim.sessions[0].closed

        conversation = await database_sync_to_async(Conversation.objects.get)(pk=conversation_id)
        await database_sync_to_async(services.conversation_delete)(conversation=conversation)

        await _until(lambda: live.ended and sim.sessions[0].closed)
        assert live.failure.code == "conversation_deleted"
        await _until(lambda: _gone(conversation_id))

    assert await _rows([conversation_id]) == (0, 0, 0)
    assert _errors(caplog) == []


async def test_deleting_all_my_data_ends_every_live_conversation_of_mine_and_no_one_elses(settings, user, django_user_model):
    other = await database_sync_to_async(django_user_model.objects.create_user)(username="grace", password="another long passphrase")
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=False) as sim:
        point_at(settings, sim)
        client, cookie = await _logged_in(settings, user)
        _, their_cookie = await _logged_in(settings, other)
        mine = [await _open(cookie), await _open(cookie)]
        theirs, _, their_id = await _open(their_cookie)

        response = await client.post("/settings/delete-my-data/", {"username": user.get_username()})
        assert response.status_code == 302

        for comm, seen, _ in mine:
            seen = await collect(comm, seen, lambda s: False)
            assert seen.closed_code == 4410 and seen.of_type("error")[-1]["message"] == DELETED
            await comm.disconnect()
        await theirs.send_to(text_data='{"type":"text","text":"Am I still here"}')
        reply = await collect(theirs, Transcript(), lambda s: bool(s.of_type("response_done")))
        assert reply.closed_code is None and not reply.of_type("error")
        await theirs.disconnect(code=1000)

    assert await _rows([conversation_id for _, _, conversation_id in mine]) == (0, 0, 0)
    assert (await _rows([their_id]))[:2] == (1, 2)


class _LayerDown:
    """A channel layer whose Redis has gone away."""

    async def group_send(self, group: str, message: dict) -> None:
        raise ConnectionError("Redis is not answering")


async def test_a_delete_the_channel_layer_cannot_announce_still_deletes_and_the_relay_writes_nothing_back(
    settings, user, monkeypatch, caplog
):
    from conversations import live

    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=False) as sim:
        point_at(settings, sim)
        client, cookie = await _logged_in(settings, user)
        comm, seen, conversation_id = await _open(cookie)
        monkeypatch.setattr(live, "get_channel_layer", lambda alias="default": _LayerDown())

        response = await client.post(f"/history/{conversation_id}/delete/")
        assert response.status_code == 302
        assert [r for r in caplog.records if "Could not tell live conversations" in r.getMessage()]
        caplog.clear()

        # Not told, the relay talks on until Stop: new turns, usage and the end go nowhere.
        await comm.send_to(text_data='{"type":"text","text":"Are you still there"}')
        await collect(comm, seen, lambda s: bool(s.of_type("response_done")))
        await comm.disconnect(code=1000)
        await _until(lambda: _gone(conversation_id))

    assert await _rows([conversation_id]) == (0, 0, 0)
    assert _errors(caplog) == []
