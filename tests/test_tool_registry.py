"""The tool registry: schemas from type hints, arguments checked before the call, and every failure a result."""
from __future__ import annotations

import asyncio
import enum
import json
import logging
import threading
import time
from typing import Annotated, Literal

import pydantic
import pytest

from conversations.realtime.schema import validate_client_event
from conversations.tools import Tool, ToolContext, ToolError, ToolRegistry, ToolResult, tool
from conversations.tools import registry as registry_module

CONTEXT = ToolContext(user_id=7, conversation_id="5b1a1a6e-4a0e-4a53-9b7e-0d8a1d9e6c01", time_zone="Europe/Berlin")


class Size(enum.Enum):
    SMALL = "small"
    LARGE = "large"


@tool
def order(
    item: str,
    count: int = 1,
    size: Size = Size.SMALL,
    colour: Literal["red", "blue"] | None = None,
    notes: list[str] | None = None,
    rush: bool = False,
) -> dict[str, object]:
    """Order something.

    A second paragraph the model never sees.
    """
    return {"item": item, "count": count, "size": size, "colour": colour, "notes": notes, "rush": rush}


def run(registry: ToolRegistry, name: str, arguments: str) -> ToolResult:
    return asyncio.run(registry.run(name, arguments, CONTEXT))


# --- Schemas -------------------------------------------------------------------------------------


def test_the_schema_comes_from_the_type_hints_with_required_optional_defaults_enums_and_lists():
    assert order.name == "order"
    assert order.description == "Order something."
    assert order.parameters == {
        "type": "object",
        "additionalProperties": False,
        "required": ["item"],
        "properties": {
            "item": {"type": "string"},
            "count": {"type": "integer", "default": 1},
            "size": {"type": "string", "enum": ["small", "large"], "default": "small"},
            "colour": {"anyOf": [{"type": "string", "enum": ["red", "blue"]}, {"type": "null"}], "default": None},
            "notes": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}], "default": None},
            "rush": {"type": "boolean", "default": False},
        },
    }


def test_field_descriptions_and_constraints_reach_the_schema():
    @tool
    def look(query: Annotated[str, pydantic.Field(description="Words to find", max_length=50)]) -> str:
        """Look."""
        return query

    assert look.parameters["properties"]["query"] == {"type": "string", "description": "Words to find", "maxLength": 50}


def test_the_context_parameter_is_not_in_the_schema():
    @tool
    def who(context: ToolContext) -> int:
        """Who asks."""
        return context.user_id

    assert who.parameters == {"type": "object", "additionalProperties": False, "properties": {}}
    assert who.context_parameter == "context"


def test_a_parameter_named_like_a_pydantic_attribute_keeps_its_name():
    @tool
    def fetch(json: str, schema: int = 0) -> str:
        """Fetch."""
        return f"{json}{schema}"

    assert set(fetch.parameters["properties"]) == {"json", "schema"}
    assert run(ToolRegistry([fetch]), "fetch", '{"json": "a", "schema": 2}').output == '"a2"'


def test_a_declared_pydantic_model_is_the_schema_and_the_validation():
    class Arguments(pydantic.BaseModel):
        city: str = pydantic.Field(description="A city")

    @tool(arguments=Arguments, name="forecast", description="The forecast.")
    def forecast(city: str) -> str:
        return city

    assert forecast.parameters["properties"] == {"city": {"type": "string", "description": "A city"}}
    assert run(ToolRegistry([forecast]), "forecast", '{"city": "Oslo"}').output == '"Oslo"'


def test_a_lambda_is_refused_for_its_name():
    with pytest.raises(TypeError, match="not a valid tool name"):
        tool(lambda place: place)


def test_what_cannot_be_described_is_refused_with_the_reason():
    def untyped(place):  # noqa: ANN001
        """Untyped."""

    def undocumented(place: str) -> None:
        pass

    def splat(*places: str) -> None:
        """Splat."""

    with pytest.raises(TypeError, match="place has no type hint"):
        tool(untyped)
    with pytest.raises(TypeError, match="needs a description"):
        tool(undocumented)
    with pytest.raises(TypeError, match="plain or keyword-only"):
        tool(splat)
    with pytest.raises(TypeError, match="not a valid tool name"):
        tool(name="two words", description="x")(undocumented)


def test_declarations_fit_session_update_in_both_dialects():
    registry = ToolRegistry([order])
    declarations = registry.declarations()
    assert declarations == [{"type": "function", "name": "order", "description": "Order something.",
                             "parameters": order.parameters}]
    validate_client_event({"type": "session.update", "session": {"type": "realtime", "tools": declarations,
                                                                 "tool_choice": "auto"}}, "ga")
    validate_client_event({"type": "session.update", "session": {"tools": declarations, "tool_choice": "auto"}},
                          "preview")


