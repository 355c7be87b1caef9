"""An export document as Markdown for reading: title, date, the dialogue with times, marks and token totals."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.utils.translation import gettext as _

from .format import TOKEN_FIELDS

# Backslash-escape what Markdown would read as markup, so words said aloud never become links or raw HTML.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&-])")


def escape(text: str) -> str:
    """Text with every Markdown special character escaped."""
    return _SPECIAL.sub(r"\\\1", text)


def _moment(value: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def render(document: dict[str, Any]) -> str:
    """The conversation of an export document as a Markdown text."""
    conversation = document["conversation"]
    started = _moment(conversation["started_at"])
    title = conversation["title"] or _("Conversation of %(date)s") % {
        "date": f"{started:%Y-%m-%d %H:%M}" if started else "?"}
    lines = [f"# {escape(title)}", ""]
    if started:
        lines.append(_("Started %(when)s") % {"when": f"{started:%Y-%m-%d %H:%M:%S %Z}".strip()} + "  ")
    ended = _moment(conversation["ended_at"])
    if ended:
        lines.append(_("Ended %(when)s") % {"when": f"{ended:%Y-%m-%d %H:%M:%S %Z}".strip()} + "  ")
    if conversation["status"] == "failed":
        lines.append(_("The conversation failed: %(error)s") % {"error": escape(conversation["error"] or "?")} + "  ")
    lines.append("")
    speakers = {"user": _("You"), "assistant": _("Assistant")}
    for turn in document["turns"]:
        when = _moment(turn.get("started_at"))
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
            head += " · *" + escape("; ".join(marks)) + "*"
        lines.append(head + "  ")
        text = turn["text"] or _("(nothing was transcribed)")
        lines.extend(escape(line) + "  " for line in text.splitlines() or [""])
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
