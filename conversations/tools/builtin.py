"""The tools every site has: `recall` (the user's own past conversations) and `current_time`.

Plain sync callables: the registry runs them in a worker thread, so they may use the ORM.
"""
from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import connections
from django.utils.translation import gettext, gettext_lazy, ngettext
from pydantic import Field, StringConstraints

from .registry import ToolContext, tool

F = TypeVar("F", bound=Callable[..., Any])


def _close_old_connections() -> None:
    """Drop this thread's connections that are dead or past CONN_MAX_AGE, never one inside a transaction."""
    for connection in connections.all(initialized_only=True):
        # A test's transaction (or a caller's) must not be closed under it.
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


def uses_database(function: F) -> F:
    """Look after the database connection of a tool thread, as Channels' database_sync_to_async does.

    A tool thread is no request, so nothing else would ever close its connection: one the server dropped
    would fail every later call in that thread.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            _close_old_connections()

    return wrapper  # type: ignore[return-value]


def zone(name: str) -> datetime.tzinfo:
    """The IANA time zone, or UTC for a name this machine does not know."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return datetime.UTC


# --- recall --------------------------------------------------------------------------------------


def _recall_summary(value: dict[str, Any], arguments: dict[str, Any]) -> str:
    """What recall found, in plain words for the page."""
    count = len(value.get("matches", ()))
    query = arguments.get("query", "")
    if not count:
        return gettext("No earlier conversation mentions “%(query)s”.") % {"query": query}
    return ngettext(
        "Found %(count)d earlier conversation mentioning “%(query)s”.",
        "Found %(count)d earlier conversations mentioning “%(query)s”.",
        count,
    ) % {"count": count, "query": query}


@tool(
    description="Search the user's own earlier conversations with you for words and get the best matching "
    "snippets with their dates. Use it when the user asks what they said, told you or asked you to remember before.",
    label=gettext_lazy("Remember earlier conversations"),
    working_text=gettext_lazy("Looking through your past conversations…"),
    summarize=_recall_summary,
)
@uses_database
def recall(
    query: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
        Field(description="One to three salient words to look for, e.g. 'boat' or 'sister birthday'."),
    ],
    context: ToolContext,
    limit: Annotated[int, Field(ge=1, le=10, description="How many conversations to return at most.")] = 3,
) -> dict[str, Any]:
    """The best matching snippets, with their dates, of the calling user's other conversations."""
    # Imported here: the ORM's selectors load models, and this module is imported when settings are checked.
    from .selectors import recall_matches

    tz = zone(context.time_zone)
    matches = recall_matches(
        user_id=context.user_id, query=query, exclude_conversation_id=context.conversation_id, limit=limit
    )
    result: dict[str, Any] = {
        "query": query,
        "today": datetime.datetime.now(tz).date().isoformat(),
        "matches": [
            {
                "date": match.started_at.astimezone(tz).date().isoformat(),
                "title": match.title,
                "speaker": match.speaker,
                "snippet": match.snippet,
            }
            for match in matches
        ],
    }
    if not matches:
        result["note"] = (
            "None of the user's earlier conversations mention this. Say so plainly and do not guess; "
            "a different word may find it."
        )
    return result


# --- current_time --------------------------------------------------------------------------------


def _time_summary(value: dict[str, Any], arguments: dict[str, Any]) -> str:
    """The time it told, in plain words for the page."""
    return gettext("Checked the time: %(time)s (%(zone)s).") % {"time": value["time"], "zone": value["time_zone"]}


@tool(
    label=gettext_lazy("Tell the time and date"),
    working_text=gettext_lazy("Checking the time…"),
    summarize=_time_summary,
)
def current_time(context: ToolContext) -> dict[str, str]:
    """Get the current date and time in the user's time zone."""
    tz = zone(context.time_zone)
    now = datetime.datetime.now(tz)
    return {
        "time": now.strftime("%H:%M"),
        "date": now.date().isoformat(),
        "weekday": now.strftime("%A"),
        "time_zone": context.time_zone if tz is not datetime.UTC else "UTC",
        "iso": now.isoformat(timespec="seconds"),
    }
