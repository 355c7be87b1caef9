"""The deployment's concurrency cap and cool-down through the whole ASGI app: "busy, try again in N s", nobody else hurt."""
import pytest
from channels.db import database_sync_to_async

from conversations.models import Conversation

from .conftest import session_cookie_for
from .relay import Transcript, collect, communicator

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("end_live_conversations")]
LOW = [{"name": "requests", "limit": 100, "remaining": 0, "reset_seconds": 20},
       {"name": "tokens", "limit": 50000, "remaining": 40000, "reset_seconds": 1}]


@pytest.fixture
def grace(django_user_model):
    """A second user, with the session cookie of their own socket."""
    return session_cookie_for(django_user_model.objects.create_user(username="grace", password="another horse"))


async def _open(cookie, query=""):
    comm = communicator(cookie, path="/ws/talk/" + query)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready") or s.of_type("error")))
    if not seen.of_type("ready"):
        seen = await collect(comm, seen, lambda s: False)  # refused: until the socket closes
    return comm, seen


def _busy(seen: Transcript) -> dict:
    error = seen.of_type("error")[0]
    assert error["code"] == "busy" and error["fatal"]
    assert error["message"] == f"The voice service is busy right now; try again in {error['retry_after_s']} s."
    assert seen.closed_code == 4503
    return error


async def _say(comm, seen, text="Hello there"):
    await comm.send_to(text_data='{"type":"text","text":"%s"}' % text)
    n = len(seen.of_type("response_done"))
    return await collect(comm, seen, lambda s: len(s.of_type("response_done")) > n, timeout=20)


async def test_over_a_cap_of_one_another_users_start_is_busy_until_the_first_conversation_ends(
        settings, use_simulator, cookie, grace):
    settings.DEPLOYMENT_MAX_SESSIONS = 1
    settings.DEPLOYMENT_BUSY_RETRY_SECONDS = 20
    first, seen = await _open(cookie)
    assert seen.of_type("ready")
    second, refused = await _open(grace)
    error = _busy(refused)
    assert error["reason"] == "full" and 15 <= error["retry_after_s"] <= 25
    assert len(use_simulator.sessions) == 1  # refused before any upstream session was opened
    assert await database_sync_to_async(Conversation.objects.count)() == 1  # and nothing stored for it
    await first.disconnect()  # Stop: the slot is free again
    third, seen = await _open(grace)
    assert seen.of_type("ready")
    await third.disconnect()


async def test_continuing_a_conversation_also_needs_a_slot(settings, use_simulator, cookie, grace):
    settings.DEPLOYMENT_MAX_SESSIONS = 1
    earlier, seen = await _open(grace)
    conversation_id = seen.of_type("ready")[0]["conversation_id"]
    seen = await _say(earlier, seen)
    await earlier.disconnect()
    first, seen = await _open(cookie)
    assert seen.of_type("ready")
    again, refused = await _open(grace, f"?conversation={conversation_id}")
    assert _busy(refused)["reason"] == "full"
    await first.disconnect()
    again, seen = await _open(grace, f"?conversation={conversation_id}")
    assert seen.of_type("ready")[0]["continued"]
    await again.disconnect()


async def test_a_429_at_the_handshake_refuses_new_conversations_for_its_retry_after(use_simulator, cookie, grace):
    use_simulator.refuse_next(429, retry_after_s=9)
    first, seen = await _open(cookie)
    error = _busy(seen)
    assert error["retry_after_s"] == 9
    # Every worker now refuses new conversations without asking the service again.
    second, refused = await _open(grace)
    error = _busy(refused)
    assert error["reason"] == "cooling" and 1 <= error["retry_after_s"] <= 9
    assert len(use_simulator.rejected) == 1 and not use_simulator.sessions
    assert await database_sync_to_async(Conversation.objects.count)() == 0


async def test_rate_limits_near_zero_refuse_new_conversations_while_the_running_one_goes_on(
        use_simulator, cookie, grace):
    first, seen = await _open(cookie)
    use_simulator.options.rate_limits = LOW
    seen = await _say(first, seen)
    second, refused = await _open(grace)
    error = _busy(refused)
    assert error["reason"] == "cooling" and 15 <= error["retry_after_s"] <= 20
    use_simulator.options.rate_limits = None
    seen = await _say(first, seen, "Still there?")  # the admitted conversation keeps going
    assert len(seen.of_type("response_done")) == 2 and not seen.of_type("error")
    await first.disconnect()


async def test_a_429_on_reconnect_waits_out_its_retry_after_then_carries_on(use_simulator, cookie):
    comm, seen = await _open(cookie)
    use_simulator.refuse_next(429, retry_after_s=2)
    await use_simulator.drop_sessions()
    seen = await collect(comm, seen, lambda s: len(s.of_type("ready")) >= 2, timeout=20)
    tries = seen.of_type("reconnecting")
    assert tries[0]["attempt"] == 1 and tries[1]["attempt"] == 2
    assert tries[1]["delay_ms"] >= 2000  # the service's wait, not the usual half second
    assert not seen.of_type("error")
    await comm.disconnect()
