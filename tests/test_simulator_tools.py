"""Function calling in the simulator, both dialects: declarations, calls, answers, cancels, seeding."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from conversations.realtime.schema import validate_client_event, validate_server_event
from conversations.realtime.simulator import RealtimeSimulator
from conversations.realtime.simulator.session import Options, SimulatedSession
from conversations.realtime.simulator.speech import tone
from conversations.realtime.simulator.tools import PURPOSES, check_tools, salient_words

from .simulator_fixtures import (  # noqa: F401 (fixtures are used by name)
    append_audio,
    open_session,
    paced_sim_fixture,
    recv_until,
    send,
    sim_fixture,
    transcript_delta_type,
    user_text,
)

DIALECTS = ["ga", "preview"]
RECALL = {
    "type": "function",
    "name": "recall",
    "description": "Search the user's own past conversations.",
    "parameters": {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to look for."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 10},
        },
        "required": ["query"],
    },
}
CURRENT_TIME = {
    "type": "function",
    "name": "current_time",
    "description": "The current time in the user's time zone.",
    "parameters": {"type": "object", "properties": {}},
}
RECALL_OUTPUT = {
    "matches": [
        {"date": "2026-11-20", "title": "Sailing plans", "snippet": "My boat is called Aurora."}
    ]
}
TIME_OUTPUT = {"time": "14:05", "time_zone": "Europe/Berlin", "iso": "2026-11-27T14:05:00+01:00"}


def tools_update(
    dialect: str, tools: list[dict[str, Any]] | None = None, **session: Any
) -> dict[str, Any]:
    """A session.update declaring tools in the dialect's shape (the declarations are the same)."""
    body: dict[str, Any] = {"type": "realtime"} if dialect == "ga" else {}
    if tools is not None:
        body["tools"] = tools
    body.update(session)
    return {"type": "session.update", "session": body}


async def send_valid(ws: Any, dialect: str, event: dict[str, Any]) -> None:
    """Send a client event after checking it against the openai types, as the relay must."""
    validate_client_event(event, dialect)
    await send(ws, event)


async def start(
    ws: Any, dialect: str, tools: list[dict[str, Any]] | None, **session: Any
) -> dict[str, Any]:
    """Wait for the greeting, declare the tools, and return the updated session."""
    await recv_until(ws, dialect, "session.created")
    await send_valid(ws, dialect, tools_update(dialect, tools, **session))
    return (await recv_until(ws, dialect, "session.updated"))[-1]["session"]


async def ask(ws: Any, dialect: str, text: str) -> list[dict[str, Any]]:
    """Type a message, ask for a response, and return the response's events."""
    await send_valid(ws, dialect, user_text(text))
    await send_valid(ws, dialect, {"type": "response.create"})
    events = await recv_until(ws, dialect, "response.done")
    return events[[e["type"] for e in events].index("response.created") :]


def output_item(call_id: str, output: Any) -> dict[str, Any]:
    """The app's answer to a call: a function_call_output item."""
    text = output if isinstance(output, str) else json.dumps(output)
    return {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": call_id, "output": text},
    }


async def answer_with(ws: Any, dialect: str, *outputs: tuple[str, Any]) -> list[dict[str, Any]]:
    """Give the calls their outputs (call_id, output), ask for the reply, and return its events."""
    for call_id, output in outputs:
        await send_valid(ws, dialect, output_item(call_id, output))
    await send_valid(ws, dialect, {"type": "response.create"})
    return await recv_until(ws, dialect, "response.done")


