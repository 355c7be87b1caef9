"""How sessions end, like Azure's: expiry with 1001, abrupt drops, close codes, refused reconnects."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from conversations.realtime.simulator import ABORT, RealtimeSimulator

from .simulator_fixtures import (  # noqa: F401 (fixtures are used by name)
    KEY,
    open_session,
    recv_event,
    recv_until,
    send,
    sim_fixture,
    user_text,
)


async def closed_with(ws: ClientConnection) -> tuple[int | None, bool]:
    """Wait for the connection to end; return the close code received and whether a frame came."""
    with pytest.raises(ConnectionClosed) as caught:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    received = caught.value.rcvd
    return (received.code if received else None), received is not None


@pytest.mark.asyncio
@pytest.mark.parametrize("target", ["ga", "preview", "openai"])
async def test_expires_at_is_the_real_expiry_for_each_provider(
    sim: RealtimeSimulator, target: str
) -> None:
    dialect = "preview" if target == "preview" else "ga"
    minutes = 60 if target == "openai" else 30
    async with open_session(sim, target) as ws:
        before = time.time()
        expires_at = (await recv_event(ws, dialect))["session"]["expires_at"]
        assert before + minutes * 60 - 2 <= expires_at <= time.time() + minutes * 60 + 2


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "preview"])
async def test_session_expiry_sends_session_expired_and_closes_with_1001(dialect: str) -> None:
    async with RealtimeSimulator(api_key=KEY, session_expiry_s=0.3, strict=True) as sim:
        async with open_session(sim, dialect) as ws:
            before = time.time()
            created = await recv_event(ws, dialect)
            assert before <= created["session"]["expires_at"] <= before + 2
            error = (await recv_until(ws, dialect, "error"))[-1]["error"]
            assert error["code"] == "session_expired"
            assert error["message"] == "Your session hit the maximum duration of 30 minutes."
            assert await closed_with(ws) == (1001, True)
        assert sim.validation_errors == []


@pytest.mark.asyncio
async def test_only_first_sessions_lets_the_reconnected_session_live() -> None:
    async with RealtimeSimulator(
        api_key=KEY, session_expiry_s=0.2, only_first_sessions=1, realtime_pacing=False, strict=True
    ) as sim:
        async with open_session(sim, "ga") as first:
            await recv_until(first, "ga", "error")
            assert (await closed_with(first))[0] == 1001
        async with open_session(sim, "ga") as second:
            created = await recv_event(second, "ga")
            assert created["session"]["expires_at"] > time.time() + 29 * 60
            await asyncio.sleep(0.4)  # past the first session's expiry: this one is still open
            await send(second, user_text("Still here?"))
            await send(second, {"type": "response.create"})
            assert (await recv_until(second, "ga", "response.done"))[-1]["response"][
                "status"
            ] == "completed"
        assert sim.validation_errors == []


@pytest.mark.asyncio
async def test_drop_after_events_spares_sessions_past_only_first_sessions() -> None:
    async with RealtimeSimulator(
        api_key=KEY, drop_after_events=2, only_first_sessions=1, realtime_pacing=False
    ) as sim:
        async with open_session(sim, "preview") as first:
            assert await closed_with(first) == (None, False)
        async with open_session(sim, "preview") as second:
            await recv_until(second, "preview", "conversation.created")
            await send(second, {"type": "response.create"})
            await recv_until(second, "preview", "response.done")
        assert [record.dropped for record in sim.sessions] == [True, False]


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "preview"])
async def test_expire_sessions_ends_live_sessions_now(sim: RealtimeSimulator, dialect: str) -> None:
    async with open_session(sim, dialect) as ws:
        await recv_event(ws, dialect)
        assert await sim.expire_sessions() == 1
        assert (await recv_until(ws, dialect, "error"))[-1]["error"]["code"] == "session_expired"
        assert await closed_with(ws) == (1001, True)
    assert await sim.expire_sessions() == 0  # nothing live is left


@pytest.mark.asyncio
async def test_drop_sessions_aborts_without_a_close_frame(sim: RealtimeSimulator) -> None:
    async with open_session(sim, "ga") as ws:
        await recv_event(ws, "ga")
        assert await sim.drop_sessions(index=0) == 1
        assert await closed_with(ws) == (None, False)
    await asyncio.sleep(0.05)
    assert sim.sessions[0].dropped and sim.sessions[0].closed


@pytest.mark.asyncio
async def test_close_sessions_closes_one_session_with_the_given_code(sim: RealtimeSimulator) -> None:
    async with open_session(sim, "ga") as first, open_session(sim, "ga") as second:
        await recv_event(first, "ga")
        await recv_event(second, "ga")
        assert await sim.close_sessions(1011, "Internal error", index=1) == 1
        assert await closed_with(second) == (1011, True)
        # The other session is untouched.
        await send(first, {"type": "input_audio_buffer.clear"})
        assert (await recv_event(first, "ga"))["type"] == "input_audio_buffer.cleared"


@contextmanager
def simulator_in_a_thread(**kwargs: object) -> Iterator[RealtimeSimulator]:
    """A simulator on its own loop in another thread, as the browser tests run it."""
    loop = asyncio.new_event_loop()
    sim = RealtimeSimulator(**kwargs)  # type: ignore[arg-type]
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(sim.start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(sim.stop())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield sim
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@pytest.mark.asyncio
async def test_the_session_hooks_can_be_scheduled_from_another_thread() -> None:
    with simulator_in_a_thread(api_key=KEY, realtime_pacing=False, strict=True) as sim:
        assert sim.loop is not None and sim.loop is not asyncio.get_running_loop()
        async with open_session(sim, "ga") as ws:
            await recv_event(ws, "ga")
            injected = asyncio.run_coroutine_threadsafe(sim.inject_server_error(), sim.loop)
            assert await asyncio.wrap_future(injected) == 1
            assert (await recv_event(ws, "ga"))["error"]["type"] == "server_error"
            expired = asyncio.run_coroutine_threadsafe(sim.expire_sessions(), sim.loop)
            assert (await recv_until(ws, "ga", "error"))[-1]["error"]["code"] == "session_expired"
            assert await closed_with(ws) == (1001, True)
            assert await asyncio.wrap_future(expired) == 1
        assert sim.validation_errors == []


async def _handshake_status(sim: RealtimeSimulator) -> int | str:
    """Try one GA handshake: 101 when accepted, the HTTP status when refused, "abort" when cut."""
    url = sim.url.replace("http", "ws") + "/openai/v1/realtime?model=gpt-realtime"
    try:
        async with connect(url, additional_headers={"api-key": KEY}, open_timeout=5):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code
    except (InvalidMessage, ConnectionError, EOFError):
        return "abort"


@pytest.mark.asyncio
async def test_refuse_next_refuses_the_next_handshakes_then_accepts(sim: RealtimeSimulator) -> None:
    sim.refuse_next(503, n=2)
    sim.refuse_next(ABORT)
    sim.refuse_next(429)
    statuses = [await _handshake_status(sim) for _ in range(5)]
    assert statuses == [503, 503, "abort", 429, 101]
    assert [r.status for r in sim.rejected] == [503, 503, ABORT, 429]
    assert sim.rejected[0].body["error"]["code"] == "ServiceUnavailable"
    assert len(sim.sessions) == 1


@pytest.mark.asyncio
async def test_a_refused_handshake_carries_the_service_json_body(sim: RealtimeSimulator) -> None:
    sim.refuse_next(429)
    with pytest.raises(InvalidStatus) as caught:
        async with open_session(sim, "ga"):
            pass
    response = caught.value.response
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body)["error"]["code"] == "429"
