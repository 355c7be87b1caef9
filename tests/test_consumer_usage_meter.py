"""The talk page's meter and the limits while a conversation runs: `usage` after each reply, warnings, cost and length limits."""
import json

import pytest
from channels.db import database_sync_to_async

import asyncio
import datetime

from conversations.models import Conversation, ModelPrice, Turn, UserLimits
from conversations.realtime.simulator import RealtimeSimulator

from .audio import silence, speech
from .relay import Transcript, collect, communicator, point_at, send_pcm

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("end_live_conversations")]

STORY = json.dumps({"type": "text", "text": "Please tell me a long story about the sea and the ships on it"})


@pytest.fixture(autouse=True)
def priced(transactional_db):
    """gpt-realtime's list prices (a transactional test starts without the migration's rows)."""
    ModelPrice.objects.update_or_create(model="gpt-realtime", defaults=dict(
        text_input=4, cached_text_input="0.4", text_output=16, audio_input=32, cached_audio_input="0.4",
        audio_output=64, as_of=datetime.date(2025, 10, 6)))


@database_sync_to_async
def _limit(user, **values):
    UserLimits.objects.update_or_create(user=user, defaults=values)


async def _ready(cookie):
    comm = communicator(cookie)
    await comm.connect()
    return comm, await collect(comm, Transcript(), lambda s: bool(s.of_type("ready") or s.of_type("error")))


async def test_ready_carries_todays_usage_against_the_limits(use_simulator, user, cookie):
    await _limit(user, audio_minutes_per_day="30", cost_per_day_usd="2")
    comm, seen = await _ready(cookie)
    usage = seen.of_type("ready")[0]["usage"]
    assert usage["today"] == {"audio_minutes": 0, "cost_usd": "0.000000"}
    assert usage["limits"] == {"audio_minutes_per_day": 30.0, "cost_per_day_usd": "2.000000", "cost_per_month_usd": None}
    assert usage["resets_at"]["day"] and usage["resets_at"]["month"]
    await comm.disconnect()


async def test_one_usage_message_follows_each_reply_with_the_new_totals(use_simulator, user, cookie):
    comm, seen = await _ready(cookie)
    for n in (1, 2):
        await comm.send_to(text_data=json.dumps({"type": "text", "text": f"Say something short, number {n}"}))
        seen = await collect(comm, seen, lambda s, n=n: len(s.of_type("usage")) >= n, timeout=30)
    usage = seen.of_type("usage")
    assert len(usage) == 2 == len(seen.of_type("response_done"))  # one per reply, not one per frame
    first, second = (float(u["today"]["cost_usd"]) for u in usage)
    assert 0 < first < second  # the simulator bills every reply and gpt-realtime has a price
    assert usage[1]["today"]["audio_minutes"] > usage[0]["today"]["audio_minutes"] > 0
    assert usage[0]["limits"]["audio_minutes_per_day"] is None  # the site's default: unlimited
    await comm.disconnect()


async def _talk_until_refused(comm, seen, limit_usd: float, key: str):
    """Ask for stories (about half a cent each) until the meter shows the limit reached, then wait for the end."""
    for n in range(1, 6):
        await comm.send_to(text_data=STORY)
        seen = await collect(comm, seen, lambda s, n=n: len(s.of_type("usage")) >= n, timeout=30)
        if float(seen.of_type("usage")[-1][key]["cost_usd"]) >= limit_usd:
            break
    return await collect(comm, seen, lambda s: False, timeout=10)


async def test_the_daily_cost_limit_ends_the_conversation_after_the_reply_and_refuses_the_next_start(
        use_simulator, user, cookie):
    await _limit(user, cost_per_day_usd="0.01")  # limits are kept to the cent
    comm, seen = await _ready(cookie)
    seen = await _talk_until_refused(comm, seen, 0.01, "today")
    types = [m["type"] for m in seen.messages if m["type"] != "limit_warning"]
    error = seen.of_type("error")[-1]
    assert error["limit"] == "cost_per_day" and error["code"] == "limit_reached" and error["resets_at"]
    assert "daily cost limit ($0.01)" in error["message"]
    assert types[-3:] == ["response_done", "usage", "error"]  # the reply finished first
    assert float(seen.of_type("usage")[-1]["today"]["cost_usd"]) >= 0.01 and seen.closed_code == 4429
    again, refused = await _ready(cookie)
    assert refused.of_type("error")[0]["limit"] == "cost_per_day"
    await again.disconnect()


