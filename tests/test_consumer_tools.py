"""Function calling through the whole ASGI app against the strict simulator, in both dialects."""
from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from conversations.models import Turn
from conversations.realtime.schema import validate_client_event

from . import tools_for_tests
from .audio import silence, speech
from .relay import Transcript, collect, communicator, send_pcm

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("end_live_conversations")]

DIALECTS = {"ga": ("", "gpt-realtime"), "preview": ("2025-04-01-preview", "gpt-4o-realtime-preview")}


@pytest.fixture(params=sorted(DIALECTS))
def dialect(request, settings, use_simulator):
    """Run the test in each dialect, with the test's deployer tools declared next to the built-ins."""
    settings.AZURE_OPENAI_API_VERSION, settings.AZURE_OPENAI_DEPLOYMENT = DIALECTS[request.param]
    settings.REALTIME_TOOLS = ["tests.tools_for_tests.broken_lookup", "tests.tools_for_tests.slow_lookup"]
    tools_for_tests.release.clear()
    yield request.param
    tools_for_tests.release.set()  # no test thread is left waiting


def client_events(sim) -> list[dict]:
    """What the app sent upstream, without the simulator's own bookkeeping keys."""
    return [{k: v for k, v in e.items() if not k.startswith("_")} for e in sim.received]


def answered(seen: Transcript) -> bool:
    """An assistant reply has been written down."""
    return any(m["role"] == "assistant" for m in seen.of_type("transcript_done"))


async def say(comm, seen: Transcript, text: str, until) -> Transcript:
    await comm.send_to(text_data=json.dumps({"type": "text", "text": text}))
    return await collect(comm, seen, until)


@database_sync_to_async
def stored_turns(conversation_id) -> list[Turn]:
    return list(Turn.objects.filter(conversation_id=conversation_id).order_by("position"))


async def test_a_tool_call_round_trip_runs_the_tool_answers_from_it_and_is_stored(dialect, use_simulator, cookie):
    comm = communicator(cookie, path="/ws/talk/?tz=Europe/Berlin")
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    seen = await say(comm, seen, "What time is it?", answered)
    started, finished = seen.of_type("tool_started"), seen.of_type("tool_finished")
    assert [(m["name"], m["text"]) for m in started] == [("current_time", started[0]["text"])] and started[0]["text"]
    assert [(m["call_id"], m["ok"], m["status"]) for m in finished] == [(started[0]["call_id"], True, "completed")]
    kinds = [m["type"] for m in seen.messages]
    assert kinds.index("response_done") < kinds.index("tool_started") < kinds.index("tool_finished")
    reply = [m for m in seen.of_type("transcript_done") if m["role"] == "assistant"][0]["text"]
    assert "Europe/Berlin" in reply  # the simulator quotes the output: the browser's time zone reached the tool
    await comm.disconnect()

    events = client_events(use_simulator)
    for event in events:
        validate_client_event(event, dialect)
    assert use_simulator.validation_errors == []
    assert events[0]["session"]["tool_choice"] == "auto"
    assert {t["name"] for t in events[0]["session"]["tools"]} >= {"recall", "current_time", "broken_lookup"}
    kinds = [(e["type"], e.get("item", {}).get("type")) for e in events]
    output_at = kinds.index(("conversation.item.create", "function_call_output"))
    assert kinds[output_at + 1] == ("response.create", None)  # one reply, asked for after the output
    turns = await stored_turns(seen.of_type("ready")[0]["conversation_id"])
    assert [t.role for t in turns] == ["user", "tool", "assistant"]
    call = turns[1]
    assert (call.tool_name, call.tool_call_id, call.status) == ("current_time", started[0]["call_id"], "")
    assert json.loads(call.tool_output)["time_zone"] == "Europe/Berlin" and call.tool_summary and not call.text


async def test_a_spanish_browser_sees_what_a_tool_does_in_spanish(dialect, use_simulator, cookie):
    from voiceapp.asgi import application
    from channels.testing import WebsocketCommunicator

    from .relay import ORIGIN

    comm = WebsocketCommunicator(application, "/ws/talk/?tz=Europe/Madrid", headers=[
        (b"origin", ORIGIN), (b"host", b"localhost"), (b"cookie", cookie), (b"accept-language", b"es-ES,es;q=0.9")])
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    seen = await say(comm, seen, "What time is it?", answered)
    await comm.disconnect()
    assert [m["text"] for m in seen.of_type("tool_started")] == ["Consultando la hora…"]
    assert seen.of_type("tool_finished")[0]["summary"].startswith("Hora consultada: ")
    assert "(Europe/Madrid)" in seen.of_type("tool_finished")[0]["summary"]