def test_an_empty_registry_is_false_and_two_tools_of_one_name_are_refused():
    assert not ToolRegistry()
    assert ToolRegistry([order])
    with pytest.raises(ValueError, match="Two tools are named order"):
        ToolRegistry([order, order])


def test_a_decorated_function_can_still_be_called():
    assert isinstance(order, Tool)
    assert order("tea")["item"] == "tea"


# --- Running -------------------------------------------------------------------------------------


def test_valid_arguments_are_converted_and_the_output_is_json():
    result = run(ToolRegistry([order]), "order", '{"item": "tea", "count": "2", "size": "large", "notes": ["hot"]}')
    assert result.ok
    assert json.loads(result.output) == {"item": "tea", "count": 2, "size": "large", "colour": None,
                                         "notes": ["hot"], "rush": False}
    assert result.summary == "order finished."


def test_empty_arguments_mean_none_for_a_tool_without_parameters():
    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    assert run(ToolRegistry([ping]), "ping", "").output == '"pong"'


@pytest.mark.parametrize(
    "arguments,named",
    [
        ('{"count": 2}', "item: Field required"),
        ('{"item": "tea", "count": "many"}', "count: Input should be a valid integer"),
        ('{"item": "tea", "size": "huge"}', "size: Input should be 'small' or 'large'"),
        ('{"item": "tea", "notes": "hot"}', "notes: Input should be a valid list"),
        ('{"item": "tea", "sugar": 2}', "sugar: Extra inputs are not permitted"),
        ('["tea"]', "the arguments must be a JSON object"),
        ('{"item": ', "the arguments are not valid JSON"),
    ],
)
def test_bad_arguments_give_an_error_naming_the_argument_and_the_tool_is_not_called(arguments, named):
    called = []

    @tool
    def order(item: str, count: int = 1, size: Size = Size.SMALL, notes: list[str] | None = None) -> str:
        """Order something."""
        called.append(item)
        return "ordered"

    result = run(ToolRegistry([order]), "order", arguments)
    assert not result.ok
    assert named in json.loads(result.output)["error"]
    assert json.loads(result.output)["error"].startswith("Invalid arguments for order: ")
    assert result.summary == "The assistant called order with arguments it does not take; it was told why."
    assert called == []


def test_the_value_the_model_sent_is_not_echoed_in_the_error():
    result = run(ToolRegistry([order]), "order", '{"item": "tea", "count": "<script>secret</script>"}')
    assert "secret" not in result.output


def test_an_unknown_tool_gives_an_error_result_listing_the_tools():
    result = run(ToolRegistry([order]), "delete_everything", "{}")
    assert not result.ok
    assert json.loads(result.output) == {"error": "There is no tool named 'delete_everything'. Tools: order."}
    assert result.summary == "The assistant asked for a tool this site does not have (delete_everything)."


def test_the_tool_gets_the_callers_context():
    @tool
    def where(context: ToolContext) -> str:
        """Where."""
        return f"{context.user_id} {context.time_zone}"

    assert json.loads(run(ToolRegistry([where]), "where", "{}").output) == "7 Europe/Berlin"


def test_the_tool_runs_off_the_event_loop_thread():
    @tool
    def thread_name() -> str:
        """Thread name."""
        return threading.current_thread().name

    async def main() -> tuple[str, str]:
        result = await ToolRegistry([thread_name]).run("thread_name", "{}", CONTEXT)
        return json.loads(result.output), threading.current_thread().name

    inside, loop_thread = asyncio.run(main())
    assert inside != loop_thread
    assert inside.startswith("tool")


def test_an_exception_becomes_a_short_error_and_the_traceback_goes_to_the_log(caplog):
    @tool
    def broken() -> str:
        """Broken."""
        raise RuntimeError("password=hunter2 at /srv/secret.py")

    with caplog.at_level(logging.ERROR, logger="conversations.tools.registry"):
        result = run(ToolRegistry([broken]), "broken", "{}")
    assert not result.ok
    assert json.loads(result.output) == {"error": "broken failed with an internal error."}
    assert "hunter2" not in result.output
    assert result.summary == "broken did not work this time; the assistant was told."
    assert "hunter2" in caplog.text and "Traceback" in caplog.text


def test_a_tool_error_message_is_meant_for_the_model_and_passed_on():
    @tool
    def lookup(city: str) -> str:
        """Lookup."""
        raise ToolError(f"No city called {city}.")

    result = run(ToolRegistry([lookup]), "lookup", '{"city": "Atlantis"}')
    assert not result.ok
    assert json.loads(result.output) == {"error": "lookup failed: No city called Atlantis."}


def test_a_timeout_error_raised_by_the_tool_is_its_failure_not_a_time_limit():
    @tool
    def flaky() -> str:
        """Flaky."""
        raise TimeoutError("upstream did not answer")

    result = run(ToolRegistry([flaky], timeout=5), "flaky", "{}")
    assert json.loads(result.output) == {"error": "flaky failed with an internal error."}


