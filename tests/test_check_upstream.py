"""The check socket's upstream check, through the whole ASGI app: ok, refused key, unreachable, bad deployment, limits."""
import asyncio
import json

import pytest

from conversations.realtime.simulator import RealtimeSimulator
from conversations.relay.failures import NOT_AVAILABLE

from .browser_support import free_port
from .conftest import session_cookie_for
from .relay import communicator

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def _ask(comm, timeout: float = 15.0) -> dict:
    """Send `upstream_check` and return its answer, skipping anything else."""
    await comm.send_to(text_data='{"type": "upstream_check"}')
    return await _answer(comm, timeout)


async def _answer(comm, timeout: float = 15.0) -> dict:
    while True:
        message = json.loads(await comm.receive_from(timeout=timeout))
        if message["type"] == "upstream_check":
            return message


async def _check(cookie) -> dict:
    comm = communicator(cookie, path="/ws/check/")
    connected, _ = await comm.connect()
    assert connected
    try:
        return await _ask(comm)
    finally:
        await comm.disconnect()


async def test_the_check_passes_when_the_service_accepts_the_key(use_simulator, cookie):
    result = await _check(cookie)
    assert result == {"type": "upstream_check", "ok": True, "code": "ok", "message": "The voice service accepted the connection."}
    assert len(use_simulator.sessions) == 1  # it really opened a session upstream


async def test_a_refused_key_is_reported_in_plain_words(use_simulator, settings, cookie):
    settings.AZURE_OPENAI_API_KEY = "not-the-key"
    result = await _check(cookie)
    assert result["ok"] is False and result["code"] == "upstream_auth"
    assert result["message"] == NOT_AVAILABLE  # internals (the setting, the role) are for staff


@pytest.fixture
def staff_cookie(django_user_model) -> bytes:
    """The session cookie of a staff user."""
    staff = django_user_model.objects.create_user(username="op", password="an operator's password", is_staff=True)
    return session_cookie_for(staff)


async def test_staff_are_told_which_setting_to_check(use_simulator, settings, staff_cookie):
    settings.AZURE_OPENAI_API_KEY = "not-the-key"
    result = await _check(staff_cookie)
    assert result["code"] == "upstream_auth" and "AZURE_OPENAI_API_KEY" in result["message"]


async def test_a_service_refusing_everyone_with_401_fails_the_check(settings, cookie):
    async with RealtimeSimulator(api_key="other", strict=True) as sim:
        settings.REALTIME_SIMULATED = False
        settings.AZURE_OPENAI_ENDPOINT = sim.url
        settings.AZURE_OPENAI_API_KEY = "sim-key"
        settings.AZURE_OPENAI_DEPLOYMENT = "gpt-realtime"
        settings.AZURE_OPENAI_API_VERSION = ""
        result = await _check(cookie)
    assert (result["ok"], result["code"]) == (False, "upstream_auth")


async def test_an_unreachable_service_fails_the_check(use_simulator, settings, cookie):
    settings.AZURE_OPENAI_ENDPOINT = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = await _check(cookie)
    assert (result["ok"], result["code"]) == (False, "upstream_unavailable")
    assert "could not be made" in result["message"]


async def test_a_missing_deployment_fails_the_check(use_simulator, settings, cookie):
    settings.AZURE_OPENAI_DEPLOYMENT = "no-such-deployment"
    result = await _check(cookie)
    assert (result["ok"], result["code"]) == (False, "upstream_not_found")


async def test_a_service_that_never_answers_is_cut_off_by_the_timeout(use_simulator, settings, cookie):
    async def silent(reader, writer):
        await asyncio.sleep(30)  # accepts TCP, never completes the WebSocket handshake

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings.AZURE_OPENAI_ENDPOINT = f"http://127.0.0.1:{port}"
    settings.REALTIME_CONNECT_TIMEOUT = 0.5
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await _check(cookie)
        assert loop.time() - started < 5
    finally:
        server.close()
    assert (result["ok"], result["code"]) == (False, "upstream_unavailable")


async def test_only_one_check_runs_at_a_time_and_pings_are_still_answered(use_simulator, cookie, monkeypatch):
    from conversations.relay import check

    # The first check waits at its first event until the test lets it go, so it is surely still running
    # when the second check and the ping arrive (against the in-process simulator it can be over at once).
    release = asyncio.Event()
    first_event_problem = check._first_event_problem

    async def held(connection):
        await release.wait()
        return await first_event_problem(connection)

    monkeypatch.setattr(check, "_first_event_problem", held)
    comm = communicator(cookie, path="/ws/check/")
    await comm.connect()
    try:
        await comm.send_to(text_data='{"type": "upstream_check"}')
        await comm.send_to(text_data='{"type": "upstream_check"}')
        await comm.send_to(text_data='{"type": "ping", "t": 7}')
        while_running = [json.loads(await comm.receive_from(timeout=15)) for _ in range(2)]
        release.set()
        finished = json.loads(await comm.receive_from(timeout=15))
    finally:
        await comm.disconnect()
    assert {"type": "pong", "t": 7} in while_running
    assert [a["code"] for a in while_running if a["type"] == "upstream_check"] == ["check_running"]
    assert (finished["type"], finished["code"]) == ("upstream_check", "ok")
    assert len(use_simulator.sessions) == 1


async def test_a_socket_may_check_only_five_times_a_minute(use_simulator, cookie):
    comm = communicator(cookie, path="/ws/check/")
    await comm.connect()
    try:
        codes = [(await _ask(comm))["code"] for _ in range(6)]
    finally:
        await comm.disconnect()
    assert codes == ["ok"] * 5 + ["rate_limited"]
    assert len(use_simulator.sessions) == 5


async def test_the_check_socket_still_refuses_other_messages(use_simulator, cookie):
    comm = communicator(cookie, path="/ws/check/")
    await comm.connect()
    try:
        await comm.send_to(text_data='{"type": "text", "text": "hi"}')
        message = json.loads(await comm.receive_from(timeout=5))
    finally:
        await comm.disconnect()
    assert message["type"] == "error" and message["code"] == "unknown_type"
