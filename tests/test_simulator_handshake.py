"""The simulator's opening handshake: paths, dialects, auth and refusals, like the service's."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from conversations.realtime.simulator import RealtimeSimulator, SessionRecord

from .simulator_fixtures import (  # noqa: F401 (fixtures are used by name)
    DIALECT_OF,
    KEY,
    open_session,
    recv_event,
    sim_fixture,
)


@pytest.mark.asyncio
@pytest.mark.parametrize("target", ["ga", "preview", "openai"])
async def test_it_accepts_each_path_with_its_dialect(sim: RealtimeSimulator, target: str) -> None:
    dialect = DIALECT_OF[target]
    async with open_session(sim, target) as ws:
        created = await recv_event(ws, dialect)
        assert created["type"] == "session.created"
        session = created["session"]
        assert session["id"].startswith("sess_") and created["event_id"].startswith("event_")
        assert session["expires_at"] > 0
        if dialect == "ga":
            assert session["type"] == "realtime"
            assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
            assert session["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
        else:
            assert session["voice"] == "alloy" and session["input_audio_format"] == "pcm16"
            assert session["turn_detection"]["silence_duration_ms"] == 500
            conversation = await recv_event(ws, dialect)
            assert conversation["type"] == "conversation.created"
    record = sim.sessions[0]
    assert record.dialect == dialect
    assert record.deployment in ("gpt-realtime", "gpt-4o-realtime-preview")
    assert ("api-key" in record.headers) != ("authorization" in record.headers)
    await _wait_closed(record)


async def _wait_closed(record: SessionRecord) -> None:
    """The server notices the client's close shortly after the client does."""
    for _ in range(100):
        if record.closed:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("session record not closed")


async def _refused(url: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    with pytest.raises(InvalidStatus) as caught:
        async with connect(url, additional_headers=headers):
            pass
    response = caught.value.response
    return response.status_code, json.loads(response.body or b"{}")


@pytest.mark.asyncio
async def test_it_refuses_a_wrong_key(sim: RealtimeSimulator) -> None:
    base = sim.url.replace("http", "ws")
    status, body = await _refused(
        base + "/openai/v1/realtime?model=gpt-realtime", {"api-key": "wrong"}
    )
    assert status == 401 and "error" in body
    status, _ = await _refused(base + "/openai/v1/realtime?model=gpt-realtime", {})
    assert status == 401
    status, body = await _refused(
        base + "/v1/realtime?model=gpt-realtime", {"Authorization": "Bearer nope"}
    )
    assert status == 401 and body["error"]["code"] == "invalid_api_key"  # type: ignore[index]
    assert sim.sessions == []


@pytest.mark.asyncio
async def test_it_refuses_an_unknown_deployment(sim: RealtimeSimulator) -> None:
    base = sim.url.replace("http", "ws")
    status, body = await _refused(base + "/openai/v1/realtime?model=nope", {"api-key": KEY})
    assert status == 404 and body["error"]["code"] == "DeploymentNotFound"  # type: ignore[index]
    preview = "/openai/realtime?api-version=2025-04-01-preview&deployment=nope"
    assert (await _refused(base + preview, {"api-key": KEY}))[0] == 404


@pytest.mark.asyncio
async def test_it_refuses_api_versions_the_service_refuses(sim: RealtimeSimulator) -> None:
    base = sim.url.replace("http", "ws")
    ga_with_version = "/openai/v1/realtime?model=gpt-realtime&api-version=2025-04-01-preview"
    assert (await _refused(base + ga_with_version, {"api-key": KEY}))[0] == 400
    no_version = "/openai/realtime?deployment=gpt-4o-realtime-preview"
    assert (await _refused(base + no_version, {"api-key": KEY}))[0] == 400
    retired = "/openai/realtime?api-version=2024-10-01-preview&deployment=gpt-4o-realtime-preview"
    assert (await _refused(base + retired, {"api-key": KEY}))[0] == 400
    assert (await _refused(base + "/openai/deployments/x/realtime", {"api-key": KEY}))[0] == 404
    assert [r.status for r in sim.rejected] == [400, 400, 400, 404]


@pytest.mark.asyncio
async def test_it_rejects_every_handshake_with_reject_status() -> None:
    async with RealtimeSimulator(reject_status=503) as s:
        status, _ = await _refused(
            s.url.replace("http", "ws") + "/openai/v1/realtime?model=gpt-realtime", {"api-key": KEY}
        )
        assert status == 503


@pytest.mark.asyncio
async def test_it_accepts_any_credential_without_an_api_key() -> None:
    async with RealtimeSimulator(api_key=None, realtime_pacing=False, strict=True) as s:
        async with open_session(s, "ga", key="anything") as ws:
            assert (await recv_event(ws, "ga"))["type"] == "session.created"
        assert s.sessions[0].headers["api-key"] == "anything"


@pytest.mark.asyncio
async def test_a_deployment_of_a_non_realtime_model_is_refused_with_400() -> None:
    deployments = {"voice": "gpt-realtime", "chat": "gpt-4o"}
    async with RealtimeSimulator(api_key=KEY, deployments=deployments, strict=True) as s:
        base = s.url.replace("http", "ws")
        for path in (
            "/openai/v1/realtime?model=chat",
            "/openai/realtime?api-version=2025-04-01-preview&deployment=chat",
        ):
            status, body = await _refused(base + path, {"api-key": KEY})
            assert status == 400
            error = body["error"]
            assert error["code"] == "OperationNotSupported"  # type: ignore[index]
            assert "does not work with the specified model, gpt-4o" in error["message"]  # type: ignore[index]
        async with connect(
            base + "/openai/v1/realtime?model=voice", additional_headers={"api-key": KEY}
        ) as ws:
            created = await recv_event(ws, "ga")
            assert created["session"]["model"] == "gpt-realtime"


@pytest.mark.asyncio
async def test_the_preview_path_refuses_a_ga_date_api_version_unless_listed() -> None:
    path = "/openai/realtime?api-version=2025-08-28&deployment=gpt-realtime"
    async with RealtimeSimulator(api_key=KEY) as s:
        status, body = await _refused(s.url.replace("http", "ws") + path, {"api-key": KEY})
        assert status == 400
        assert body["error"]["message"] == "API version not supported: 2025-08-28"  # type: ignore[index]
    async with RealtimeSimulator(
        api_key=KEY, preview_api_versions=["2025-04-01-preview", "2025-08-28"], strict=True
    ) as s:
        async with connect(
            s.url.replace("http", "ws") + path, additional_headers={"api-key": KEY}
        ) as ws:
            assert (await recv_event(ws, "preview"))["type"] == "session.created"