def test_a_slow_tool_times_out_with_an_error_and_the_registry_goes_on():
    release = threading.Event()

    @tool(timeout=0.2)
    def slow() -> str:
        """Slow."""
        release.wait(5)
        return "late"

    @tool
    def quick() -> str:
        """Quick."""
        return "fast"

    registry = ToolRegistry([slow, quick], timeout=5)
    started = time.monotonic()
    result = run(registry, "slow", "{}")
    assert time.monotonic() - started < 2
    release.set()
    assert not result.ok
    assert json.loads(result.output) == {"error": "slow took longer than 0.2 seconds and was abandoned."}
    assert result.summary == "slow took too long; the assistant was told."
    assert run(registry, "quick", "{}").output == '"fast"'


def test_the_registrys_time_limit_applies_to_a_tool_without_its_own():
    release = threading.Event()

    @tool
    def slow() -> str:
        """Slow."""
        release.wait(5)
        return "late"

    result = run(ToolRegistry([slow], timeout=0.1), "slow", "{}")
    release.set()
    assert "took longer than 0.1 seconds" in result.output


def test_runaway_tools_are_bounded_by_the_pool_and_later_calls_time_out_instead_of_piling_up_threads(monkeypatch):
    import concurrent.futures

    release = threading.Event()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="tool-test")

    @tool
    def stuck() -> str:
        """Stuck."""
        release.wait(10)
        return "done"

    registry = ToolRegistry([stuck], timeout=0.2, executor=pool)

    async def main() -> list[ToolResult]:
        return await asyncio.gather(*(registry.run("stuck", "{}", CONTEXT) for _ in range(5)))

    try:
        results = asyncio.run(main())
        threads = [t for t in threading.enumerate() if t.name.startswith("tool-test")]
        assert len(threads) == 2
        assert all(not r.ok and "took longer" in r.output for r in results)
    finally:
        release.set()
        pool.shutdown(wait=True)


def test_cancelling_a_run_raises_cancelled_error():
    release = threading.Event()

    @tool
    def slow() -> str:
        """Slow."""
        release.wait(5)
        return "late"

    async def main() -> None:
        task = asyncio.create_task(ToolRegistry([slow]).run("slow", "{}", CONTEXT))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(main())
    finally:
        release.set()


def test_output_past_the_limit_is_cut_to_valid_json_within_the_limit():
    @tool
    def chatty(n: int) -> str:
        """Chatty."""
        return 'quote" back\\slash é ' * n

    registry = ToolRegistry([chatty], max_output_chars=300)
    result = run(registry, "chatty", '{"n": 1000}')
    assert result.ok
    assert len(result.output) <= 300
    cut = json.loads(result.output)
    assert cut["truncated"] is True
    assert cut["partial_output"].startswith('"quote\\" back')
    assert len(cut["partial_output"]) > 100  # not cut to nothing because escaping doubles some characters
    assert "of 22002 characters" in cut["note"]
    small = run(registry, "chatty", '{"n": 2}')
    assert json.loads(small.output) == 'quote" back\\slash é ' * 2


def test_an_output_limit_too_small_for_an_error_is_refused():
    with pytest.raises(ValueError, match="at least 200"):
        ToolRegistry([order], max_output_chars=50)


def test_output_that_is_not_json_is_an_error():
    @tool
    def odd() -> object:
        """Odd."""
        return object()

    result = run(ToolRegistry([odd]), "odd", "{}")
    assert not result.ok
    assert json.loads(result.output) == {"error": "odd failed with an internal error."}


def test_a_summary_function_gives_the_pages_words_and_a_broken_one_falls_back():
    @tool(summarize=lambda value, arguments: f"Found {value} for {arguments['word']}.", label="Counter")
    def count(word: str) -> int:
        """Count."""
        return 3

    @tool(summarize=lambda value, arguments: 1 / 0, label="Other")
    def other() -> int:
        """Other."""
        return 1

    registry = ToolRegistry([count, other])
    assert run(registry, "count", '{"word": "boat"}').summary == "Found 3 for boat."
    assert run(registry, "other", "{}").summary == "Other finished."


def test_working_text_is_the_tools_own_or_a_generic_one_translated_by_the_registry():
    @tool(working_text="Counting…")
    def count() -> int:
        """Count."""
        return 3

    registry = ToolRegistry([count, order], translate=lambda text: text.upper())
    assert registry.working_text("count") == "Counting…"
    assert registry.working_text("order") == "WORKING ON IT…"
    assert registry.working_text("missing") == "WORKING ON IT…"


def test_the_registry_imports_no_django():
    import ast

    with open(registry_module.__file__) as handle:
        tree = ast.parse(handle.read())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imported and not [name for name in imported if name.startswith("django")]
