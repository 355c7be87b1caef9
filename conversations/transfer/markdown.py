"""An export document as Markdown for reading: title, date, the dialogue with times, marks and token totals."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.utils.translation import gettext as _

from .format import TOKEN_FIELDS

# Backslash-escape what Markdown would read as markup, so words said aloud never become links or raw HTML.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&-])")
# What starts a block only at the start of a line: an ordered list item ("1." or "1)"), a setext heading's "=".
_LINE_START = re.compile(r"^([0-9]{1,9})([.)])|^(=)")


def escape(text: str) -> str:
    """Text with every Markdown special character escaped."""
    return _SPECIAL.sub(r"\\\1", text)


def escape_line(line: str) -> str:
    """One line of what was said as one line of a paragraph: no list, heading or code block can start there.

    Leading blanks go (four of them would start a code block; a paragraph drops them anyway), every special
    character is escaped, and so are a list number's dot and a heading underline's "=" at the start.
    """
    escaped = escape(line.lstrip(" \t"))
    return _LINE_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[1] else "\\=", escaped)


def _one_line(text: str) -> str:
    """A title or a remark on one line: line breaks would end a heading or a paragraph."""
    return escape_line(" ".join(text.split()))


def _moment(value: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def _tool_mark(status: str) -> str:
    """How a tool call ended, in plain words ("" when it ran)."""
    return {
        "failed": _("it did not work; the assistant was told why"),
        "cancelled": _("cancelled: you went on before it finished"),
        "interrupted": _("interrupted: the conversation stopped while it ran"),
    }.get(status, "")


def _tool_lines(turn: dict[str, Any], when: dt.datetime | None) -> list[str]:
    """A tool the assistant used, in plain words: which, when, how it went, and what it found."""
    call = turn.get("tool") or {}
    head = "*" + _one_line(_("The assistant used a tool: %(name)s") % {"name": call.get("name") or "?"}) + "*"
    if when:
        head += f" · {when:%H:%M:%S}"
    mark = _tool_mark(turn.get("status") or "")
    if mark:
        head += " · *" + _one_line(mark) + "*"
    summary = call.get("summary") or _("(no result was stored)")
    return [head + "  ", *(escape_line(line) + "  " for line in summary.splitlines() or [""]), ""]


def render(document: dict[str, Any]) -> str:
    """The conversation of an export document as a Markdown text."""
    conversation = document["conversation"]
    started = _moment(conversation["started_at"])
    title = conversation["title"] or _("Conversation of %(date)s") % {
        "date": f"{started:%Y-%m-%d %H:%M}" if started else "?"}
    lines = [f"# {_one_line(title)}", ""]
    if started:
        lines.append(_("Started %(when)s") % {"when": f"{started:%Y-%m-%d %H:%M:%S %Z}".strip()} + "  ")
    ended = _moment(conversation["ended_at"])
    if ended:
        lines.append(_("Ended %(when)s") % {"when": f"{ended:%Y-%m-%d %H:%M:%S %Z}".strip()} + "  ")
    if conversation["status"] == "failed":
        lines.append(_("The conversation failed: %(error)s") % {"error": _one_line(conversation["error"] or "?")} + "  ")
    lines.append("")
    speakers = {"user": _("You"), "assistant": _("Assistant")}
    for turn in document["turns"]:
        when = _moment(turn.get("started_at"))
        if turn["role"] == "tool":
            lines.extend(_tool_lines(turn, when))
            continue
        head = f"**{speakers.get(turn['role'], turn['role'])}**"
        if when:
            head += f" · {when:%H:%M:%S}"
        marks = []
        if turn.get("interrupted"):
            marks.append(_("interrupted: you heard %(seconds)s s") % {"seconds": f"{turn['audio_ms'] / 1000:.1f}"})
        if turn.get("status"):
            reason = turn.get("status_reason") or ""
            marks.append(f"{turn['status']}: {reason}" if reason else turn["status"])
        if marks:
            head += " · *" + _one_line("; ".join(marks)) + "*"
        lines.append(head + "  ")
        text = turn["text"] or _("(nothing was transcribed)")
        lines.extend(escape_line(line) + "  " for line in text.splitlines() or [""])
        lines.append("")
    totals = {name: sum(row.get(name, 0) for row in document["usage"]) for name in TOKEN_FIELDS}
    lines.append(f"## {_('Tokens')}")
    lines.append("")
    lines.append(_("%(total)s tokens in all: %(input)s in, %(output)s out, over %(responses)s responses.") % {
        "total": totals["total_tokens"], "input": totals["input_tokens"], "output": totals["output_tokens"],
        "responses": len(document["usage"])})
    if any(row["estimated"] for row in document["usage"]):
        lines.append("")
        lines.append(_("Some counts are estimates: the service never reported them."))
    return "\n".join(lines) + "\n"
