"""Function calling on the pure core: calls take their places, run after their response, and answer the model once."""
from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.realtime.protocol import BrowserCommand, SessionConfig
from conversations.realtime.schema import validate_client_event
from conversations.relay.effects import (
    CancelTool,
    RunTool,
    ToBrowser,
    ToUpstream,
    TurnAdded,
    TurnToolCall,
    TurnToolOutput,
)
from conversations.relay.state import RelayCore, StoredTurn
from tests.hostile import json_values

GA, PREVIEW = "ga", "preview"
RECALL = {"type": "function", "name": "recall", "description": "Search your past conversations.",
          "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}
CLOCK = {"type": "function", "name": "current_time", "description": "The time now.",
         "parameters": {"type": "object", "properties": {}}}
TEXTS = {"recall": "Looking through your past conversations…"}


def core(dialect: str = GA) -> RelayCore:
    return RelayCore(dialect=dialect, config=SessionConfig(), tools=[RECALL, CLOCK], tool_texts=TEXTS)


def of(effects, kind):
    return [e for e in effects if isinstance(e, kind)]


def browser(effects, kind=None):
    return [e.message for e in of(effects, ToBrowser) if kind is None or e.message["type"] == kind]


def upstream(effects):
    return [e.event for e in of(effects, ToUpstream)]


def call_item(item_id, call_id, name, arguments="", status="in_progress"):
    return {"id": item_id, "type": "function_call", "call_id": call_id, "name": name, "arguments": arguments,
            "status": status, "object": "realtime.item"}


def model_calls(c: RelayCore, response_id: str, calls: list[tuple[str, str, str, str]], *, dialect: str = GA,
                status: str = "completed") -> list:
    """Feed the events of one response in which the model calls (item_id, call_id, name, arguments); return all effects."""
    s = c.session
    effects = c.on_upstream({"type": "response.created", "response": {"id": response_id}}, s)
    for index, (item_id, call_id, name, arguments) in enumerate(calls):
        effects += c.on_upstream({"type": "response.output_item.added", "response_id": response_id, "output_index": index,
                                  "item": call_item(item_id, call_id, name)}, s)
        effects += c.on_upstream({"type": "conversation.item.added" if dialect == GA else "conversation.item.created",
                                  "item": call_item(item_id, call_id, name)}, s)
        half = len(arguments) // 2
        for delta in (arguments[:half], arguments[half:]):
            effects += c.on_upstream({"type": "response.function_call_arguments.delta", "response_id": response_id,
                                      "item_id": item_id, "call_id": call_id, "output_index": index, "delta": delta}, s)
        done = {"type": "response.function_call_arguments.done", "response_id": response_id, "item_id": item_id,
                "call_id": call_id, "output_index": index, "arguments": arguments}
        if dialect == GA:
            done["name"] = name
        effects += c.on_upstream(done, s)
        effects += c.on_upstream({"type": "response.output_item.done", "response_id": response_id, "output_index": index,
                                  "item": call_item(item_id, call_id, name, arguments, "completed")}, s)
    effects += c.on_upstream({"type": "response.done", "response": {
        "id": response_id, "status": status,
        "output": [call_item(i, cid, n, a, "completed") for i, cid, n, a in calls]}}, s)
    return effects


def user_says(c: RelayCore, item_id: str, text: str) -> None:
    c.on_upstream({"type": "conversation.item.added", "item": {"id": item_id, "type": "message", "role": "user",
                                                               "content": [{"type": "input_text", "text": text}]}},
                  c.session)


def test_a_function_call_takes_its_place_and_runs_only_once_its_response_is_done():
    c = core()
    user_says(c, "u1", "What did I tell you about the boat?")
    s = c.session
    before_done = c.on_upstream({"type": "response.created", "response": {"id": "r1"}}, s)
    before_done += c.on_upstream({"type": "response.output_item.added", "response_id": "r1", "output_index": 0,
                                  "item": call_item("fc1", "call_1", "recall")}, s)
    before_done += c.on_upstream({"type": "response.function_call_arguments.done", "response_id": "r1", "item_id": "fc1",
                                  "call_id": "call_1", "output_index": 0, "arguments": '{"query": "boat"}',
                                  "name": "recall"}, s)
    assert of(before_done, TurnAdded) == [TurnAdded("fc1", "tool", 1, "r1")]
    assert not of(before_done, RunTool)  # never while its response is still going
    done = c.on_upstream({"type": "response.done", "response": {"id": "r1", "status": "completed",
                                                                 "output": [call_item("fc1", "call_1", "recall",
                                                                                      '{"query": "boat"}', "completed")]}}, s)
    assert of(done, RunTool) == [RunTool("call_1", "fc1", "recall", '{"query": "boat"}')]
    assert browser(done, "tool_started") == [{"type": "tool_started", "item_id": "fc1", "call_id": "call_1",
                                              "name": "recall", "text": "Looking through your past conversations…"}]
    assert not upstream(done)  # no response.create until the output is there
    assert [(i, it.position) for i, it in c.items.items()] == [("u1", 0), ("fc1", 1)]


def test_the_arguments_are_put_together_from_the_deltas_when_the_preview_done_event_has_no_name():
    c = core(PREVIEW)
    effects = model_calls(c, "r1", [("fc1", "call_1", "recall", '{"query": "the red boat"}')], dialect=PREVIEW)
    assert of(effects, RunTool) == [RunTool("call_1", "fc1", "recall", '{"query": "the red boat"}')]


def test_a_finished_call_sends_its_output_then_asks_for_the_reply_once():
    c = core()
    model_calls(c, "r1", [("fc1", "call_1", "current_time", "{}")])
    effects = c.tool_finished("call_1", '{"time": "14:05"}', ok=True, summary="It is 14:05.")
    assert upstream(effects) == [
        {"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "call_1",
                                                      "output": '{"time": "14:05"}'}},
        {"type": "response.create"},
    ]
    assert browser(effects, "tool_finished") == [{"type": "tool_finished", "item_id": "fc1", "call_id": "call_1",
                                                  "name": "current_time", "ok": True, "status": "completed",
                                                  "summary": "It is 14:05."}]
    assert of(effects, TurnToolOutput) == [TurnToolOutput("fc1", '{"time": "14:05"}', "It is 14:05.", "")]
    assert c.tool_finished("call_1", "{}", ok=True, summary="again") == []  # a second result changes nothing