def calls_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The function_call items of a response.done."""
    return [item for item in events[-1]["response"]["output"] if item["type"] == "function_call"]


def spoken_transcript(events: list[dict[str, Any]], dialect: str) -> str:
    """What a spoken answer said, from its transcript deltas."""
    return "".join(e["delta"] for e in events if e["type"] == transcript_delta_type(dialect))


def call_events(dialect: str, calls: int) -> list[str]:
    """The non-delta events of a function-call response, in the service's order."""
    announce = ["conversation.item.added"] if dialect == "ga" else ["conversation.item.created"]
    per_call = [
        "response.output_item.added",
        *announce,
        "response.function_call_arguments.done",
        "response.output_item.done",
    ] + (["conversation.item.done"] if dialect == "ga" else [])
    return ["response.created", "rate_limits.updated", *per_call * calls, "response.done"]


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_declared_tools_and_tool_choice_are_echoed_in_session_updated(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws:
        session = await start(ws, dialect, [RECALL, CURRENT_TIME], tool_choice="auto")
        assert session["tools"] == [RECALL, CURRENT_TIME]
        assert session["tool_choice"] == "auto"


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_recall_round_trip_calls_with_the_salient_words_then_quotes_the_output(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws:
        await start(ws, dialect, [RECALL, CURRENT_TIME])
        events = await ask(ws, dialect, "What did I tell you about the boat last week?")

        assert [e["type"] for e in events if not e["type"].endswith(".delta")] == call_events(
            dialect, 1
        )
        added = next(e for e in events if e["type"] == "response.output_item.added")["item"]
        assert (added["type"], added["name"], added["status"], added["arguments"]) == (
            "function_call",
            "recall",
            "in_progress",
            "",
        )
        call_id, item_id = added["call_id"], added["id"]
        assert call_id.startswith("call_") and item_id.startswith("item_")
        deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
        assert len(deltas) >= 2
        assert all(
            (d["call_id"], d["item_id"], d["output_index"]) == (call_id, item_id, 0) for d in deltas
        )
        done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
        assert done["arguments"] == "".join(d["delta"] for d in deltas)
        assert json.loads(done["arguments"]) == {"query": "boat"}
        assert ("name" in done) == (dialect == "ga")  # only the GA event names the function
        finished = next(e for e in events if e["type"] == "response.output_item.done")["item"]
        assert (finished["status"], finished["arguments"]) == ("completed", done["arguments"])

        response = events[-1]["response"]
        assert response["status"] == "completed"
        assert response["output"] == [finished]
        usage = response["usage"]["output_token_details"]
        assert usage["audio_tokens"] == 0 and usage["text_tokens"] > 0
        assert not any(
            e["type"].startswith(("response.output_audio", "response.audio")) for e in events
        )

        answer = await answer_with(ws, dialect, (call_id, RECALL_OUTPUT))
        assert (
            spoken_transcript(answer, dialect)
            == "On 2026-11-20 you said: My boat is called Aurora."
        )
        assert answer[-1]["response"]["usage"]["output_token_details"]["audio_tokens"] > 0
        assert [role for role, _, _ in sim.history()] == [
            "user",
            "function_call",
            "function_call_output",
            "assistant",
        ]


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_current_time_round_trip_calls_with_no_arguments_then_says_the_time(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws:
        await start(ws, dialect, [RECALL, CURRENT_TIME])
        events = await ask(ws, dialect, "What time is it?")
        (call,) = calls_of(events)
        assert (call["name"], json.loads(call["arguments"])) == ("current_time", {})
        answer = await answer_with(ws, dialect, (call["call_id"], TIME_OUTPUT))
        assert spoken_transcript(answer, dialect) == "It is 14:05 in Europe/Berlin."


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_message_asking_for_both_gets_two_calls_in_one_response_and_one_answer(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws:
        await start(ws, dialect, [RECALL, CURRENT_TIME])
        events = await ask(
            ws, dialect, "What's the time, and do you remember what I said about Aurora?"
        )
        assert [e["type"] for e in events if not e["type"].endswith(".delta")] == call_events(
            dialect, 2
        )
        calls = calls_of(events)
        assert [c["name"] for c in calls] == ["current_time", "recall"]  # in the order asked
        assert json.loads(calls[1]["arguments"]) == {"query": "aurora"}
        indexes = {
            e["output_index"]
            for e in events
            if e["type"].startswith("response.function_call_arguments")
        }
        assert indexes == {0, 1}
        assert len({c["call_id"] for c in calls}) == 2

        answer = await answer_with(ws, dialect, (calls[0]["call_id"], TIME_OUTPUT), (calls[1]["call_id"], RECALL_OUTPUT))
        assert spoken_transcript(answer, dialect) == (
            "It is 14:05 in Europe/Berlin. On 2026-11-20 you said: My boat is called Aurora."
        )


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_an_output_for_an_unknown_call_id_is_refused_with_invalid_tool_call_id(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws:
        await start(ws, dialect, [RECALL])
        await send_valid(
            ws,
            dialect,
            {**output_item("call_NotACall00000000", RECALL_OUTPUT), "event_id": "evt_1"},
        )
        error = (await recv_until(ws, dialect, "error"))[-1]["error"]
        assert error == {
            "type": "invalid_request_error",
            "code": "invalid_tool_call_id",
            "message": "Tool call ID 'call_NotACall00000000' not found in conversation.",
            "param": None,
            "event_id": "evt_1",
        }
        # Nothing was added: a response now has nothing to quote.
        assert sim.history() == []


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_an_error_output_is_explained_and_an_unknown_shape_is_quoted(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws:
        await start(ws, dialect, [RECALL, CURRENT_TIME])
        (call,) = calls_of(await ask(ws, dialect, "Please recall my packing list."))
        assert json.loads(call["arguments"]) == {"query": "packing list"}
        failure = {"error": "The tool recall took longer than 5 seconds."}
        answer = await answer_with(ws, dialect, (call["call_id"], failure))
        assert spoken_transcript(answer, dialect) == (
            "Sorry, the recall tool failed: The tool recall took longer than 5 seconds."
        )

        (call,) = calls_of(await ask(ws, dialect, "What time is it now?"))
        answer = await answer_with(ws, dialect, (call["call_id"], {"epoch": 1795000000}))
        assert (
            spoken_transcript(answer, dialect)
            == 'The current time tool returned: {"epoch": 1795000000}.'
        )


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_only_declared_tools_are_called(sim: RealtimeSimulator, dialect: str) -> None:
    async with open_session(sim, dialect) as ws:
        await start(ws, dialect, None)  # no tools at all
        events = await ask(ws, dialect, "What did I tell you to remember?")
        assert calls_of(events) == []
        assert spoken_transcript(events, dialect) == "You wrote: What did I tell you to remember?"

        await send_valid(ws, dialect, tools_update(dialect, [CURRENT_TIME]))
        await recv_until(ws, dialect, "session.updated")
        events = await ask(ws, dialect, "What time is it, and what did I tell you to remember?")
        assert [c["name"] for c in calls_of(events)] == ["current_time"]


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_tool_choice_none_never_calls_and_required_always_calls_the_first_tool(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws:
        await start(ws, dialect, [RECALL, CURRENT_TIME], tool_choice="none")
        events = await ask(ws, dialect, "What time is it?")
        assert (
            calls_of(events) == []
            and spoken_transcript(events, dialect) == "You wrote: What time is it?"
        )

        await send_valid(ws, dialect, tools_update(dialect, tool_choice="required"))
        await recv_until(ws, dialect, "session.updated")
        (call,) = calls_of(await ask(ws, dialect, "Hello there, how are you?"))
        assert (call["name"], json.loads(call["arguments"])) == ("recall", {"query": "hello"})
        # Like the service, "required" calls again even after the output: apps set "auto" back.
        again = await answer_with(ws, dialect, (call["call_id"], RECALL_OUTPUT))
        assert [c["name"] for c in calls_of(again)] == ["recall"]


@pytest.mark.asyncio
async def test_a_ga_function_tool_choice_forces_that_function() -> None:
    dialect = "ga"
    async with RealtimeSimulator(realtime_pacing=False, strict=True) as sim:
        async with open_session(sim, dialect) as ws:
            await start(
                ws,
                dialect,
                [RECALL, CURRENT_TIME],
                tool_choice={"type": "function", "name": "current_time"},
            )
            (call,) = calls_of(await ask(ws, dialect, "Tell me about boats."))
            assert call["name"] == "current_time"
        assert sim.validation_errors == []


BAD_DECLARATIONS = [
    (
        [dict(RECALL, name="recall memory")],
        "invalid_value",
        "session.tools[0].name",
        (
            "Invalid 'session.tools[0].name': string does not match pattern. Expected a string that "
            "matches the pattern '^[a-zA-Z0-9_-]+$'."
        ),
    ),
    (
        [RECALL, {"type": "function", "description": "No name.", "parameters": {"type": "object"}}],
        "missing_required_parameter",
        "session.tools[1].name",
        "Missing required parameter: 'session.tools[1].name'.",
    ),
    (
        [dict(RECALL, name="r" * 65)],
        "string_above_max_length",
        "session.tools[0].name",
        (
            "Invalid 'session.tools[0].name': string too long. Expected a string with maximum length 64, "
            "but got a string with length 65 instead."
        ),
    ),
    (
        [dict(RECALL, parameters={"type": "string"})],
        "invalid_function_parameters",
        "session.tools[0].parameters",
        (
            "Invalid schema for function 'recall': schema must be a JSON Schema of 'type: \"object\"', "
            "got 'type: \"string\"'."
        ),
    ),
    (
        [dict(RECALL, parameters={"type": "object", "properties": {"query": {"type": "text"}}})],
        "invalid_function_parameters",
        "session.tools[0].parameters",
        (
            "Invalid schema for function 'recall': In context=('properties', 'query'), \"text\" is not "
            "valid under any of the given schemas."
        ),
    ),
    (
        [dict(RECALL, parameters="query: str")],
        "invalid_type",
        "session.tools[0].parameters",
        "Invalid type for 'session.tools[0].parameters': expected an object, but got a string instead.",
    ),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("tools", "code", "param", "message"), BAD_DECLARATIONS)
async def test_a_malformed_declaration_refuses_the_whole_update_with_the_services_error(
    sim: RealtimeSimulator,
    dialect: str,
    tools: list[dict[str, Any]],
    code: str,
    param: str,
    message: str,
) -> None:
    async with open_session(sim, dialect) as ws:
        await recv_until(ws, dialect, "session.created")
        await send_valid(ws, dialect, tools_update(dialect, tools, instructions="Changed."))
        error = (await recv_until(ws, dialect, "error"))[-1]["error"]
        assert (error["code"], error["param"], error["message"]) == (code, param, message)
        # Refused whole: the next update shows the session as it was.
        await send_valid(ws, dialect, tools_update(dialect))
        session = (await recv_until(ws, dialect, "session.updated"))[-1]["session"]
        assert session["tools"] == [] and session["instructions"] != "Changed."


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("dialect", "choice", "code", "param"),
    [
        # The chat-completions shape, answered so (Azure-Samples/aoai-realtime-audio-sdk#132).
        (
            "ga",
            {"type": "function", "function": {"name": "recall"}},
            "missing_required_parameter",
            "session.tool_choice.name",
        ),
        (
            "ga",
            {"type": "function", "name": "weather"},
            "invalid_value",
            "session.tool_choice.name",
        ),
        ("ga", "sometimes", "invalid_value", "session.tool_choice"),
        ("preview", "sometimes", "invalid_value", "session.tool_choice"),
        ("preview", {"type": "function", "name": "recall"}, "invalid_type", "session.tool_choice"),
    ],
)
async def test_a_tool_choice_naming_nothing_declared_is_refused(
    sim: RealtimeSimulator, dialect: str, choice: Any, code: str, param: str
) -> None:
    async with open_session(sim, dialect) as ws:
        await recv_until(ws, dialect, "session.created")
        await send(
            ws, tools_update(dialect, [RECALL], tool_choice=choice)
        )  # some fail the types: sent raw
        error = (await recv_until(ws, dialect, "error"))[-1]["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            code,
            param,
        )


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_response_cancel_during_a_call_ends_it_incomplete_and_cancelled(
    paced_sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(paced_sim, dialect) as ws:
        await start(ws, dialect, [RECALL, CURRENT_TIME])
        await send_valid(
            ws, dialect, user_text("What time is it, and what did I say about the boat?")
        )
        await send_valid(ws, dialect, {"type": "response.create"})
        await recv_until(ws, dialect, "response.output_item.added")
        await send_valid(ws, dialect, {"type": "response.cancel"})
        events = await recv_until(ws, dialect, "response.done")
        response = events[-1]["response"]
        assert (response["status"], response["status_details"]) == (
            "cancelled",
            {"type": "cancelled", "reason": "client_cancelled"},
        )
        # The call under way ends incomplete with what was streamed; the second one never starts.
        assert [(item["name"], item["status"]) for item in response["output"]] == [
            ("current_time", "incomplete")
        ]
        done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
        assert done["arguments"] == response["output"][0]["arguments"]
        # The conversation goes on: the next message gets its own call.
        (call,) = calls_of(await ask(ws, dialect, "What did I say about the boat?"))
        assert call["name"] == "recall"


@pytest.mark.asyncio
async def test_speech_during_a_call_interrupts_it(paced_sim: RealtimeSimulator) -> None:
    dialect = "ga"
    async with open_session(paced_sim, dialect) as ws:
        await start(ws, dialect, [RECALL, CURRENT_TIME])
        await send_valid(
            ws, dialect, user_text("What time is it, and what did I say about the boat?")
        )
        await send_valid(ws, dialect, {"type": "response.create"})
        await recv_until(ws, dialect, "response.output_item.added")
        sender = asyncio.ensure_future(append_audio(ws, tone(0.6, level=0.5) + bytes(48 * 1200)))
        events = await recv_until(ws, dialect, "response.done")
        names = [e["type"] for e in events]
        assert names.index("input_audio_buffer.speech_started") < names.index("response.done")
        response = events[-1]["response"]
        assert (response["status"], response["status_details"]["reason"]) == (
            "cancelled",
            "turn_detected",
        )
        assert len(response["output"]) == 1 and response["output"][0]["status"] == "incomplete"
        await sender
        # The user's new turn is answered in words (its stand-in transcript names no tool).
        events = await recv_until(ws, dialect, "response.done")
        assert events[-1]["response"]["status"] == "completed" and calls_of(events) == []


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_seeded_calls_and_outputs_are_announced_billed_and_answered(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws:
        await start(ws, dialect, [RECALL, CURRENT_TIME])
        seeded_call = {
            "type": "conversation.item.create",
            "item": {
                "type": "function_call",
                "call_id": "call_Seeded0000000001",
                "name": "recall",
                "arguments": '{"query": "boat"}',
            },
        }
        for seeded in (
            user_text("What did I tell you about the boat?"),
            seeded_call,
            output_item("call_Seeded0000000001", RECALL_OUTPUT),
        ):
            await send_valid(ws, dialect, seeded)
        announced = "conversation.item.done" if dialect == "ga" else "conversation.item.created"
        items = []
        while len(items) < 3:
            items.append((await recv_until(ws, dialect, announced))[-1]["item"])
        assert [item["type"] for item in items] == [
            "message",
            "function_call",
            "function_call_output",
        ]
        assert items[1]["call_id"] == "call_Seeded0000000001" and items[1]["status"] == "completed"

        # A resumed session answers from the seeded output instead of calling again.
        await send_valid(ws, dialect, {"type": "response.create"})
        answer = await recv_until(ws, dialect, "response.done")
        assert calls_of(answer) == []
        assert (
            spoken_transcript(answer, dialect)
            == "On 2026-11-20 you said: My boat is called Aurora."
        )
        assert answer[-1]["response"]["usage"]["input_token_details"]["text_tokens"] > 0

        # A seeded call without a call_id gets one, and outputs may then refer to it.
        await send_valid(
            ws,
            dialect,
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call", "name": "current_time", "arguments": "{}"},
            },
        )
        created = (await recv_until(ws, dialect, announced))[-1]["item"]
        assert created["call_id"].startswith("call_")
        await send_valid(ws, dialect, output_item(created["call_id"], TIME_OUTPUT))
        await recv_until(ws, dialect, announced)


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_function_item_missing_what_the_service_needs_is_refused(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws:
        await recv_until(ws, dialect, "session.created")
        await send(
            ws,
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call", "arguments": "{}"},
            },
        )
        error = (await recv_until(ws, dialect, "error"))[-1]["error"]
        assert (error["code"], error["param"]) == ("missing_required_parameter", "item.name")


def test_salient_words_are_the_subject_of_the_question() -> None:
    assert salient_words("What did I tell you about the boat last week?") == "boat"
    assert salient_words("Do you remember my sister's wedding plans?") == "sister's wedding plans"
    assert salient_words("What did I tell you to remember?") == "remember"
    assert salient_words("Erinnerst du dich an Aurora?") == "erinnerst du dich aurora"


# --- property: any call fits the declared schema ---------------------------------------------

_NAMES = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_-]{0,20}", fullmatch=True)
_PROPERTY = st.one_of(
    st.just({"type": "string"}),
    st.just({"type": "boolean"}),
    st.just({"type": "number"}),
    st.builds(
        lambda low, span: {
            "type": "integer",
            **({"minimum": low} if low is not None else {}),
            **({"maximum": (low or 0) + span} if span is not None else {}),
        },
        st.none() | st.integers(-50, 50),
        st.none() | st.integers(0, 20),
    ),
    st.lists(st.text(max_size=8), min_size=1, max_size=4, unique=True).map(
        lambda e: {"type": "string", "enum": e}
    ),
    st.lists(st.text(max_size=8), min_size=1, max_size=4, unique=True).map(lambda e: {"enum": e}),
)


@st.composite
def _declaration(draw: st.DrawFn) -> dict[str, Any]:
    properties = draw(
        st.dictionaries(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), _PROPERTY, max_size=5)
    )
    required = (
        draw(st.lists(st.sampled_from(sorted(properties)), unique=True)) if properties else []
    )
    known = st.sampled_from(["recall", "current_time"])
    name = draw(
        st.one_of(known, known, _NAMES)
    )  # mostly the built-ins, whose purposes messages name
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    return {"type": "function", "name": name, "description": "A tool.", "parameters": parameters}


_PHRASES = [p for phrases in PURPOSES.values() for p in phrases] + ["about", "boat", "weather"]
_ASKING = st.builds(
    lambda a, p, b: f"{a} {p} {b}",
    st.text(max_size=20),
    st.sampled_from(_PHRASES),
    st.text(max_size=20),
)
# Mostly messages that name a purpose, so "auto" calls often; some arbitrary text too.
_TEXTS = st.one_of(st.text(max_size=60), _ASKING, _ASKING)


async def _calls_made(
    dialect: str, tools: list[dict[str, Any]], choice: Any, text: str
) -> list[dict[str, Any]]:
    """Drive one session without a socket (text replies: no speech), validating every event."""
    events: list[dict[str, Any]] = []

    async def collect(event: dict[str, Any]) -> None:
        validate_server_event({"type": event["type"], "event_id": "event_x", **event}, dialect)
        events.append(event)

    session = SimulatedSession(
        dialect=dialect,
        model="gpt-realtime",
        send=collect,
        options=Options(realtime_pacing=False),
        expires_at=int(time.time()) + 60,
    )
    modalities = {"output_modalities": ["text"]} if dialect == "ga" else {"modalities": ["text"]}
    for client_event in (
        tools_update(dialect, tools, tool_choice=choice, **modalities),
        user_text(text),
        {"type": "response.create"},
    ):
        validate_client_event(client_event, dialect)
        await session.receive(client_event)
    if session.active is not None and session.active.task is not None:
        await session.active.task
    await session.close()
    assert not [e for e in events if e["type"] == "error"], events
    return calls_of(events)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dialect=st.sampled_from(DIALECTS),
    tools=st.lists(_declaration(), min_size=1, max_size=3, unique_by=lambda t: t["name"]),
    mode=st.sampled_from(["auto", "auto", "required", "none", "forced"]),
    text=_TEXTS,
)
def test_any_call_the_simulator_makes_fits_the_declared_schema(
    dialect: str, tools: list[dict[str, Any]], mode: str, text: str
) -> None:
    check_tools(tools, "session.tools")  # the declarations themselves are ones the service accepts
    choice: Any = mode
    if mode == "forced":
        choice = (
            {"type": "function", "name": tools[-1]["name"]}
            if dialect == "ga"
            else tools[-1]["name"]
        )
    calls = asyncio.run(_calls_made(dialect, tools, choice, text))
    event(f"{mode}: {len(calls)} call(s)")
    by_name = {tool["name"]: tool for tool in tools}
    for call in calls:
        arguments = json.loads(call["arguments"])
        Draft202012Validator(by_name[call["name"]]["parameters"]).validate(arguments)
    if mode == "none":
        assert calls == []
    if mode == "required":
        assert [c["name"] for c in calls] == [tools[0]["name"]]
    if mode == "forced":
        assert [c["name"] for c in calls] == [tools[-1]["name"]]


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_spoken_question_scripted_with_next_heard_calls_the_tool(
    sim: RealtimeSimulator, dialect: str
) -> None:
    transcription = (
        {"audio": {"input": {"transcription": {"model": "gpt-4o-mini-transcribe"}}}}
        if dialect == "ga"
        else {"input_audio_transcription": {"model": "whisper-1"}}
    )
    async with open_session(sim, dialect) as ws:
        await start(ws, dialect, [RECALL, CURRENT_TIME], **transcription)
        sim.next_heard(["What time is it?"])
        await append_audio(ws, bytes(48 * 200) + tone(0.8, level=0.5) + bytes(48 * 1200))
        events = await recv_until(ws, dialect, "response.done")
        (call,) = calls_of(events)
        assert (call["name"], call["arguments"]) == ("current_time", "{}")
        completed = "conversation.item.input_audio_transcription.completed"
        if not any(e["type"] == completed for e in events):
            events += await recv_until(ws, dialect, completed)
        assert next(e for e in events if e["type"] == completed)["transcript"] == "What time is it?"
        # Each scripted text is used once; later turns state their length again.
        assert sim.options.heard_texts == deque()
