"""Whatever arguments the model sends, running a tool gives a ToolResult with JSON output within the limit."""
from __future__ import annotations

import asyncio
import json
from typing import Literal

import pydantic_core
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversations.tools import ToolContext, ToolRegistry, ToolResult, tool

from .hostile import json_values
from .hypothesis_budget import examples

CONTEXT = ToolContext(user_id=1, conversation_id="c", time_zone="UTC")
LIMIT = 200


@tool
def order(item: str, count: int = 1, size: Literal["small", "large"] = "small", notes: list[str] | None = None) -> dict:
    """Order something."""
    return {"item": item, "count": count, "size": size, "notes": notes}


REGISTRY = ToolRegistry([order], max_output_chars=LIMIT)

# Objects with the tool's own argument names as keys (most likely to reach the tool), as well as any JSON.
ARGUMENT_OBJECTS = st.dictionaries(
    st.sampled_from(["item", "count", "size", "notes", "extra"]) | st.text(max_size=8), json_values(), max_size=5
)
ARGUMENT_TEXT = (
    st.text(max_size=60)
    | json_values().map(json.dumps)
    | ARGUMENT_OBJECTS.map(json.dumps)
    | ARGUMENT_OBJECTS.map(lambda value: json.dumps(value)[:-1])  # cut short mid-object
)


def assert_a_json_result_within_the_limit(result: ToolResult) -> None:
    """A result the model can read: JSON within the size limit, an error when not ok, words for the page."""
    assert isinstance(result, ToolResult)
    assert len(result.output) <= LIMIT
    parsed = json.loads(result.output)
    assert result.ok or set(parsed) == {"error"}
    assert result.summary


@given(arguments=ARGUMENT_TEXT)
@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_argument_text_gives_a_result_never_an_exception(arguments):
    assert_a_json_result_within_the_limit(asyncio.run(REGISTRY.run("order", arguments, CONTEXT)))


@given(name=st.text(max_size=100), arguments=st.text(max_size=20))
@settings(max_examples=examples(100), deadline=None)
def test_any_tool_name_gives_a_result_never_an_exception(name, arguments):
    assert_a_json_result_within_the_limit(asyncio.run(REGISTRY.run(name, arguments, CONTEXT)))


@given(item=st.text(max_size=400), notes=st.lists(st.text(max_size=100), max_size=5))
@settings(max_examples=examples(200), deadline=None)
def test_any_output_is_cut_to_valid_json_within_the_limit(item, notes):
    arguments = json.dumps({"item": item, "notes": notes})
    result = asyncio.run(REGISTRY.run("order", arguments, CONTEXT))
    assert_a_json_result_within_the_limit(result)
    assert result.ok
    value = json.loads(result.output)
    whole = pydantic_core.to_json({"item": item, "count": 1, "size": "small", "notes": notes}).decode()
    if len(whole) > LIMIT:
        assert value["truncated"] is True
        assert whole.startswith(value["partial_output"])
    else:
        assert value["item"] == item
