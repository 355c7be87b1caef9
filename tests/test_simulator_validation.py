"""Client events are validated per dialect against the openai types, with the service's error codes."""

from __future__ import annotations

import base64

import pytest

from conversations.realtime.schema import SchemaError, validate_client_event, validate_server_event
from conversations.realtime.simulator import RealtimeSimulator

from .simulator_fixtures import (  # noqa: F401 (fixtures are used by name)
    open_session,
    recv_event,
    recv_until,
    send,
    session_update,
    sim_fixture,
)

GA_UPDATE = {"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief."}}


def test_it_reads_a_ga_session_type_on_preview_as_unknown_parameter() -> None:
    with pytest.raises(SchemaError) as caught:
        validate_client_event(GA_UPDATE, "preview")
    assert (caught.value.code, caught.value.param) == ("unknown_parameter", "session.type")


def test_it_requires_session_type_on_ga() -> None:
    with pytest.raises(SchemaError) as caught:
        validate_client_event({"type": "session.update", "session": {"instructions": "x"}}, "ga")
    assert (caught.value.code, caught.value.param) == ("missing_required_parameter", "session.type")
    validate_client_event(GA_UPDATE, "ga")


def test_it_reports_types_values_and_unknown_events() -> None:
    with pytest.raises(SchemaError) as caught:
        validate_client_event(
            {"type": "session.update", "session": {"type": "realtime", "instructions": 5}}, "ga"
        )
    assert (caught.value.code, caught.value.param) == ("invalid_type", "session.instructions")
    assistant_audio = {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "audio", "audio": "AAAA"}],
        },
    }
    with pytest.raises(SchemaError) as caught:
        validate_client_event(assistant_audio, "ga")
    assert caught.value.code == "invalid_value" and caught.value.param == "item.content[0].type"
    with pytest.raises(SchemaError) as caught:
        validate_client_event({"type": "session.updat"}, "ga")
    assert (caught.value.code, caught.value.param) == ("invalid_value", "type")
    with pytest.raises(SchemaError) as caught:
        validate_server_event({"type": "response.audio.delta", "event_id": "event_x"}, "ga")
    assert caught.value.code == "unknown_event"
    with pytest.raises(SchemaError) as caught:
        validate_client_event(
            {"type": "input_audio_buffer.append", "audio": "AA", "extra": 1}, "preview"
        )
    assert (caught.value.code, caught.value.param) == ("unknown_parameter", "extra")


@pytest.mark.asyncio
async def test_an_invalid_event_gets_an_error_and_the_session_stays_open(
    sim: RealtimeSimulator,
) -> None:
    async with open_session(sim, "preview") as ws:
        await recv_until(ws, "preview", "conversation.created")
        await send(ws, dict(GA_UPDATE, event_id="evt_client_1"))
        error = await recv_event(ws, "preview")
        assert error["type"] == "error"
        assert error["error"]["type"] == "invalid_request_error"
        assert error["error"]["code"] == "unknown_parameter"
        assert error["error"]["param"] == "session.type"
        assert error["error"]["event_id"] == "evt_client_1"
        await ws.send("{not json")
        assert (await recv_event(ws, "preview"))["error"]["code"] == "invalid_json"
        await send(ws, session_update("preview", instructions="Be brief."))
        updated = await recv_event(ws, "preview")
        assert (
            updated["type"] == "session.updated"
            and updated["session"]["instructions"] == "Be brief."
        )
    assert [e["type"] for e in sim.received] == ["session.update", "session.update"]
    assert sim.received[0]["_dialect"] == "preview" and sim.received[0]["_session"] == 0


@pytest.mark.asyncio
async def test_ga_session_update_without_type_is_refused(sim: RealtimeSimulator) -> None:
    async with open_session(sim, "ga") as ws:
        await recv_until(ws, "ga", "session.created")
        await send(ws, {"type": "session.update", "session": {"instructions": "x"}})
        error = await recv_event(ws, "ga")
        assert error["error"]["code"] == "missing_required_parameter"
        assert error["error"]["param"] == "session.type"
        await send(
            ws,
            {
                "type": "session.update",
                "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
            },
        )
        updated = await recv_event(ws, "ga")
        assert updated["session"]["audio"]["input"]["turn_detection"] is None