def test_several_calls_in_one_response_ask_for_one_reply_after_the_last_output():
    c = core()
    started = model_calls(c, "r1", [("fc1", "call_1", "recall", '{"query": "boat"}'),
                                    ("fc2", "call_2", "current_time", "{}")])
    assert [e.call_id for e in of(started, RunTool)] == ["call_1", "call_2"]
    second_first = c.tool_finished("call_2", '{"time": "14:05"}', ok=True, summary="It is 14:05.")
    assert upstream(second_first) == [{"type": "conversation.item.create", "item": {
        "type": "function_call_output", "call_id": "call_2", "output": '{"time": "14:05"}'}}]
    last = c.tool_finished("call_1", '{"matches": []}', ok=True, summary="Found nothing.")
    assert [e["type"] for e in upstream(last)] == ["conversation.item.create", "response.create"]


def test_a_failed_tool_gives_the_model_its_error_and_the_reply_is_still_asked_for():
    c = core()
    model_calls(c, "r1", [("fc1", "call_1", "recall", '{"query": 3}')])
    effects = c.tool_finished("call_1", '{"error": "query must be text"}', ok=False, summary="The lookup failed.")
    assert [e["type"] for e in upstream(effects)] == ["conversation.item.create", "response.create"]
    assert of(effects, TurnToolOutput) == [TurnToolOutput("fc1", '{"error": "query must be text"}', "The lookup failed.",
                                                          "failed")]
    assert browser(effects, "tool_finished")[0]["ok"] is False


