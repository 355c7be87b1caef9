"""Each way real Azure fails, through the whole app against its simulator knob: plain words, nothing lost."""
from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from conversations.models import Conversation, Turn, Usage
from conversations.realtime.simulator import RealtimeSimulator

from .audio import silence, speech
from .relay import Transcript, collect, communicator, point_at, send_pcm

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("end_live_conversations"),
]


def _done(seen: Transcript, n: int = 1) -> bool:
    return len(seen.of_type("response_done")) >= n


async def _open(comm) -> Transcript:
    await comm.connect()
    return await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")) or s.closed_code is not None)


async def _until_closed(comm, seen: Transcript) -> Transcript:
    if seen.closed_code is None:
        seen = await collect(comm, seen, lambda s: False)
    return seen


@database_sync_to_async
def _turns(conversation_id=None) -> list[Turn]:
    qs = Turn.objects.all() if conversation_id is None else Turn.objects.filter(conversation_id=conversation_id)
    return list(qs.order_by("position"))


@pytest.mark.parametrize("staff", [False, True], ids=["user", "staff"])
async def test_a_rejected_session_update_stops_with_the_parameter_named_and_never_runs_on_defaults(
    settings, cookie, user, staff
):
    if staff:
        user.is_staff = True
        await database_sync_to_async(user.save)()
    param = "session.audio.input.transcription.model"
    async with RealtimeSimulator(api_key="sim-key", strict=True, reject_session_update_param=param) as sim:
        point_at(settings, sim)
        comm = communicator(cookie)
        seen = await _until_closed(comm, await _open(comm))
        await comm.disconnect()
    assert not seen.of_type("ready")  # the browser never streams into a session on the service's defaults
    error = seen.of_type("error")[-1]
    assert error["fatal"] and error["code"] == "session_rejected"
    assert seen.closed_code == 1011
    if staff:
        assert param in error["message"] and "AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT" in error["message"]
    else:
        assert "session" not in error["message"] and "AZURE" not in error["message"]
    assert not await database_sync_to_async(Conversation.objects.exists)()  # nothing said: nothing left behind


@pytest.mark.parametrize(
    "outcome,status,reason,words",
    [
        ("failed", "failed", "", "failed to answer"),
        ("incomplete:max_output_tokens", "incomplete", "max_output_tokens", "longest answer"),
        ("incomplete:content_filter", "incomplete", "content_filter", "content filter"),
    ],
)
async def test_a_reply_that_fails_or_is_cut_is_explained_and_stored_on_its_turn(
    settings, cookie, outcome, status, reason, words
):
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=False) as sim:
        point_at(settings, sim)
        sim.next_responses([outcome])
        comm = communicator(cookie)
        seen = await _open(comm)
        await comm.send_to(text_data='{"type":"text","text":"Tell me a long story"}')
        seen = await collect(comm, seen, _done)
        await comm.disconnect()
    done = seen.of_type("response_done")[0]
    assert done["status"] == status and words in done["message"]
    if status == "failed":
        assert done["reason"]  # the service's error code or type
    else:
        assert done["reason"] == reason
    turns = await _turns()
    replies = [t for t in turns if t.role == "assistant"]
    if replies:  # a failed response may produce no item at all
        assert replies[0].status == status and replies[0].status_reason == done["reason"]
    usage = await database_sync_to_async(lambda: list(Usage.objects.all()))()
    assert [u.status for u in usage] == [status]


async def test_a_server_error_mid_session_is_reported_in_plain_words_and_the_conversation_goes_on(settings, cookie):
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=False) as sim:
        point_at(settings, sim)
        comm = communicator(cookie)
        seen = await _open(comm)
        assert await sim.inject_server_error() == 1
        seen = await collect(comm, seen, lambda s: bool(s.of_type("error")))
        error = seen.of_type("error")[0]
        assert error["code"] == "server_error" and not error["fatal"]
        assert "problem" in error["message"] and "server_error" not in error["message"]
        await comm.send_to(text_data='{"type":"text","text":"Still there?"}')
        seen = await collect(comm, seen, _done)
        await comm.disconnect()


async def test_repeated_transcription_failures_give_one_message_then_a_quiet_marker(settings, cookie):
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=False, transcription_failures=2) as sim:
        point_at(settings, sim)
        comm = communicator(cookie)
        seen = await _open(comm)
        for turn in (1, 2):
            await send_pcm(comm, speech() + silence(1200))
            seen = await collect(comm, seen, lambda s, n=turn: _done(s, n) and len(
                [m for m in s.of_type("transcript_done") if m.get("failed")]) >= n)
        await comm.disconnect()
    failed = [m for m in seen.of_type("transcript_done") if m.get("failed")]
    assert len(failed) == 2
    assert [e["code"] for e in seen.of_type("error")] == ["transcription_failed"]
    users = [t for t in await _turns() if t.role == "user"]
    assert [t.status for t in users] == ["transcription_failed", "transcription_failed"]