@pytest.mark.asyncio
async def test_it_records_audio_appends_by_size(sim: RealtimeSimulator) -> None:
    async with open_session(sim, "ga") as ws:
        await recv_until(ws, "ga", "session.created")
        await send(
            ws,
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(bytes(960)).decode()},
        )
        await send(ws, {"type": "input_audio_buffer.clear"})
        assert (await recv_event(ws, "ga"))["type"] == "input_audio_buffer.cleared"
    assert sim.received[0]["audio"] == {"bytes": 960}


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "preview"])
async def test_the_voice_cannot_change_after_the_assistant_spoke(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws:
        await recv_until(ws, dialect, "session.created")
        await send(ws, session_update(dialect, voice="coral"))
        await recv_until(ws, dialect, "session.updated")
        await send(ws, {"type": "response.create"})
        await recv_until(ws, dialect, "response.done")
        await send(ws, session_update(dialect, voice="echo"))
        error = await recv_until(ws, dialect, "error")
        assert error[-1]["error"]["code"] == "cannot_update_voice"
        await send(ws, session_update(dialect, voice="coral"))  # unchanged voice is fine
        assert (await recv_until(ws, dialect, "session.updated"))[-1]["type"] == "session.updated"


BAD_UPDATES = {
    # (dialect, session payload with one bad parameter next to a valid change, code, param)
    "ga unknown field": (
        "ga",
        {"type": "realtime", "instructions": "Second.", "bogus": 1},
        "unknown_parameter",
        "session.bogus",
    ),
    "ga speed out of range": (
        "ga",
        {"type": "realtime", "instructions": "Second.", "audio": {"output": {"speed": 3.0}}},
        "decimal_above_max_value",
        "session.audio.output.speed",
    ),
    "ga max tokens out of range": (
        "ga",
        {"type": "realtime", "instructions": "Second.", "max_output_tokens": 5000},
        "integer_above_max_value",
        "session.max_output_tokens",
    ),
    "preview GA-only field": (
        "preview",
        {"instructions": "Second.", "output_modalities": ["audio"]},
        "unknown_parameter",
        "session.output_modalities",
    ),
    "preview temperature out of range": (
        "preview",
        {"instructions": "Second.", "temperature": 2.0},
        "decimal_above_max_value",
        "session.temperature",
    ),
    "preview max tokens out of range": (
        "preview",
        {"instructions": "Second.", "max_response_output_tokens": 0},
        "integer_below_min_value",
        "session.max_response_output_tokens",
    ),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("case", BAD_UPDATES)
async def test_a_rejected_session_update_leaves_the_previous_session_entirely_unchanged(
    sim: RealtimeSimulator, case: str
) -> None:
    dialect, bad, code, param = BAD_UPDATES[case]
    async with open_session(sim, dialect) as ws:
        await recv_until(ws, dialect, "session.created")
        await send(ws, session_update(dialect, instructions="First.", voice="coral"))
        before = (await recv_until(ws, dialect, "session.updated"))[-1]["session"]
        await send(ws, {"type": "session.update", "session": bad, "event_id": "evt_bad"})
        error = (await recv_event(ws, dialect))["error"]
        assert (error["code"], error["param"], error["event_id"]) == (code, param, "evt_bad")
        # No session.updated follows: the next event answers the next request.
        await send(ws, {"type": "input_audio_buffer.clear"})
        assert (await recv_event(ws, dialect))["type"] == "input_audio_buffer.cleared"
        record = sim.sessions[0].session
        assert record is not None and record.session == before
        # A later good update builds on the previous session, not on the refused one.
        await send(ws, session_update(dialect, voice="coral"))
        after = (await recv_event(ws, dialect))["session"]
        assert after == before


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("dialect", "param"),
    [
        ("ga", "session.audio.input.transcription.model"),
        ("preview", "session.input_audio_transcription.model"),
    ],
)
async def test_reject_session_update_param_refuses_updates_that_set_it(
    dialect: str, param: str
) -> None:
    async with RealtimeSimulator(
        api_key="sim-key", realtime_pacing=False, strict=True, reject_session_update_param=param
    ) as sim:
        async with open_session(sim, dialect) as ws:
            await recv_until(ws, dialect, "session.created")
            await send(ws, session_update(dialect, instructions="Hi.", transcribe=True))
            error = (await recv_until(ws, dialect, "error"))[-1]["error"]
            assert (error["type"], error["code"], error["param"]) == (
                "invalid_request_error",
                "invalid_value",
                param,
            )
            assert param in error["message"]
            record = sim.sessions[0].session
            assert record is not None and record.session["instructions"] != "Hi."
            # An update without that parameter is still accepted.
            await send(ws, session_update(dialect, instructions="Hi."))
            updated = (await recv_event(ws, dialect))["session"]
            assert updated["instructions"] == "Hi."
        assert sim.validation_errors == []