def test_barge_in_while_a_tool_runs_cancels_it_tells_the_model_and_asks_for_no_reply():
    c = core()
    model_calls(c, "r1", [("fc1", "call_1", "recall", '{"query": "boat"}')])
    assert not c.idle()  # no rollover while a tool runs
    effects = c.on_upstream({"type": "input_audio_buffer.speech_started", "item_id": "u2", "audio_start_ms": 10},
                            c.session)
    assert of(effects, CancelTool) == [CancelTool("call_1")]
    sent = upstream(effects)
    assert len(sent) == 1 and sent[0]["item"]["type"] == "function_call_output"
    assert json.loads(sent[0]["item"]["output"])["error"] == "cancelled"
    assert of(effects, TurnToolOutput)[0].status == "cancelled"
    assert browser(effects, "tool_finished")[0]["status"] == "cancelled"
    assert c.tool_finished("call_1", '{"matches": []}', ok=True, summary="late") == []  # too late: dropped


def test_stop_and_a_browser_that_leaves_cancel_a_running_tool():
    for cancel in (lambda c: c.on_browser(BrowserCommand("cancel")), lambda c: c.browser_left()):
        c = core()
        model_calls(c, "r1", [("fc1", "call_1", "recall", '{"query": "boat"}')])
        effects = cancel(c)
        assert of(effects, CancelTool) == [CancelTool("call_1")]
        assert "response.create" not in [e["type"] for e in upstream(effects)]


def test_a_typed_message_while_a_tool_runs_cancels_it_and_gets_its_own_reply():
    c = core()
    model_calls(c, "r1", [("fc1", "call_1", "recall", '{"query": "boat"}')])
    effects = c.on_browser(BrowserCommand("text", text="never mind"))
    assert of(effects, CancelTool) == [CancelTool("call_1")]
    assert [e["type"] for e in upstream(effects)] == ["conversation.item.create", "conversation.item.create",
                                                     "response.create"]


def test_a_call_in_a_cancelled_response_is_not_run_and_its_output_says_so():
    c = core()
    effects = model_calls(c, "r1", [("fc1", "call_1", "recall", '{"query": "boat"}')], status="cancelled")
    assert not of(effects, RunTool)
    assert [json.loads(e["item"]["output"])["error"] for e in upstream(effects)] == ["cancelled"]
    assert "response.create" not in [e["type"] for e in upstream(effects)]
    assert of(effects, TurnToolOutput)[0].status == "cancelled"
    assert c.idle()


def test_a_call_to_a_tool_that_was_not_declared_is_answered_with_an_error_without_running():
    c = core()
    effects = model_calls(c, "r1", [("fc1", "call_1", "format_disk", "{}")])
    assert not of(effects, RunTool)
    sent = upstream(effects)
    assert [e["type"] for e in sent] == ["conversation.item.create", "response.create"]
    assert json.loads(sent[0]["item"]["output"])["error"] == "unknown_tool"


def test_more_calls_than_allowed_in_one_response_are_refused_past_the_limit():
    c = core()
    calls = [(f"fc{i}", f"call_{i}", "current_time", "{}") for i in range(12)]
    effects = model_calls(c, "r1", calls)
    assert len(of(effects, RunTool)) == 8
    refused = [e for e in upstream(effects) if e["type"] == "conversation.item.create"]
    assert len(refused) == 4 and all(json.loads(e["item"]["output"])["error"] == "too_many_calls" for e in refused)


def test_the_journal_stores_the_call_with_its_arguments_and_its_output():
    c = core()
    effects = model_calls(c, "r1", [("fc1", "call_1", "recall", '{"query": "boat"}')])
    effects += c.tool_finished("call_1", '{"matches": []}', ok=True, summary="Found nothing.")
    assert of(effects, TurnAdded) == [TurnAdded("fc1", "tool", 0, "r1")]
    assert of(effects, TurnToolCall) == [TurnToolCall("fc1", "call_1", "recall", '{"query": "boat"}')]
    assert of(effects, TurnToolOutput) == [TurnToolOutput("fc1", '{"matches": []}', "Found nothing.", "")]
    assert c.history()["items"] == [{"item_id": "fc1", "role": "tool", "text": "Found nothing.", "interrupted": False,
                                     "status": "", "call_id": "call_1", "name": "recall"}]


def stored_call(position: int = 1, output: str | None = '{"matches": []}', status: str = "") -> StoredTurn:
    return StoredTurn("fc1", "tool", position, call_id="call_1", tool_name="recall", arguments='{"query": "boat"}',
                      output=output, summary="Found nothing." if output else "", status=status)


