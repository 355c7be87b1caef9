"""What happens when a conversation ends abruptly, and when no endpoint is configured at all."""
import pytest
from channels.db import database_sync_to_async

from conversations.models import Conversation, Turn
from conversations.realtime.simulator import RealtimeSimulator

from .relay import Transcript, collect, communicator, point_at

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("end_live_conversations")]


@database_sync_to_async
def _turns(conversation_id):
    return list(Turn.objects.filter(conversation_id=conversation_id).order_by("position"))


async def test_closing_the_tab_mid_reply_keeps_what_was_said(settings, cookie):
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=True) as sim:
        point_at(settings, sim)
        comm = communicator(cookie)
        await comm.connect()
        seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
        await comm.send_to(text_data='{"type":"text","text":"Please talk for a while"}')
        seen = await collect(
            comm, seen, lambda s: len([m for m in s.of_type("transcript") if m["role"] == "assistant"]) >= 2 and s.audio
        )
        assert not seen.of_type("response_done")  # still speaking
        await comm.disconnect()
        assert sim.validation_errors == []

    heard = "".join(m["delta"] for m in seen.of_type("transcript") if m["role"] == "assistant")
    turns = await _turns(seen.of_type("ready")[0]["conversation_id"])
    assert [t.role for t in turns] == ["user", "assistant"]
    assert turns[1].text.startswith(heard) and heard
    assert turns[1].interrupted
    assert turns[1].audio_ms >= seen.audio_bytes // 48


async def test_an_upstream_that_keeps_dropping_ends_the_conversation_after_the_tries(settings, cookie):
    settings.RELAY_RECONNECT_TRIES = 3
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=False, drop_after_events=2) as sim:
        point_at(settings, sim)
        comm = communicator(cookie)
        await comm.connect()
        seen = await collect(comm, Transcript(), lambda s: False)
        await comm.disconnect()
    assert [m["attempt"] for m in seen.of_type("reconnecting")] == [1, 2, 3]
    error = seen.of_type("error")[-1]
    assert error["code"] == "upstream_lost" and error["fatal"]
    assert "saved" in error["message"]
    assert seen.closed_code == 4502
    assert len(sim.sessions) == 4  # the first session and three tries


async def test_with_no_endpoint_the_built_in_simulator_answers(settings, cookie):
    settings.REALTIME_SIMULATED = True
    settings.AZURE_OPENAI_ENDPOINT = ""
    settings.AZURE_OPENAI_API_VERSION = ""
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    assert seen.of_type("ready")[0]["provider"] == "simulator"
    await comm.send_to(text_data='{"type":"text","text":"Hello"}')
    seen = await collect(comm, seen, lambda s: bool(s.of_type("response_done")))
    await comm.disconnect()
    assert seen.audio_bytes > 0
    conversation = await database_sync_to_async(Conversation.objects.get)()
    assert conversation.provider == "simulator" and conversation.status == Conversation.Status.ENDED


async def test_a_conversation_that_cannot_be_stored_is_refused_in_plain_words(use_simulator, cookie, monkeypatch):
    from conversations import services

    def broken(**kwargs):
        raise RuntimeError("database is down")

    monkeypatch.setattr(services, "conversation_start", broken)
    comm = communicator(cookie)
    assert (await comm.connect())[0]
    seen = await collect(comm, Transcript(), lambda s: False)
    await comm.disconnect()
    error = seen.of_type("error")[0]
    assert error["fatal"] and "could not be started" in error["message"] and "database" not in error["message"]
    assert seen.closed_code == 1011
    assert use_simulator.sessions == []


class _Credential:
    """Stands in for azure-identity's credential; the real one would probe a cloud metadata address."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    async def get_token(self, scope: str):
        from types import SimpleNamespace

        if self.token is None:
            raise RuntimeError("DefaultAzureCredential failed to retrieve a token")
        return SimpleNamespace(token=self.token, expires_on=9_999_999_999)


@pytest.mark.parametrize("token,works", [("sim-key", True), (None, False)], ids=["token", "no-token"])
async def test_keyless_azure_sends_an_entra_token_or_reports_the_credentials(use_simulator, settings, cookie, monkeypatch, token, works):
    from conversations import upstream
    from conversations.realtime.client import EntraTokenProvider

    settings.AZURE_OPENAI_API_KEY = ""  # keyless
    monkeypatch.setattr(upstream, "entra_token_provider", lambda: EntraTokenProvider(_Credential(token)))
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    await comm.disconnect()
    if works:
        assert use_simulator.sessions[0].headers["authorization"] == "Bearer sim-key"
        assert "api-key" not in use_simulator.sessions[0].headers
    else:
        assert seen.of_type("error")[0]["code"] == "upstream_auth" and seen.closed_code == 4401
        assert use_simulator.sessions == []


async def test_a_reply_cut_mid_stream_keeps_the_heard_length_when_the_tab_closes(settings, cookie):
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=True) as sim:
        point_at(settings, sim)
        comm = communicator(cookie)
        await comm.connect()
        seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
        await comm.send_to(text_data='{"type":"text","text":"Please talk for a while"}')
        seen = await collect(comm, seen, lambda s: s.audio_bytes >= 48 * 400)
        item_id = seen.of_type("assistant_item")[0]["item_id"]
        await comm.send_to(text_data=f'{{"type":"truncate","item_id":"{item_id}","audio_end_ms":300}}')
        seen = await collect(comm, seen, lambda s: bool(s.of_type("truncated")))
        assert not seen.of_type("audio_done")  # still streaming when the user leaves
        await comm.disconnect()

    turns = await _turns(seen.of_type("ready")[0]["conversation_id"])
    assert turns[1].interrupted and turns[1].audio_ms == 300
