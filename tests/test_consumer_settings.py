"""Saved settings reach upstream in the right dialect; push-to-talk is enforced by the server."""
import pytest
from channels.db import database_sync_to_async

from conversations import services
from conversations.realtime.options import Preferences

from .audio import silence, speech
from .relay import Transcript, collect, communicator, send_pcm

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("end_live_conversations")]


@database_sync_to_async
def save(user, **changes):
    services.preferences_update(user=user, preferences=Preferences(**changes))


def updates(sim):
    return [e for e in sim.received if e["type"] == "session.update"]


async def ready(comm) -> Transcript:
    return await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))


async def test_saved_settings_shape_the_ga_session(use_simulator, user, cookie):
    await save(user, voice="marin", turn_detection="semantic_vad", eagerness="low", language="de", speed=1.2,
               noise_reduction="far_field", instructions="Be brief.")
    comm = communicator(cookie)
    await comm.connect()
    seen = await ready(comm)
    await comm.disconnect()
    assert seen.of_type("ready")[0]["settings"] == {"turn_detection": "semantic_vad", "voice": "marin", "language": "de"}
    session = updates(use_simulator)[0]["session"]
    assert session["type"] == "realtime"
    assert session["audio"]["output"]["voice"] == "marin" and session["audio"]["output"]["speed"] == 1.2
    assert session["audio"]["input"]["turn_detection"] == {"type": "semantic_vad", "eagerness": "low",
                                                           "create_response": True, "interrupt_response": True}
    assert session["audio"]["input"]["transcription"]["language"] == "de"
    assert session["audio"]["input"]["noise_reduction"] == {"type": "far_field"}
    assert session["instructions"] == "Be brief.\n\nAlways answer in German."


async def test_saved_settings_shape_the_preview_session(use_simulator, settings, user, cookie):
    settings.AZURE_OPENAI_API_VERSION = "2025-04-01-preview"
    settings.AZURE_OPENAI_DEPLOYMENT = "gpt-4o-realtime-preview"
    await save(user, voice="verse", temperature=1.1, vad_threshold=0.7, silence_duration_ms=900, max_response_tokens=250)
    comm = communicator(cookie)
    await comm.connect()
    await ready(comm)
    await comm.disconnect()
    session = updates(use_simulator)[0]["session"]
    assert "type" not in session and session["voice"] == "verse" and session["temperature"] == 1.1
    assert session["turn_detection"]["threshold"] == 0.7 and session["turn_detection"]["silence_duration_ms"] == 900
    assert session["max_response_output_tokens"] == 250


async def test_applying_settings_mid_conversation_updates_upstream(use_simulator, user, cookie):
    comm = communicator(cookie)
    await comm.connect()
    seen = await ready(comm)
    await save(user, voice="coral", turn_detection="push_to_talk")
    await comm.send_to(text_data='{"type":"apply_settings"}')
    seen = await collect(comm, seen, lambda s: bool(s.of_type("settings_applied")))
    await comm.disconnect()
    applied = seen.of_type("settings_applied")[0]
    assert applied["voice_locked"] is False
    assert applied["settings"]["turn_detection"] == "push_to_talk" and applied["settings"]["voice"] == "coral"
    latest = updates(use_simulator)[-1]["session"]
    assert latest["audio"]["input"]["turn_detection"] is None and latest["audio"]["output"]["voice"] == "coral"
    assert not [m for m in seen.of_type("error")]


async def test_the_voice_is_locked_once_the_assistant_has_spoken(use_simulator, user, cookie):
    comm = communicator(cookie)
    await comm.connect()
    seen = await ready(comm)
    await comm.send_to(text_data='{"type":"text","text":"Say something"}')
    seen = await collect(comm, seen, lambda s: bool(s.of_type("response_done")))
    await save(user, voice="sage", language="es")
    await comm.send_to(text_data='{"type":"apply_settings"}')
    seen = await collect(comm, seen, lambda s: bool(s.of_type("settings_applied")))
    await comm.disconnect()
    applied = seen.of_type("settings_applied")[0]
    assert applied["voice_locked"] is True and applied["settings"]["voice"] == "alloy"
    assert applied["settings"]["language"] == "es"
    latest = updates(use_simulator)[-1]["session"]
    assert latest["audio"]["output"]["voice"] == "alloy"  # never asked to change: no cannot_update_voice
    assert not seen.of_type("error")


async def test_push_to_talk_forwards_audio_only_while_held_and_answers_on_release(use_simulator, user, cookie):
    await save(user, turn_detection="push_to_talk")
    comm = communicator(cookie)
    await comm.connect()
    seen = await ready(comm)
    await send_pcm(comm, speech() + silence(600))  # released: the model must hear none of it
    await comm.send_to(text_data='{"type":"ping","t":1}')
    seen = await collect(comm, seen, lambda s: bool(s.of_type("pong")))
    assert not [e for e in use_simulator.received if e["type"] == "input_audio_buffer.append"]
    assert not seen.of_type("speech_started")

    await comm.send_to(text_data='{"type":"press"}')
    await send_pcm(comm, speech())
    await comm.send_to(text_data='{"type":"commit"}')
    seen = await collect(
        comm, seen, lambda s: bool(s.of_type("response_done")) and any(m["role"] == "user" for m in s.of_type("transcript_done"))
    )
    await comm.disconnect()
    kinds = [e["type"] for e in use_simulator.received if e["type"] != "session.update"]
    assert kinds[0] == "input_audio_buffer.clear"
    assert kinds[-2:] == ["input_audio_buffer.commit", "response.create"]
    assert seen.audio_bytes > 0 and [m for m in seen.of_type("transcript_done") if m["role"] == "user"]


async def test_a_push_to_talk_tap_too_short_to_commit_gets_a_plain_message(use_simulator, user, cookie):
    await save(user, turn_detection="push_to_talk")
    comm = communicator(cookie)
    await comm.connect()
    seen = await ready(comm)
    await comm.send_to(text_data='{"type":"press"}')
    await send_pcm(comm, silence(40))
    await comm.send_to(text_data='{"type":"commit"}')
    seen = await collect(comm, seen, lambda s: bool(s.of_type("error")))
    await comm.disconnect()
    assert seen.of_type("error")[0]["code"] == "too_short" and not seen.of_type("error")[0]["fatal"]
    assert "input_audio_buffer.commit" not in [e["type"] for e in use_simulator.received]


async def test_the_check_socket_answers_pings_for_logged_in_users_only(cookie):
    comm = communicator(cookie, path="/ws/check/")
    assert (await comm.connect())[0]
    await comm.send_to(text_data='{"type":"ping","t":42.5}')
    assert await comm.receive_json_from() == {"type": "pong", "t": 42.5}
    await comm.send_to(text_data='{"type":"text","text":"hi"}')
    assert (await comm.receive_json_from())["code"] == "unknown_type"
    await comm.disconnect()
    anonymous = communicator(None, path="/ws/check/")
    assert not (await anonymous.connect())[0]
    await anonymous.disconnect()