def test_a_resumed_core_seeds_a_stored_call_and_its_output_in_both_dialects():
    for dialect in (GA, PREVIEW):
        turns = [StoredTurn("u1", "user", 0, "What about the boat?"), stored_call(1),
                 StoredTurn("a1", "assistant", 2, "You said it is red.")]
        c = RelayCore.resume(turns, dialect=dialect, config=SessionConfig(), tools=[RECALL])
        facts, _ = c.open_session()
        seeded = upstream(c.seed(facts))
        assert [e["item"]["type"] for e in seeded] == ["message", "function_call", "function_call_output", "message"]
        assert seeded[1]["item"] == {"type": "function_call", "call_id": "call_1", "name": "recall",
                                     "arguments": '{"query": "boat"}', "id": "fc1"}
        assert seeded[2]["item"] == {"type": "function_call_output", "call_id": "call_1", "output": '{"matches": []}'}
        for event in seeded:
            validate_client_event(event, dialect)
        # The echo of the seeded call is history, not a new call.
        echo = c.on_upstream({"type": "conversation.item.created", "item": call_item("fc1", "call_1", "recall",
                                                                                      '{"query": "boat"}', "completed")},
                             facts)
        assert echo == []


def test_a_call_stored_without_its_output_is_seeded_and_recorded_as_interrupted():
    c = RelayCore.resume([StoredTurn("u1", "user", 0, "Recall the boat."), stored_call(1, output=None)],
                         dialect=GA, config=SessionConfig(), tools=[RECALL])
    facts, _ = c.open_session()
    effects = c.seed(facts)
    output = [e for e in upstream(effects) if e["item"]["type"] == "function_call_output"]
    assert [json.loads(e["item"]["output"])["error"] for e in output] == ["interrupted"]
    assert [op.status for op in of(effects, TurnToolOutput)] == ["interrupted"]
    assert "response.create" not in [e["type"] for e in upstream(effects)]  # a continued conversation is not answered
    again, _ = c.open_session()
    assert not of(c.seed(again), TurnToolOutput)  # recorded once


def test_a_returning_browser_whose_conversation_ended_during_a_call_gets_the_reply_to_it():
    c = RelayCore.resume([StoredTurn("u1", "user", 0, "Recall the boat."), stored_call(1, output=None)],
                         dialect=GA, config=SessionConfig(), tools=[RECALL])
    c.answer_unanswered_turn()
    facts, _ = c.open_session()
    assert upstream(c.seed(facts))[-1] == {"type": "response.create"}


def test_a_session_that_drops_while_a_tool_runs_seeds_the_call_and_its_output_goes_to_the_next_one():
    c = core()
    user_says(c, "u1", "What time is it?")
    model_calls(c, "r1", [("fc1", "call_1", "current_time", "{}")])
    assert not of(c.finish(), TurnToolOutput)  # the session went, the tool goes on
    facts, _ = c.open_session()
    seeded = upstream(c.seed(facts))
    assert [e["item"]["type"] for e in seeded] == ["message", "function_call"]
    c.switch_to(facts)
    effects = c.tool_finished("call_1", '{"time": "14:05"}', ok=True, summary="It is 14:05.")
    assert [e["type"] for e in upstream(effects)] == ["conversation.item.create", "response.create"]


def test_a_tool_that_finishes_between_sessions_has_its_reply_asked_of_the_next_one():
    c = core()
    user_says(c, "u1", "What time is it?")
    model_calls(c, "r1", [("fc1", "call_1", "current_time", "{}")])
    c.finish()
    c.tool_finished("call_1", '{"time": "14:05"}', ok=True, summary="It is 14:05.")  # no session to take it
    facts, _ = c.open_session()
    seeded = upstream(c.seed(facts))
    assert [e.get("item", {}).get("type") for e in seeded] == ["message", "function_call", "function_call_output", None]
    assert seeded[-1] == {"type": "response.create"}


