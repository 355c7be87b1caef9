"""Limits through the whole ASGI app: refusals at Start with the reason, and a conversation ended by its audio limit."""
import re

import pytest
from channels.db import database_sync_to_async

from conversations.models import Conversation, Turn, UserLimits

from .relay import Transcript, collect, communicator

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("end_live_conversations")]


@database_sync_to_async
def _limit(user, **values):
    UserLimits.objects.update_or_create(user=user, defaults=values)


async def _ready(cookie, query=""):
    comm = communicator(cookie, path="/ws/talk/" + query)
    await comm.connect()
    return comm, await collect(comm, Transcript(), lambda s: bool(s.of_type("ready") or s.of_type("error")))


async def test_a_second_conversation_over_a_limit_of_one_is_refused_with_the_reason(use_simulator, user, cookie):
    await _limit(user, max_concurrent=1)
    first, seen = await _ready(cookie)
    assert seen.of_type("ready")
    second, refused = await _ready(cookie)
    refused = await collect(second, refused, lambda s: False)
    error = refused.of_type("error")[0]
    assert error["code"] == "limit_reached" and error["fatal"] and error["limit"] == "concurrent"
    assert "1 conversation going" in error["message"]
    assert refused.closed_code == 4429
    assert await database_sync_to_async(Conversation.objects.count)() == 1  # nothing stored for the refused one
    await first.disconnect()  # Stop: the slot is free again
    third, seen = await _ready(cookie)
    assert seen.of_type("ready")
    await third.disconnect()


async def test_too_many_new_conversations_in_an_hour_are_refused_with_when_it_resets(use_simulator, user, cookie):
    await _limit(user, new_per_hour=1)
    first, seen = await _ready(cookie)
    assert seen.of_type("ready")
    await first.disconnect()
    second, refused = await _ready(cookie)
    error = refused.of_type("error")[0]
    # "at 23:05", or "tomorrow at 00:05" late in the evening.
    assert error["limit"] == "new_per_hour" and re.search(r"you can start another (tomorrow )?at \d\d:\d\d",
                                                              error["message"])
    assert error["resets_at"]
    await second.disconnect()


async def test_the_audio_limit_ends_the_conversation_after_the_current_reply_with_every_turn_stored(
        use_simulator, user, cookie):
    await _limit(user, audio_minutes_per_day="0.05")  # 3 seconds
    comm, seen = await _ready(cookie)
    conversation_id = seen.of_type("ready")[0]["conversation_id"]
    await comm.send_to(text_data='{"type":"text","text":"Please tell me a long story about the sea"}')
    seen = await collect(comm, seen, lambda s: False, timeout=30)
    types = [m["type"] for m in seen.messages]
    # Counted in the background: a count that lands mid-reply warns that the reply is the last; one that
    # lands after it (the simulator answers faster than real time) ends the idle conversation at once.
    for warning in seen.of_type("limit_warning"):
        assert warning["limit"] == "audio_per_day" and warning["reached"]
        assert "ends after this reply" in warning["message"]
    error = seen.of_type("error")[-1]
    assert error["code"] == "limit_reached" and error["message"].startswith("You have reached your daily audio limit")
    assert "it resets " in error["message"] and error["resets_at"]
    assert types.index("response_done") < types.index("error")  # the reply was finished first
    assert seen.closed_code == 4429
    turns = await database_sync_to_async(lambda: list(Turn.objects.filter(conversation_id=conversation_id)
                                                      .order_by("position")))()
    assert [t.role for t in turns] == ["user", "assistant"]
    assert turns[1].text and not turns[1].interrupted
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=conversation_id)
    assert conversation.status == Conversation.Status.ENDED and "daily audio limit" in conversation.error

    # Over the limit now: the next Start is refused with the reason and when it resets.
    again, refused = await _ready(cookie)
    assert refused.of_type("error")[0]["limit"] == "audio_per_day"
    await again.disconnect()
