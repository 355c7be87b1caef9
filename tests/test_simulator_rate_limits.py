"""The simulator's rate limiting, like Azure's: a 429 handshake naming the wait, and `rate_limits.updated` as set."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import InvalidStatus

from conversations.realtime.simulator import RealtimeSimulator

from .simulator_fixtures import open_session, recv_until, send, sim_fixture, user_text  # noqa: F401

pytestmark = pytest.mark.asyncio


async def test_a_429_handshake_says_when_to_retry_in_its_body_and_retry_after_header(sim: RealtimeSimulator) -> None:
    sim.refuse_next(429, retry_after_s=7)
    with pytest.raises(InvalidStatus) as caught:
        async with open_session(sim, "ga"):
            pass
    response = caught.value.response
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    error = json.loads(response.body)["error"]
    assert error["code"] == "429"
    assert error["message"].startswith("Requests to the Realtime operation have exceeded the rate limit")
    assert error["message"].endswith("Please retry after 7 seconds.")


async def test_a_429_without_a_wait_given_says_one_second(sim: RealtimeSimulator) -> None:
    sim.refuse_next(429)
    with pytest.raises(InvalidStatus) as caught:
        async with open_session(sim, "ga"):
            pass
    assert caught.value.response.headers["retry-after"] == "1"
    assert json.loads(caught.value.response.body)["error"]["message"].endswith("retry after 1 second.")


@pytest.mark.parametrize("dialect", ["ga", "preview"])
async def test_rate_limits_updated_reports_the_limits_a_test_sets(sim: RealtimeSimulator, dialect: str) -> None:
    low = [{"name": "requests", "limit": 100, "remaining": 0, "reset_seconds": 12.5},
           {"name": "tokens", "limit": 50000, "remaining": 20, "reset_seconds": 3.0}]
    sim.options.rate_limits = low
    async with open_session(sim, dialect) as ws:
        await recv_until(ws, dialect, "session.created")
        await send(ws, user_text("Hello"))
        await send(ws, {"type": "response.create"})
        events = await recv_until(ws, dialect, "rate_limits.updated")
        await recv_until(ws, dialect, "response.done")  # a session closed mid-reply waits out the close timeout
    assert events[-1]["rate_limits"] == low  # and strict mode validated it against the package's types
