"""Tools a deployer might write, named by dotted path in the tests' REALTIME_TOOLS."""
from __future__ import annotations

from typing import Literal

from conversations.tools import ToolContext, tool


@tool
def weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict[str, object]:
    """The weather in a city today."""
    return {"city": city, "temperature": 21 if unit == "celsius" else 70, "unit": unit}


def opening_hours(place: str, context: ToolContext) -> str:
    """When a place opens (a plain typed function, not decorated)."""
    return f"{place} opens at 9 for user {context.user_id}"


def undocumented(place: str) -> str:
    return place


def untyped(place):  # noqa: ANN001
    """A parameter without a type hint cannot be described."""
    return place


NOT_CALLABLE = 42


@tool(name="recall")
def another_recall(query: str) -> str:
    """A second tool named like a built-in."""
    return query
