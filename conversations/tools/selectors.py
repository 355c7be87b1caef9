"""Reads for function calling: which tools a user's conversation may call, and what `recall` finds."""
from __future__ import annotations

import dataclasses
import datetime
import functools
import re
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.core.exceptions import ImproperlyConfigured
from django.db.models import F, Q
from django.utils.module_loading import import_string
from django.utils.translation import gettext

from ..models import Turn, VoicePreferences
from ..selectors import SEARCH_CONFIG, _postgres, conversation_list
from .registry import Tool, ToolRegistry, tool

# The built-in tools, by the same kind of dotted path a deployer gives in REALTIME_TOOLS.
BUILTIN_TOOLS = ("conversations.tools.builtin.recall", "conversations.tools.builtin.current_time")


def tool_at(path: str) -> Tool:
    """The Tool a dotted path names: a Tool (a `@tool` function) as it is, a plain typed function made into one."""
    try:
        found = import_string(path)
    except Exception as exc:  # a deployer's module may fail in any way; say which path and why
        raise ImproperlyConfigured(f"REALTIME_TOOLS: cannot import {path!r} ({type(exc).__name__}: {exc}).") from None
    if isinstance(found, Tool):
        return found
    if not callable(found):
        raise ImproperlyConfigured(f"REALTIME_TOOLS: {path!r} is neither a tool nor a function.")
    try:
        return tool(found)
    except TypeError as exc:
        raise ImproperlyConfigured(f"REALTIME_TOOLS: {path!r} cannot be a tool: {exc}") from None


@functools.cache
def _site_tools(paths: tuple[str, ...], disabled: tuple[str, ...]) -> tuple[Tool, ...]:
    """The tools of these settings (cached: loaded once per process, not per conversation)."""
    tools: dict[str, Tool] = {}
    for path in (*BUILTIN_TOOLS, *paths):
        loaded = tool_at(path)
        if loaded.name in tools:
            raise ImproperlyConfigured(f"REALTIME_TOOLS: two tools are named {loaded.name!r} ({path!r} is the second).")
        tools[loaded.name] = loaded
    unknown = sorted(set(disabled) - set(tools))
    if unknown:
        raise ImproperlyConfigured(
            f"REALTIME_TOOLS_DISABLED names no tool called {', '.join(map(repr, unknown))}; "
            f"the tools are {', '.join(tools)}."
        )
    return tuple(t for t in tools.values() if t.name not in disabled)


def site_tools() -> tuple[Tool, ...]:
    """The built-ins and REALTIME_TOOLS, less REALTIME_TOOLS_DISABLED; ImproperlyConfigured if they are wrong."""
    return _site_tools(tuple(settings.REALTIME_TOOLS), tuple(settings.REALTIME_TOOLS_DISABLED))


def tool_choices() -> list[tuple[str, str]]:
    """(name, label) of each of the site's tools, for the settings form."""
    return [(t.name, str(t.label or t.name)) for t in site_tools()]


def tools_for_user(*, user: Any) -> ToolRegistry:
    """The tools the user's conversations may call: the site's, less those the user turned off."""
    saved = VoicePreferences.objects.filter(user=user).values_list("tools_disabled", flat=True).first() or []
    return ToolRegistry(
        [t for t in site_tools() if t.name not in set(saved)],
        timeout=settings.TOOL_TIMEOUT_SECONDS,
        max_output_chars=settings.TOOL_OUTPUT_MAX_CHARS,
        translate=gettext,
    )


# --- recall --------------------------------------------------------------------------------------

# The model reads these, not a page: longer than the history's excerpts, so an answer can quote them.
SNIPPET_CHARS = 300
# When no conversation has every word, each word is looked for alone, longest first: at most this many.
FALLBACK_WORDS = 4
_WORD = re.compile(r"\w+")


@dataclasses.dataclass(frozen=True)
class RecallMatch:
    """One earlier conversation that matches, with its best line."""

    conversation_id: Any
    started_at: datetime.datetime
    title: str
    speaker: str  # "user" or "assistant"; "" when only the title matched
    snippet: str


