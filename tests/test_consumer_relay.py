"""The consumer relays a whole conversation through the full ASGI app to the simulator and stores it."""
import pytest
from channels.db import database_sync_to_async

from conversations.models import Conversation, Turn, Usage
from conversations.realtime.schema import validate_client_event
from conversations.relay.failures import NOT_AVAILABLE

from .audio import silence, speech
from .relay import Transcript, collect, communicator, send_pcm

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("end_live_conversations")]


def _turn_done(seen: Transcript) -> bool:
    return bool(seen.of_type("response_done")) and any(
        m["role"] == "user" for m in seen.of_type("transcript_done")
    )


async def _speak_one_turn(comm) -> Transcript:
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    await send_pcm(comm, speech() + silence(1200))
    return await collect(comm, seen, _turn_done)


@database_sync_to_async
def _stored(conversation_id):
    conversation = Conversation.objects.get(pk=conversation_id)
    turns = list(Turn.objects.filter(conversation=conversation).order_by("position"))
    usage = list(Usage.objects.filter(conversation=conversation))
    return conversation, turns, usage


async def test_spoken_turn_streams_audio_and_transcripts_and_is_stored(use_simulator, cookie):
    comm = communicator(cookie)
    connected, _ = await comm.connect()
    assert connected
    seen = await _speak_one_turn(comm)
    ready = seen.of_type("ready")[0]
    assert (ready["provider"], ready["dialect"], ready["sample_rate"]) == ("azure", "ga", 24000)

    kinds = [m["type"] for m in seen.messages]
    assert kinds.index("speech_started") < kinds.index("speech_stopped") < kinds.index("assistant_item")
    assert kinds.index("user_item") < kinds.index("assistant_item")
    assert seen.audio_bytes > 24_000  # at least half a second of reply audio, as binary frames
    assert all(len(a) % 2 == 0 for a in seen.audio)
    assistant_text = [m for m in seen.of_type("transcript_done") if m["role"] == "assistant"][0]["text"]
    user_text = [m for m in seen.of_type("transcript_done") if m["role"] == "user"][0]["text"]
    assert assistant_text and user_text
    await comm.disconnect()

    conversation, turns, usage = await _stored(ready["conversation_id"])
    assert conversation.status == Conversation.Status.ENDED and conversation.ended_at
    assert (conversation.provider, conversation.dialect, conversation.deployment) == ("azure", "ga", "gpt-realtime")
    assert [t.role for t in turns] == ["user", "assistant"]
    assert turns[0].text == user_text and turns[1].text == assistant_text
    assert turns[0].audio_ms > 500
    assert turns[1].audio_ms == seen.audio_bytes // 48
    assert conversation.title == user_text[:80]
    assert len(usage) == 1 and usage[0].input_audio_tokens > 0 and usage[0].output_audio_tokens > 0


async def test_session_update_is_sent_first_and_validates(use_simulator, cookie):
    comm = communicator(cookie)
    await comm.connect()
    await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    await comm.send_to(text_data='{"type":"ping","t":1}')
    await collect(comm, Transcript(), lambda s: bool(s.of_type("pong")))
    await comm.disconnect()
    first = use_simulator.received[0]
    assert first["type"] == "session.update"
    validate_client_event({k: v for k, v in first.items() if not k.startswith("_")}, "ga")


async def test_preview_dialect_relays_a_turn_unchanged(use_simulator, settings, cookie):
    settings.AZURE_OPENAI_API_VERSION = "2025-04-01-preview"
    settings.AZURE_OPENAI_DEPLOYMENT = "gpt-4o-realtime-preview"
    comm = communicator(cookie)
    await comm.connect()
    seen = await _speak_one_turn(comm)
    await comm.disconnect()
    assert seen.of_type("ready")[0]["dialect"] == "preview"
    assert use_simulator.sessions[0].dialect == "preview"
    assert seen.audio_bytes > 0 and seen.of_type("response_done")
    update = use_simulator.received[0]
    assert update["type"] == "session.update" and "type" not in update["session"]


async def test_typed_text_gets_a_spoken_reply_and_is_stored(use_simulator, cookie):
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    await comm.send_to(text_data='{"type":"text","text":"How are you today?"}')
    seen = await collect(comm, seen, lambda s: bool(s.of_type("response_done")))
    await comm.disconnect()
    user_done = [m for m in seen.of_type("transcript_done") if m["role"] == "user"]
    assert user_done[0]["text"] == "How are you today?"
    assert seen.audio_bytes > 0
    _, turns, _ = await _stored(seen.of_type("ready")[0]["conversation_id"])
    assert [(t.role, bool(t.text)) for t in turns] == [("user", True), ("assistant", True)]
    assert turns[0].text == "How are you today?"