async def test_the_monthly_cost_limit_is_counted_and_enforced_like_the_daily_one(use_simulator, user, cookie):
    await _limit(user, cost_per_month_usd="0.01")
    comm, seen = await _ready(cookie)
    seen = await _talk_until_refused(comm, seen, 0.01, "month")
    error = seen.of_type("error")[-1]
    assert error["limit"] == "cost_per_month" and "monthly cost limit" in error["message"]
    assert seen.closed_code == 4429


async def test_the_80_percent_warning_can_arrive_mid_reply_and_the_reply_goes_on(settings, user, cookie):
    # Real-time pacing: the reply takes seconds, so the count of the user's speech (made as the reply
    # starts) lands while it plays. Earlier talk today leaves 8 s short of 80% of a 10-minute limit; the
    # speech crosses 80%, and the reply (far under the 2 minutes left) does not reach 100%.
    await _earlier_audio(user, ms=8 * 60_000 - 1_000)
    await _limit(user, audio_minutes_per_day="10")
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=True) as sim:
        point_at(settings, sim)
        comm, seen = await _ready(cookie)
        await send_pcm(comm, speech("Tell me about the weather today please") + silence(1200))
        seen = await collect(comm, seen, lambda s: bool(s.of_type("limit_warning") or s.of_type("error")), timeout=30)
        warning = seen.of_type("limit_warning")[0]
        assert warning["limit"] == "audio_per_day" and not warning["reached"] and "80%" in warning["message"]
        types = [m["type"] for m in seen.messages]
        assert "response_done" not in types  # the reply is still going
        seen = await collect(comm, seen, lambda s: bool(s.of_type("usage")), timeout=30)
        assert seen.closed_code is None and not seen.of_type("error")
        assert len(seen.of_type("limit_warning")) == 1  # once per limit
        assert seen.of_type("usage")[0]["today"]["audio_minutes"] > 8
        await comm.disconnect()


@database_sync_to_async
def _earlier_audio(user, *, ms):
    conversation = Conversation.objects.create(user=user, provider="azure", deployment="gpt-realtime", dialect="ga",
                                               status=Conversation.Status.ENDED)
    Turn.objects.create(conversation=conversation, role="user", position=0, item_id="earlier", text="Hi", audio_ms=ms)


async def test_the_longest_conversation_timer_warns_then_ends_after_the_reply_in_progress(settings, user, cookie):
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=True) as sim:
        point_at(settings, sim)
        await _limit(user, max_conversation_minutes="0.05")  # 3 s: warned at 2.4 s, reached at 3 s
        comm, seen = await _ready(cookie)
        conversation_id = seen.of_type("ready")[0]["conversation_id"]
        await asyncio.sleep(1.5)  # so that both moments fall inside the reply (about 4 s, paced)
        await comm.send_to(text_data=STORY)
        seen = await collect(comm, seen, lambda s: False, timeout=30)
        warnings = seen.of_type("limit_warning")
        assert [w["reached"] for w in warnings][:1] == [False]
        assert all(w["limit"] == "conversation_minutes" for w in warnings)
        error = seen.of_type("error")[-1]
        assert error["limit"] == "conversation_minutes" and "press Start to continue it" in error["message"]
        assert error["resets_at"] is None and seen.closed_code == 4429
        types = [m["type"] for m in seen.messages]
        if "response_done" in types:  # reached mid-reply: the reply was finished first
            assert types.index("response_done") < types.index("error")
            assert any(w["reached"] and "ends after this reply" in w["message"] for w in warnings)
        conversation = await database_sync_to_async(Conversation.objects.get)(pk=conversation_id)
        assert conversation.status == Conversation.Status.ENDED
