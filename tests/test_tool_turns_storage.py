"""Tool calls as turns: stored by the journal, read back for a resume, shown in history and exports, imported with care."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversations import selectors, services, services_transfer
from conversations.models import Turn
from conversations.relay.effects import TurnAdded, TurnText, TurnToolCall, TurnToolOutput
from conversations.transfer import format, markdown

from .history import stored
from .hostile import HOSTILE, json_values
from .transfer import document

pytestmark = pytest.mark.django_db

TOOL_TURN = {"role": "tool", "position": 1, "text": "", "started_at": "2026-11-24T09:00:06+00:00", "interrupted": False,
             "audio_ms": 0, "status": "", "status_reason": "", "response_id": "resp_0",
             "tool": {"call_id": "call_1", "name": "recall", "arguments": '{"query": "apricot"}',
                      "output": '{"matches": []}', "summary": "Found nothing about apricot."}}


def with_tool_turn(**tool_changes) -> dict:
    doc = document()
    turn = copy.deepcopy(TOOL_TURN)
    turn["tool"].update(tool_changes)
    doc["turns"] = [doc["turns"][0], turn, {**doc["turns"][1], "position": 2}]
    return doc


@pytest.fixture
def conversation(user):
    return stored(user, [("user", "What did I say about apricots?")])


def test_the_journal_stores_a_call_with_its_arguments_output_and_summary(conversation):
    services.journal_apply(conversation_id=conversation.pk, ops=[
        TurnAdded("fc1", "tool", 1, "resp_1"),
        TurnToolCall("fc1", "call_1", "recall", '{"query": "apricot"}'),
        TurnToolOutput("fc1", '{"matches": []}', "Found nothing.", ""),
        TurnAdded("fc2", "tool", 2, "resp_1"),
        TurnToolCall("fc2", "call_2", "current_time", "{}"),
        TurnToolOutput("fc2", '{"error": "cancelled"}', "Cancelled.", "cancelled"),
        TurnAdded("fc3", "tool", 3, "resp_1"),
        TurnToolCall("fc3", "call_3", "recall", '{"query": "\x00"}'),
        TurnText("fc3", ""),
    ])
    rows = {t.item_id: t for t in Turn.objects.filter(conversation=conversation, role="tool")}
    assert (rows["fc1"].tool_call_id, rows["fc1"].tool_name, rows["fc1"].tool_arguments, rows["fc1"].tool_output,
            rows["fc1"].tool_summary, rows["fc1"].status, rows["fc1"].text) == (
        "call_1", "recall", '{"query": "apricot"}', '{"matches": []}', "Found nothing.", "", "")
    assert rows["fc2"].status == "cancelled"
    assert rows["fc3"].tool_arguments == '{"query": "\ufffd"}'  # storable anywhere
    # Read back for the relay: a call without its output was cut off.
    turns = {t.item_id: t for t in selectors.conversation_for_relay(user=conversation.user,
                                                                   conversation_id=conversation.pk).turns}
    assert (turns["fc1"].call_id, turns["fc1"].tool_name, turns["fc1"].arguments, turns["fc1"].output,
            turns["fc1"].summary) == ("call_1", "recall", '{"query": "apricot"}', '{"matches": []}', "Found nothing.")
    assert turns["fc3"].output is None


def test_the_history_page_shows_a_tool_call_in_plain_words_escaped(client, user):
    conversation = stored(user, [
        ("user", "Recall it"),
        {"role": "tool", "tool_name": "recall", "tool_call_id": "call_1", "tool_arguments": '{"query": "' + HOSTILE + '"}',
         "tool_output": json.dumps({"matches": [{"snippet": HOSTILE}]}), "tool_summary": "Found " + HOSTILE,
         "response_id": "resp_1"},
        {"role": "tool", "tool_name": "current_time", "tool_call_id": "call_2", "status": "interrupted"},
        ("assistant", "Here it is."),
    ])
    client.force_login(user)
    body = client.get(f"/history/{conversation.pk}/").content.decode()
    assert "The assistant used a tool: recall" in body and "The assistant used a tool: current_time" in body
    assert "Found &lt;img" in body and HOSTILE not in body
    assert "(interrupted: the conversation stopped while it ran)" in body
    assert "(no result was stored)" in body


def test_the_talk_page_shows_a_stored_conversations_tool_calls_in_place_as_tool_lines_escaped(client, user):
    conversation = stored(user, [
        ("user", "Recall it"),
        {"role": "tool", "tool_name": "\"><b>x</b>", "tool_call_id": "call_1", "tool_summary": "Found " + HOSTILE},
        {"role": "tool", "tool_name": "current_time", "tool_call_id": "call_2", "status": "cancelled",
         "tool_summary": "Cancelled."},
        ("assistant", "Here it is."),
    ])
    client.force_login(user)
    body = client.get(f"/?conversation={conversation.pk}").content.decode()
    assert HOSTILE not in body and "<b>x</b>" not in body and "Found &lt;img" in body
    roles = re.findall(r'data-role="(\w+)" data-item-id="(\w+)"', body)
    assert roles == [("user", "item_0"), ("tool", "item_1"), ("tool", "item_2"), ("assistant", "item_3")]
    assert 'data-state="completed"' in body and 'data-state="cancelled"' in body
    assert "Cancelled: you went on before it finished." in body


def test_a_conversation_with_tool_calls_exports_them_valid_against_the_schema_and_imports_them_back(client, user):
    from jsonschema import Draft202012Validator

    conversation = stored(user, [
        ("user", "Recall apricots"),
        {"role": "tool", "tool_name": "recall", "tool_call_id": "call_1", "tool_arguments": '{"query": "apricot"}',
         "tool_output": '{"matches": []}', "tool_summary": "Found nothing.", "status": "failed", "response_id": "r1"},
        ("assistant", "Nothing found."),
    ])
    client.force_login(user)
    exported = client.get(f"/history/{conversation.pk}/export.json").json()
    schema = json.loads((Path(format.__file__).parents[1] / "export_schema.json").read_text())
    assert [e.message for e in Draft202012Validator(schema).iter_errors(exported)] == []
    assert exported["turns"][1]["tool"] == {"call_id": "call_1", "name": "recall", "arguments": '{"query": "apricot"}',
                                            "output": '{"matches": []}', "summary": "Found nothing."}
    assert "tool" not in exported["turns"][0]
    exported["conversation"]["id"] = "another"
    imported, errors = format.parse_document(exported)
    assert errors == []
    result = services_transfer.conversations_import(user=user, conversations=[imported])
    row = Turn.objects.get(conversation_id=result.created[0], role="tool")
    assert (row.tool_call_id, row.tool_name, row.tool_arguments, row.tool_output, row.tool_summary, row.status) == (
        "call_1", "recall", '{"query": "apricot"}', '{"matches": []}', "Found nothing.", "failed")


def test_the_schema_requires_the_call_on_tool_turns_only():
    from jsonschema import Draft202012Validator

    schema = Draft202012Validator(json.loads((Path(format.__file__).parents[1] / "export_schema.json").read_text()))
    assert list(schema.iter_errors(with_tool_turn())) == []
    no_call = with_tool_turn()
    del no_call["turns"][1]["tool"]
    assert list(schema.iter_errors(no_call))
    stray = with_tool_turn()
    stray["turns"][0]["tool"] = TOOL_TURN["tool"]
    assert list(schema.iter_errors(stray))


@pytest.mark.parametrize(("change", "problem"), [
    (lambda d: d["turns"][1].pop("tool"), "turns[1].tool: is missing"),
    (lambda d: d["turns"][1].update(tool="recall"), "turns[1].tool: must be an object"),
    (lambda d: d["turns"][0].update(tool=TOOL_TURN["tool"]), "turns[0].tool: only a turn with the role 'tool' has a tool call"),
    (lambda d: d["turns"][1]["tool"].update(call_id="call 1\n"), "turns[1].tool.call_id: may hold only letters, digits, '_' and '-'"),
    (lambda d: d["turns"][1]["tool"].update(name="<b>"), "turns[1].tool.name: may hold only letters, digits, '_' and '-'"),
    (lambda d: d["turns"][1]["tool"].update(name=""), "turns[1].tool.name: must not be empty"),
    (lambda d: d["turns"][1]["tool"].update(output="\x00"), "turns[1].tool.output: must not contain NUL characters"),
    (lambda d: d["turns"][1]["tool"].update(summary="x" * 1001), "turns[1].tool.summary: must be at most 1000 characters long"),
    (lambda d: d["turns"][2].update(role="tool", tool=TOOL_TURN["tool"]),
     "turns[2].tool.call_id: 'call_1' is also the call id of turns[1]"),
])
def test_a_bad_tool_turn_in_an_import_is_named_where_it_is(change, problem):
    doc = with_tool_turn()
    change(doc)
    conversation, errors = format.parse_document(doc)
    assert conversation is None and errors == [problem]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from([("tool",), ("tool", "call_id"), ("tool", "name"), ("tool", "arguments"), ("tool", "output"),
                        ("tool", "summary"), ("role",)]),
       json_values() | st.just(KeyError))
def test_a_tool_turn_with_any_field_replaced_is_a_conversation_or_plain_located_errors(path, value):
    doc = with_tool_turn()
    target = doc["turns"][1]
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    conversation, errors = format.parse_document(doc)
    assert (conversation is None) == bool(errors)
    assert all("\n" not in e and e.startswith("turns[1]") for e in errors)
    if conversation is not None:
        call = conversation.turns[1].tool
        assert call is None or (format._CALL_ID.fullmatch(call.call_id) and format._TOOL_NAME.fullmatch(call.name))


def test_the_markdown_export_tells_of_a_tool_call_in_plain_escaped_words():
    doc = with_tool_turn(summary="Found [a link](http://evil) " + HOSTILE)
    doc["turns"][1]["status"] = "cancelled"
    text = markdown.render(doc)
    assert "*The assistant used a tool: recall* · 09:00:06 · *cancelled: you went on before it finished*" in text
    assert r"\<img src=x" in text and "](" not in text and "<script>" not in text
    assert '{"matches"' not in text  # the model's output is not for reading