async def test_a_continued_conversation_gives_the_model_its_stored_calls_again(dialect, use_simulator, cookie):
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    seen = await say(comm, seen, "What time is it?", answered)
    conversation_id = seen.of_type("ready")[0]["conversation_id"]
    await comm.disconnect()
    before = len(use_simulator.received)

    again = communicator(cookie, path=f"/ws/talk/?conversation={conversation_id}")
    await again.connect()
    resumed = await collect(again, Transcript(), lambda s: bool(s.of_type("ready")))
    await again.disconnect()
    items = [e["item"] for e in client_events(use_simulator)[before:] if e["type"] == "conversation.item.create"]
    assert [i["type"] for i in items] == ["message", "function_call", "function_call_output", "message"]
    assert items[1]["call_id"] == items[2]["call_id"] and items[1]["name"] == "current_time"
    assert [i["role"] for i in resumed.of_type("history")[0]["items"]] == ["user", "tool", "assistant"]
    assert use_simulator.validation_errors == []


async def test_a_failing_and_a_slow_tool_give_the_model_an_error_and_the_conversation_goes_on(
        dialect, use_simulator, cookie, settings):
    settings.TOOL_TIMEOUT_SECONDS = 0.5
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    seen = await say(comm, seen, "Please do a broken lookup.", answered)
    seen = await say(comm, seen, "Now a slow lookup.", lambda s: len(
        [m for m in s.of_type("transcript_done") if m["role"] == "assistant"]) == 2)
    seen = await say(comm, seen, "And what time is it?", lambda s: len(
        [m for m in s.of_type("transcript_done") if m["role"] == "assistant"]) == 3)
    await comm.disconnect()
    finished = seen.of_type("tool_finished")
    assert [(m["name"], m["ok"], m["status"]) for m in finished] == [
        ("broken_lookup", False, "completed"), ("slow_lookup", False, "completed"), ("current_time", True, "completed")]
    replies = [m["text"] for m in seen.of_type("transcript_done") if m["role"] == "assistant"]
    assert "failed" in replies[0] and "fire" not in replies[0]  # the model hears of the failure, not the internals
    assert "longer than" in replies[1]
    outputs = [json.loads(e["item"]["output"]) for e in client_events(use_simulator)
               if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"]
    assert "error" in outputs[0] and "error" in outputs[1] and "time" in outputs[2]
    turns = await stored_turns(seen.of_type("ready")[0]["conversation_id"])
    assert [(t.tool_name, t.status) for t in turns if t.role == "tool"] == [
        ("broken_lookup", "failed"), ("slow_lookup", "failed"), ("current_time", "")]
    assert use_simulator.validation_errors == []


async def test_speaking_while_a_tool_runs_cancels_it_and_the_model_is_not_asked_to_answer_it(
        dialect, use_simulator, cookie):
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    seen = await say(comm, seen, "Do a slow lookup.", lambda s: bool(s.of_type("tool_started")))
    await send_pcm(comm, speech() + silence(1200))
    seen = await collect(comm, seen, lambda s: bool(s.of_type("tool_finished")) and answered(s))
    finished = seen.of_type("tool_finished")[0]
    assert (finished["name"], finished["ok"], finished["status"]) == ("slow_lookup", False, "cancelled")
    kinds = [m["type"] for m in seen.messages]
    assert kinds.index("speech_started") < kinds.index("tool_finished")
    await comm.disconnect()
    tools_for_tests.release.set()

    events = client_events(use_simulator)
    kinds = [(e["type"], e.get("item", {}).get("type")) for e in events]
    output_at = kinds.index(("conversation.item.create", "function_call_output"))
    assert json.loads(events[output_at]["item"]["output"])["error"] == "cancelled"
    # Server VAD answers the user's new turn itself: the app asks for no reply to the cancelled call.
    assert ("response.create", None) not in kinds[output_at:]
    turns = await stored_turns(seen.of_type("ready")[0]["conversation_id"])
    assert [(t.tool_name, t.status) for t in turns if t.role == "tool"] == [("slow_lookup", "cancelled")]
    assert use_simulator.validation_errors == []


async def test_stop_while_a_tool_runs_cancels_it_and_stores_it_as_cancelled(dialect, use_simulator, cookie):
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    seen = await say(comm, seen, "Do a slow lookup.", lambda s: bool(s.of_type("tool_started")))
    await comm.disconnect(code=1000)  # Stop
    tools_for_tests.release.set()
    turns = await stored_turns(seen.of_type("ready")[0]["conversation_id"])
    tool = [t for t in turns if t.role == "tool"][0]
    assert (tool.tool_name, tool.status, json.loads(tool.tool_output)["error"]) == ("slow_lookup", "cancelled", "cancelled")
    assert use_simulator.validation_errors == []
