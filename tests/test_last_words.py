"""Words the user was still saying when the conversation ended are stored, and a browser that comes back gets the reply.

Server VAD ends a turn after 500 ms of silence, which a socket that closed never sends. Found by the soak
(benchmarks/soak.py): a client that cut its socket, or a worker that restarted, less than half a second after
the user stopped speaking lost that utterance when another worker continued the conversation.
"""
from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from conversations import services
from conversations.models import Conversation, Turn
from conversations.realtime.options import Preferences
from conversations.relay.lifespan import end_all_live_conversations
from conversations.relay.registry import live_conversations

from .audio import frames, silence, speech
from .relay import Transcript, collect, communicator

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("end_live_conversations"),
]


@database_sync_to_async
def _turns(conversation_id) -> list[Turn]:
    return list(Turn.objects.filter(conversation_id=conversation_id).order_by("position"))


@database_sync_to_async
def _conversation(conversation_id) -> Conversation:
    return Conversation.objects.get(pk=conversation_id)


async def _speak_then_vanish(comm, seen: Transcript) -> Transcript:
    """Speak 1.5 s and go away 200 ms after: the service heard the speech start and has not ended the turn."""
    spoken = speech("Hello there, how are you today?")[: 24_000 * 2 * 3 // 2]  # 1.5 s, cut mid-word: no pause
    for frame in frames(silence(400) + spoken + silence(200)):
        await comm.send_to(bytes_data=frame)
        await asyncio.sleep(0.02)
    seen = await collect(comm, seen, lambda s: bool(s.of_type("speech_started")))
    assert not seen.of_type("speech_stopped") and not seen.of_type("user_item")
    await comm.disconnect(code=1001)  # the network went, not the user
    return seen


async def _until_ended(conversation_id) -> Conversation:
    async with asyncio.timeout(10):
        while (conversation := await _conversation(conversation_id)).status != Conversation.Status.ENDED:
            await asyncio.sleep(0.05)
    return conversation


async def _end(how: str, conversation_id: str) -> None:
    if how == "the grace period ran out":
        return  # RELAY_GRACE_SECONDS is short: it ends by itself
    if how == "the server stopped":
        await end_all_live_conversations(timeout=15)
    else:  # another worker continued it (the browser reconnected there)
        await live_conversations.get(conversation_id).taken_over()


@pytest.mark.parametrize("how", ["the grace period ran out", "the server stopped", "another worker took it over"])
async def test_speech_the_socket_cut_before_the_turn_ended_is_stored_written_down_when_the_conversation_ends(
    use_simulator, settings, cookie, how
):
    settings.RELAY_GRACE_SECONDS = 0.3 if how == "the grace period ran out" else 30
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    conversation_id = seen.of_type("ready")[0]["conversation_id"]
    await _speak_then_vanish(comm, seen)
    await _end(how, conversation_id)
    conversation = await _until_ended(conversation_id)

    turns = await _turns(conversation_id)
    assert [(t.role, t.status) for t in turns] == [("user", "")]
    assert turns[0].text and turns[0].audio_ms > 1000  # the simulator writes down what it heard, by its length
    kinds = [e["type"] for e in use_simulator.received if e["type"] != "input_audio_buffer.append"]
    assert "input_audio_buffer.commit" in kinds and "response.create" not in kinds  # nobody is there to answer
    assert not conversation.error


@pytest.mark.parametrize("returning", [True, False], ids=["page reconnecting", "continued from the history"])
async def test_a_page_that_comes_back_after_its_worker_let_go_gets_the_reply_to_what_it_said_last(
    use_simulator, settings, cookie, returning
):
    settings.RELAY_GRACE_SECONDS = 30
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    conversation_id = seen.of_type("ready")[0]["conversation_id"]
    await _speak_then_vanish(comm, seen)
    await _end("another worker took it over", conversation_id)

    query = f"conversation={conversation_id}" + ("&resume=1" if returning else "")
    back = communicator(cookie, path=f"/ws/talk/?{query}")
    await back.connect()
    again = await collect(back, Transcript(), lambda s: bool(s.of_type("ready")))
    assert again.of_type("ready")[0]["continued"]
    said = again.of_type("history")[0]["items"]
    assert [i["role"] for i in said] == ["user"] and said[0]["text"]
    if returning:
        again = await collect(back, again, lambda s: bool(s.of_type("response_done")))
        assert again.of_type("response_done")[0]["status"] == "completed" and again.audio_bytes > 0
    else:
        await back.send_to(text_data='{"type":"ping","t":1}')
        again = await collect(back, again, lambda s: bool(s.of_type("pong")))
        await asyncio.sleep(0.3)
    await back.disconnect()
    await _until_ended(conversation_id)

    second = [e["type"] for e in use_simulator.received if e["_session"] == 1]
    assert ("response.create" in second) is returning
    assert [t.role for t in await _turns(conversation_id)] == (["user", "assistant"] if returning else ["user"])


async def test_a_page_that_comes_back_while_its_conversation_is_still_ending_here_continues_from_all_it_stored(
    use_simulator, settings, cookie
):
    settings.RELAY_GRACE_SECONDS = 0.2
    use_simulator.options.transcription_delay_s = 1.0  # the ending waits this long for the last words
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    conversation_id = seen.of_type("ready")[0]["conversation_id"]
    await _speak_then_vanish(comm, seen)
    live = live_conversations.get(conversation_id)
    async with asyncio.timeout(5):
        while not live.ended:
            await asyncio.sleep(0.02)
    assert live_conversations.ending(conversation_id) is live  # still storing its last words

    back = communicator(cookie, path=f"/ws/talk/?conversation={conversation_id}&resume=1")
    await back.connect()
    again = await collect(back, Transcript(), lambda s: bool(s.of_type("response_done")))
    said = again.of_type("history")[0]["items"]
    assert [i["role"] for i in said] == ["user"] and said[0]["text"]  # read after the ending wrote it down
    await back.disconnect()
    await _until_ended(conversation_id)
    assert [t.role for t in await _turns(conversation_id)] == ["user", "assistant"]


@database_sync_to_async
def _push_to_talk(user) -> None:
    services.preferences_update(user=user, preferences=Preferences(turn_detection="push_to_talk"))


async def test_a_press_held_when_the_socket_went_is_stored_as_a_turn(use_simulator, settings, user, cookie):
    settings.RELAY_GRACE_SECONDS = 0.3
    await _push_to_talk(user)
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    conversation_id = seen.of_type("ready")[0]["conversation_id"]
    await comm.send_to(text_data='{"type":"press"}')
    for frame in frames(speech("Hello there, how are you today?")[: 24_000 * 2 * 3 // 2]):
        await comm.send_to(bytes_data=frame)
    await comm.send_to(text_data='{"type":"ping","t":1}')
    await collect(comm, seen, lambda s: bool(s.of_type("pong")))
    await comm.disconnect(code=1001)  # the release never comes
    await _until_ended(conversation_id)

    turns = await _turns(conversation_id)
    assert [t.role for t in turns] == ["user"] and turns[0].text and turns[0].audio_ms > 1000
    kinds = [e["type"] for e in use_simulator.received if e["type"] != "input_audio_buffer.append"]
    assert kinds.count("input_audio_buffer.commit") == 1 and "response.create" not in kinds