async def test_barge_in_truncate_is_clamped_to_the_audio_forwarded(use_simulator, cookie):
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    await comm.send_to(text_data='{"type":"text","text":"Tell me a story"}')
    seen = await collect(comm, seen, lambda s: bool(s.of_type("audio_done")))
    item_id = seen.of_type("assistant_item")[0]["item_id"]
    forwarded_ms = seen.audio_bytes // 48
    await comm.send_to(text_data=f'{{"type":"truncate","item_id":"{item_id}","audio_end_ms":{forwarded_ms + 5000}}}')
    seen = await collect(comm, seen, lambda s: bool(s.of_type("truncated")))
    await comm.disconnect()
    sent = [e for e in use_simulator.received if e["type"] == "conversation.item.truncate"]
    assert sent[0]["item_id"] == item_id and sent[0]["audio_end_ms"] == forwarded_ms
    _, turns, _ = await _stored(seen.of_type("ready")[0]["conversation_id"])
    assert turns[1].interrupted and turns[1].audio_ms == forwarded_ms


async def test_bad_browser_messages_get_a_clear_error_and_the_session_goes_on(use_simulator, cookie):
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    await comm.send_to(text_data='{"type":"session.update","session":{"instructions":"leak"}}')
    await comm.send_to(bytes_data=b"\x00\x01\x02")
    await comm.send_to(text_data='{"type":"truncate","item_id":"nope","audio_end_ms":10}')
    seen = await collect(comm, seen, lambda s: len(s.of_type("error")) >= 3)
    assert [e["code"] for e in seen.of_type("error")] == ["unknown_type", "invalid_audio", "unknown_item"]
    assert not any(e["fatal"] for e in seen.of_type("error"))
    await comm.send_to(text_data='{"type":"ping","t":7}')
    seen = await collect(comm, seen, lambda s: bool(s.of_type("pong")))
    assert seen.of_type("pong")[0]["t"] == 7
    await comm.disconnect()
    assert not any(e["type"] == "session.update" and e["session"].get("instructions") == "leak" for e in use_simulator.received)


async def test_anonymous_socket_is_refused_before_upstream(use_simulator):
    comm = communicator(None)
    connected, _ = await comm.connect()
    assert not connected
    await comm.disconnect()  # as daphne does after a refused handshake, so the consumer stops
    assert use_simulator.sessions == []


async def test_foreign_origin_socket_is_refused_before_upstream(use_simulator, cookie):
    comm = communicator(cookie, origin=b"https://evil.example")
    connected, _ = await comm.connect()
    assert not connected
    await comm.disconnect()
    assert use_simulator.sessions == []


async def test_upstream_401_is_reported_in_plain_words(use_simulator, settings, cookie):
    settings.AZURE_OPENAI_API_KEY = "wrong-key"
    comm = communicator(cookie)
    connected, _ = await comm.connect()
    assert connected
    seen = await collect(comm, Transcript(), lambda s: False)
    error = seen.of_type("error")[0]
    assert error["code"] == "upstream_auth" and error["fatal"]
    assert error["message"] == NOT_AVAILABLE  # plain words; the setting to check is for staff
    assert seen.closed_code == 4401
    await comm.disconnect()
    # Nothing was said: no empty failed conversation is left behind.
    assert not await database_sync_to_async(Conversation.objects.exists)()


async def test_unknown_deployment_is_reported(use_simulator, settings, cookie):
    settings.AZURE_OPENAI_DEPLOYMENT = "no-such-deployment"
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: False)
    assert seen.of_type("error")[0]["code"] == "upstream_not_found"
    assert seen.closed_code == 4404
    await comm.disconnect()


async def test_unreachable_upstream_is_reported(settings, cookie):
    settings.REALTIME_SIMULATED = False
    settings.AZURE_OPENAI_ENDPOINT = "http://127.0.0.1:9"  # discard port: nothing listens
    settings.AZURE_OPENAI_API_KEY = "k"
    settings.AZURE_OPENAI_API_VERSION = ""
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: False)
    assert seen.of_type("error")[0]["code"] == "upstream_unavailable"
    assert seen.closed_code == 4502
    await comm.disconnect()