@pytest.mark.parametrize("command", ["text", "press"])
async def test_a_message_or_press_while_a_reply_runs_cancels_it_first_and_never_overlaps_responses(
    settings, cookie, command
):
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=True) as sim:
        point_at(settings, sim)
        comm = communicator(cookie)
        seen = await _open(comm)
        await comm.send_to(text_data='{"type":"text","text":"Please talk for a while about rivers"}')
        seen = await collect(comm, seen, lambda s: bool(s.audio))
        if command == "text":
            await comm.send_to(text_data='{"type":"text","text":"Stop, tell me about lakes"}')
        else:
            await comm.send_to(text_data='{"type":"press"}')
            await send_pcm(comm, speech())
            await comm.send_to(text_data='{"type":"commit"}')
        seen = await collect(comm, seen, lambda s: _done(s, 2), timeout=20)
        await comm.disconnect()
    assert [m["status"] for m in seen.of_type("response_done")][:2] == ["cancelled", "completed"]
    codes = [e.get("code") for e in seen.of_type("error")]
    assert "conversation_already_has_active_response" not in codes
    kinds = [e["type"] for e in sim.received if e["type"] in ("response.cancel", "response.create")]
    assert kinds == ["response.create", "response.cancel", "response.create"]


@pytest.mark.parametrize("staff", [False, True], ids=["user", "staff"])
async def test_a_handshake_400_is_a_configuration_problem_not_a_retry(settings, cookie, user, staff):
    if staff:
        user.is_staff = True
        await database_sync_to_async(user.save)()
    async with RealtimeSimulator(api_key="sim-key", strict=True, deployments={"chat": "gpt-4o"}) as sim:
        point_at(settings, sim)
        settings.AZURE_OPENAI_DEPLOYMENT = "chat"
        comm = communicator(cookie)
        seen = await _until_closed(comm, await _open(comm))
        await comm.disconnect()
    error = seen.of_type("error")[-1]
    assert error["code"] == "upstream_config" and seen.closed_code == 4400
    assert ("AZURE_OPENAI_API_VERSION" in error["message"]) == staff
    if staff:  # what to fix; the others are told plainly to come back later or tell the operator
        assert "try again" not in error["message"].lower()
    assert not seen.of_type("reconnecting") and len(sim.rejected) == 1


@pytest.mark.parametrize("how", ["expire", "close_1001", "drop"])
@pytest.mark.parametrize("api_version", ["", "2025-04-01-preview"], ids=["ga", "preview"])
async def test_a_session_that_ends_under_the_conversation_is_replaced_and_the_turns_stay_whole(
    settings, cookie, how, api_version
):
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=True) as sim:
        point_at(settings, sim, api_version=api_version)
        comm = communicator(cookie)
        seen = await _open(comm)
        await comm.send_to(text_data='{"type":"text","text":"Note the number seven"}')
        seen = await collect(comm, seen, lambda s: _done(s, 1))
        if how == "drop":
            # Mid-reply: the cut reply is stored as interrupted.
            await comm.send_to(text_data='{"type":"text","text":"Now talk for a while about numbers"}')
            second_reply = lambda s: len(s.of_type("assistant_item")) >= 2  # noqa: E731
            seen = await collect(comm, seen, second_reply)
            heard = len(seen.audio)
            seen = await collect(comm, seen, lambda s: len(s.audio) >= heard + 2)
            assert await sim.drop_sessions() == 1
        elif how == "expire":
            assert await sim.expire_sessions() == 1
        else:
            assert await sim.close_sessions(code=1001) == 1
        seen = await collect(comm, seen, lambda s: len(s.of_type("ready")) >= 2, timeout=15)
        answered = len([m for m in seen.of_type("response_done") if m["status"] == "completed"])
        await comm.send_to(text_data='{"type":"text","text":"Which number was it"}')
        seen = await collect(comm, seen, lambda s: len(
            [m for m in s.of_type("response_done") if m["status"] == "completed"]) > answered, timeout=15)
        await comm.disconnect()
        assert sim.validation_errors == []

    assert seen.of_type("reconnecting")
    assert not [e for e in seen.of_type("error") if e["fatal"]]
    readies = seen.of_type("ready")
    assert len({r["conversation_id"] for r in readies}) == 1
    second = [e for e in sim.received if e["_session"] == 1]
    kinds = [e["type"] for e in second]
    assert kinds.index("conversation.item.create") < kinds.index("response.create")
    seeded = [e["item"]["content"][0]["text"] for e in second if e["type"] == "conversation.item.create"]
    assert seeded[0] == "Note the number seven"
    turns = await _turns(readies[0]["conversation_id"])
    assert [t.position for t in turns] == list(range(len(turns)))
    assert len({t.item_id for t in turns}) == len(turns)  # seeded items were not stored twice
    assert turns[-2].text == "Which number was it"
    if how == "drop":
        cut = turns[3]
        assert cut.role == "assistant" and cut.interrupted and cut.text
        usage = await database_sync_to_async(lambda: list(Usage.objects.order_by("created_at")))()
        assert any(u.estimated for u in usage)  # the service never reported the cut reply's tokens


async def test_reconnect_tries_back_off_and_a_later_try_succeeds(settings, cookie):
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=False) as sim:
        point_at(settings, sim)
        comm = communicator(cookie)
        seen = await _open(comm)
        sim.refuse_next(503, n=2)
        await sim.drop_sessions()
        seen = await collect(comm, seen, lambda s: len(s.of_type("ready")) >= 2, timeout=15)
        await comm.disconnect()
    tries = seen.of_type("reconnecting")
    assert [t["attempt"] for t in tries] == [1, 2, 3]
    assert tries[1]["delay_ms"] <= tries[2]["delay_ms"] or tries[2]["delay_ms"] > 0
    assert len(sim.rejected) == 2
    await asyncio.sleep(0)