def test_the_conversation_ending_while_a_tool_runs_records_it_as_interrupted():
    c = core()
    model_calls(c, "r1", [("fc1", "call_1", "recall", '{"query": "boat"}')])
    effects = c.end_tools()
    assert of(effects, CancelTool) == [CancelTool("call_1")]
    assert [op.status for op in of(effects, TurnToolOutput)] == ["interrupted"]
    assert not upstream(effects)
    assert c.end_tools() == []


def test_a_response_cut_by_a_dropped_session_leaves_its_unfinished_call_interrupted():
    c = core()
    s = c.session
    c.on_upstream({"type": "response.created", "response": {"id": "r1"}}, s)
    c.on_upstream({"type": "response.output_item.added", "response_id": "r1", "item": call_item("fc1", "call_1", "recall")}, s)
    effects = c.finish()
    assert of(effects, TurnToolCall) == [TurnToolCall("fc1", "call_1", "recall", "")]
    assert [op.status for op in of(effects, TurnToolOutput)] == ["interrupted"]
    assert c.idle()


def test_every_client_event_of_a_round_trip_validates_in_both_dialects():
    for dialect in (GA, PREVIEW):
        c = core(dialect)
        _, opened = c.open_session()
        effects = opened + model_calls(c, "r1", [("fc1", "call_1", "recall", '{"query": "boat"}'),
                                                 ("fc2", "call_2", "current_time", "{}")], dialect=dialect)
        effects += c.tool_finished("call_1", '{"matches": []}', ok=True, summary="Found nothing.")
        effects += c.tool_finished("call_2", '{"error": "timeout"}', ok=False, summary="Took too long.")
        events = upstream(effects)
        assert events[0]["session"]["tools"] == [RECALL, CLOCK] and events[0]["session"]["tool_choice"] == "auto"
        for event in events:
            validate_client_event(event, dialect)


def test_settings_applied_mid_conversation_keep_the_tools():
    c = core()
    update = upstream(c.apply_config(SessionConfig(voice="verse")))[0]
    assert update["session"]["tools"] == [RECALL, CLOCK]


_CALL_EVENT_TYPES = ["response.output_item.added", "response.output_item.done", "conversation.item.added",
                     "conversation.item.created", "conversation.item.done", "response.function_call_arguments.delta",
                     "response.function_call_arguments.done", "response.done", "response.created",
                     "input_audio_buffer.speech_started"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.fixed_dictionaries({"type": st.sampled_from(_CALL_EVENT_TYPES)},
                                      optional={"item": json_values(), "response": json_values(),
                                                "item_id": json_values(), "call_id": json_values(),
                                                "delta": json_values(), "arguments": json_values(),
                                                "name": json_values(), "response_id": json_values()}),
                max_size=12),
       st.lists(st.tuples(st.text(max_size=6), st.booleans()), max_size=3))
def test_no_function_call_event_of_any_shape_makes_the_core_raise(events, results):
    c = core()
    for event in events:
        for effect in c.on_upstream(event, c.session):
            if isinstance(effect, RunTool):
                assert isinstance(effect.arguments, str) and len(effect.arguments) <= 64 * 1024
    for call_id, ok in results:
        c.tool_finished(call_id, "{}", ok=ok, summary="")
    for call_id in [item.call.call_id for item in c.items.values() if item.call is not None]:
        c.tool_finished(call_id, "{}", ok=True, summary="")
    c.finish()
    c.end_tools()
    facts, _ = c.open_session()
    c.seed(facts)
    c.history()


def test_a_call_whose_response_was_still_going_at_a_rollover_is_seeded_as_interrupted_and_answered():
    c = core()
    user_says(c, "u1", "Recall the boat.")
    s = c.session
    c.on_upstream({"type": "response.created", "response": {"id": "r1"}}, s)
    c.on_upstream({"type": "response.output_item.added", "response_id": "r1", "item": call_item("fc1", "call_1", "recall")}, s)
    facts, _ = c.open_session()
    effects = c.seed(facts)
    assert [op.status for op in of(effects, TurnToolOutput)] == ["interrupted"]
    seeded = upstream(effects)
    assert [e.get("item", {}).get("type") for e in seeded] == ["message", "function_call", "function_call_output", None]
    assert seeded[-1] == {"type": "response.create"}  # the model explains, the user is not left waiting
    assert not c.tools_running()
