"""The simulator's failure and timing knobs, and many sessions in one process."""

from __future__ import annotations

import asyncio
import time

import pytest
from websockets.exceptions import ConnectionClosedError

from conversations.realtime.simulator import RealtimeSimulator

from .simulator_fixtures import KEY, open_session, recv_event, recv_until, send, user_text


@pytest.mark.asyncio
async def test_drop_after_events_cuts_the_connection_without_a_close_frame() -> None:
    async with RealtimeSimulator(api_key=KEY, drop_after_events=3, realtime_pacing=False) as sim:
        async with open_session(sim, "ga") as ws:
            await recv_event(ws, "ga")  # session.created is the first event
            await send(ws, user_text("hello"))
            await send(ws, {"type": "response.create"})
            received = 1
            with pytest.raises(ConnectionClosedError) as caught:
                while True:
                    await asyncio.wait_for(ws.recv(), 2)
                    received += 1
            assert received == 3
            assert caught.value.rcvd is None  # no close frame: an abrupt drop
        await asyncio.sleep(0.05)
        assert sim.sessions[0].closed and sim.sessions[0].dropped


@pytest.mark.asyncio
async def test_response_delay_holds_the_response_back() -> None:
    async with RealtimeSimulator(
        api_key=KEY, response_delay_s=0.3, realtime_pacing=False, strict=True
    ) as sim:
        async with open_session(sim, "ga") as ws:
            await recv_event(ws, "ga")
            began = time.monotonic()
            await send(ws, {"type": "response.create"})
            await recv_until(ws, "ga", "response.created")
            assert time.monotonic() - began >= 0.3
        assert sim.validation_errors == []


@pytest.mark.asyncio
async def test_one_process_serves_many_sessions_at_once() -> None:
    async with RealtimeSimulator(api_key=KEY, realtime_pacing=False, strict=True) as sim:

        async def one_turn(index: int) -> str:
            dialect = "ga" if index % 2 else "preview"
            async with open_session(sim, dialect) as ws:
                await send(ws, user_text(f"Session {index}"))
                await send(ws, {"type": "response.create"})
                events = await recv_until(ws, dialect, "response.done")
                return events[-1]["response"]["status"]

        statuses = await asyncio.wait_for(asyncio.gather(*(one_turn(i) for i in range(20))), 20)
        assert statuses == ["completed"] * 20
        assert len(sim.sessions) == 20 and sim.validation_errors == []


@pytest.mark.asyncio
async def test_drop_mean_aborts_every_session_at_a_random_moment_that_the_seed_repeats() -> None:
    async def lifetimes(seed: int) -> list[float]:
        async with RealtimeSimulator(api_key=KEY, drop_mean_s=0.2, seed=seed, realtime_pacing=False) as sim:
            lived = []
            for _ in range(3):
                async with open_session(sim, "ga") as ws:
                    await recv_event(ws, "ga")
                    opened = time.monotonic()
                    with pytest.raises(ConnectionClosedError) as caught:
                        await asyncio.wait_for(ws.recv(), 10)
                    assert caught.value.rcvd is None  # no close frame: a network drop
                    lived.append(time.monotonic() - opened)
            await asyncio.sleep(0.05)
            assert all(record.dropped and record.closed for record in sim.sessions)
            return lived

    first, again = await lifetimes(7), await lifetimes(7)
    assert max(first) - min(first) > 0.05  # random moments, not one fixed delay
    assert all(abs(a - b) < 0.15 for a, b in zip(first, again))  # the same seed, the same moments


@pytest.mark.asyncio
async def test_a_simulator_that_keeps_no_events_still_serves_turns() -> None:
    async with RealtimeSimulator(api_key=KEY, keep_events=False, realtime_pacing=False) as sim:
        async with open_session(sim, "ga") as ws:
            await recv_event(ws, "ga")
            await send(ws, user_text("hello"))
            await send(ws, {"type": "response.create"})
            await recv_until(ws, "ga", "response.done")
        assert sim.received == []
