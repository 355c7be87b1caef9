"""Function calling on the wire: tools in session.update, the model's calls read from either dialect, outputs built."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.realtime import protocol
from conversations.realtime.client import GA, PREVIEW
from conversations.realtime.protocol import SessionConfig, TurnDetection, normalize, session_update
from conversations.realtime.schema import validate_client_event
from tests.hostile import json_values

RECALL = {"type": "function", "name": "recall", "description": "Search your own past conversations.",
          "parameters": {"type": "object", "properties": {"query": {"type": "string"},
                                                          "limit": {"type": "integer", "default": 3}},
                         "required": ["query"], "additionalProperties": False}}
CLOCK = {"type": "function", "name": "current_time", "description": "The time now, in your time zone.",
         "parameters": {"type": "object", "properties": {}}}


@pytest.mark.parametrize("config", [SessionConfig(), SessionConfig(turn_detection=None),
                                    SessionConfig(turn_detection=TurnDetection(type="semantic_vad"))])
@pytest.mark.parametrize("dialect", [GA, PREVIEW])
def test_a_session_update_with_tools_validates_against_the_openai_types(config, dialect):
    event = session_update(config, dialect, [RECALL, CLOCK])
    assert event["session"]["tools"] == [RECALL, CLOCK]
    assert event["session"]["tool_choice"] == "auto"
    validate_client_event(event, dialect)


@pytest.mark.parametrize("dialect", [GA, PREVIEW])
def test_a_session_update_without_tools_says_nothing_of_them(dialect):
    session = session_update(SessionConfig(), dialect)["session"]
    assert "tools" not in session and "tool_choice" not in session


@pytest.mark.parametrize("dialect", [GA, PREVIEW])
def test_seeded_calls_and_outputs_validate_in_both_dialects(dialect):
    for event in [
        protocol.function_call_item("call_1", "recall", '{"query": "boat"}'),
        protocol.function_call_item("call_1", "recall", '{"query": "boat"}', "item_fc1"),
        protocol.function_call_output_item("call_1", '{"matches": []}'),
    ]:
        assert validate_client_event(event, dialect) is None  # raises SchemaError on anything the service refuses


@pytest.mark.parametrize("kind", ["response.output_item.added", "conversation.item.created", "conversation.item.added",
                                  "conversation.item.done", "response.output_item.done"])
def test_function_call_items_of_both_dialects_are_read_as_calls(kind):
    item = {"id": "fc1", "type": "function_call", "call_id": "call_1", "name": "recall",
            "arguments": '{"query": "boat"}', "status": "completed"}
    message, audio = normalize({"type": kind, "response_id": "r1", "item": item})
    assert audio is None
    assert message == {"type": "function_call", "item_id": "fc1", "call_id": "call_1", "name": "recall",
                       "arguments": '{"query": "boat"}', "response_id": "r1", "complete": True}


def test_an_announced_call_is_not_complete_yet():
    item = {"id": "fc1", "type": "function_call", "call_id": "call_1", "name": "recall", "arguments": "",
            "status": "in_progress"}
    assert normalize({"type": "response.output_item.added", "response_id": "r1", "item": item})[0]["complete"] is False


def test_argument_deltas_and_done_are_read_with_or_without_the_name():
    delta = normalize({"type": "response.function_call_arguments.delta", "item_id": "fc1", "call_id": "call_1",
                       "delta": '{"qu', "response_id": "r1", "output_index": 0})[0]
    assert delta == {"type": "function_call_arguments", "item_id": "fc1", "call_id": "call_1", "delta": '{"qu'}
    ga = normalize({"type": "response.function_call_arguments.done", "item_id": "fc1", "call_id": "call_1",
                    "name": "recall", "arguments": "{}", "response_id": "r1", "output_index": 0})[0]
    preview = normalize({"type": "response.function_call_arguments.done", "item_id": "fc1", "call_id": "call_1",
                         "arguments": "{}", "response_id": "r1", "output_index": 0})[0]
    assert (ga["name"], preview["name"]) == ("recall", "")
    assert ga["arguments"] == preview["arguments"] == "{}"


def test_response_done_lists_the_calls_of_its_output_and_stops_counting_past_the_limit():
    calls = [{"id": f"fc{i}", "type": "function_call", "call_id": f"c{i}", "name": "current_time", "arguments": "{}",
              "status": "completed"} for i in range(30)]
    output = [{"id": "a1", "type": "message", "role": "assistant", "content": []}, *calls]
    message = normalize({"type": "response.done", "response": {"id": "r1", "status": "completed", "output": output}})[0]
    assert [c["item_id"] for c in message["calls"]] == [f"fc{i}" for i in range(protocol.MAX_CALLS_PER_RESPONSE + 1)]


def test_oversized_names_ids_and_arguments_from_upstream_are_cut():
    item = {"id": "i" * 500, "type": "function_call", "call_id": "c" * 500, "name": "n" * 500,
            "arguments": "a" * (protocol.MAX_ARGUMENTS_CHARS + 10), "status": "completed"}
    message = normalize({"type": "response.output_item.done", "item": item})[0]
    assert len(message["item_id"]) == protocol.MAX_ITEM_ID_CHARS
    assert len(message["call_id"]) == protocol.MAX_CALL_ID_CHARS
    assert len(message["name"]) == protocol.MAX_TOOL_NAME_CHARS
    assert len(message["arguments"]) == protocol.MAX_ARGUMENTS_CHARS


_TYPES = ["response.output_item.added", "response.output_item.done", "conversation.item.created",
          "conversation.item.added", "conversation.item.done", "response.function_call_arguments.delta",
          "response.function_call_arguments.done", "response.done"]
_FIELDS = {"type", "item_id", "call_id", "name", "arguments", "delta", "response_id", "complete"}


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_TYPES), st.dictionaries(st.sampled_from(["item", "response", "item_id", "call_id", "delta",
                                                                 "arguments", "name", "response_id", "output_index"]),
                                                json_values(), max_size=6),
       st.dictionaries(st.sampled_from(["type", "id", "call_id", "name", "arguments", "status", "output"]),
                       json_values() | st.just("function_call"), max_size=7))
def test_no_function_call_event_of_any_shape_makes_normalize_raise_or_pass_on_other_than_text(kind, fields, item):
    for event in ({"type": kind, **fields}, {"type": kind, **fields, "item": item},
                  {"type": kind, "response": {"id": "r", "output": [item, item]}}):
        message, audio = normalize(event)
        assert audio is None
        if message is None or message["type"] not in ("function_call", "function_call_arguments",
                                                        "function_call_arguments_done"):
            continue
        assert set(message) <= _FIELDS
        for key, value in message.items():
            assert isinstance(value, bool) if key == "complete" else isinstance(value, str)
            if isinstance(value, str):
                assert "\x00" not in value and len(value) <= protocol.MAX_ARGUMENTS_CHARS