def recall_matches(*, user_id: Any, query: str, exclude_conversation_id: str, limit: int) -> list[RecallMatch]:
    """The user's other conversations matching the words (the history search), best first, with a snippet each.

    Every word must match, as on the history page; when no conversation has them all, the longer words
    are tried one at a time, so "the boat we talked about" still finds the boat.
    """
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None or not query.strip():
        return []
    found = _matching(user=user, q=query, exclude=exclude_conversation_id, limit=limit)
    if not found:
        words = sorted({w for w in _WORD.findall(query) if len(w) >= 3}, key=lambda w: (-len(w), w))
        for word in words[:FALLBACK_WORDS]:
            seen = {c.pk for c in found}
            found += [c for c in _matching(user=user, q=word, exclude=exclude_conversation_id, limit=limit)
                      if c.pk not in seen]
            if len(found) >= limit:
                break
    found = found[:limit]
    lines = _best_lines([c.pk for c in found], query)
    matches = []
    for conversation in found:
        speaker, text = lines.get(conversation.pk, ("", ""))
        matches.append(RecallMatch(conversation.pk, conversation.started_at, conversation.title, speaker,
                                   _snippet(text, query)))
    return matches


def _matching(*, user: Any, q: str, exclude: str, limit: int) -> list[Any]:
    """The user's conversations the history search finds for `q`, less the one asking."""
    conversations = conversation_list(user=user, q=q)
    try:
        conversations = conversations.exclude(pk=uuid.UUID(str(exclude)))
    except ValueError:
        pass  # not a conversation id: nothing to leave out
    return list(conversations[:limit])


def _best_lines(ids: list[Any], q: str) -> dict[Any, tuple[str, str]]:
    """The best matching line of each conversation, as (role, text): ranked on PostgreSQL, the first on others."""
    if not ids:
        return {}
    if not _postgres():
        # As the history's `icontains` search: the first line with every word, else with the longest word alone.
        lines: dict[Any, tuple[str, str]] = {}
        words = q.split()
        for group in (words, *([w] for w in sorted(set(_WORD.findall(q)), key=len, reverse=True))):
            missing = [pk for pk in ids if pk not in lines]
            if not missing:
                break
            rows = (Turn.objects.filter(*[Q(text__icontains=w) for w in group], conversation_id__in=missing)
                    .order_by("conversation_id", "position").values_list("conversation_id", "role", "text"))
            for pk, role, text in rows:
                lines.setdefault(pk, (role, text))
        return lines
    words = " or ".join(_WORD.findall(q)) or q
    best: dict[Any, tuple[str, str]] = {}
    for search in (q, words):
        query = SearchQuery(search, config=SEARCH_CONFIG, search_type="websearch")
        rows = (
            Turn.objects.filter(conversation_id__in=[pk for pk in ids if pk not in best])
            .annotate(document=SearchVector("text", config=SEARCH_CONFIG))
            .filter(document=query)
            .annotate(rank=SearchRank(F("document"), query))
            # PostgreSQL's DISTINCT ON: the best-ranked line of each conversation, the earliest on a tie.
            .order_by("conversation_id", "-rank", "position")
            .distinct("conversation_id")
            .values_list("conversation_id", "role", "text")
        )
        best.update({pk: (role, text) for pk, role, text in rows})
    return best


def _snippet(text: str, query: str) -> str:
    """About SNIPPET_CHARS of the line around the first word of the query it contains."""
    text = " ".join(text.split())
    if len(text) <= SNIPPET_CHARS:
        return text
    lowered = text.lower()
    places = [lowered.find(w.lower()) for w in _WORD.findall(query)]
    at = min((p for p in places if p >= 0), default=0)
    begin = max(0, at - SNIPPET_CHARS // 3)
    end = begin + SNIPPET_CHARS
    return ("…" if begin else "") + text[begin:end].strip() + ("…" if end < len(text) else "")
