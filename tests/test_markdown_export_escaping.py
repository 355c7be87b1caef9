"""Whatever was said, typed or imported, the Markdown export renders it as plain paragraphs of the same text.

A CommonMark renderer (markdown-it-py, the reference algorithm's Python port) reads the export of a
conversation whose title, turns and error hold any text: markup, Markdown syntax at the start of a
line (lists, headings, code, quotes, tables), entities, raw HTML. The rendered page must hold only the
export's own structure (one heading for the title, paragraphs, the speakers in bold, line breaks, the
token totals' heading), no link, image, list, code or raw HTML, and every word that was said.
"""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from conversations.transfer import markdown

from .hostile import HOSTILE
from .hypothesis_budget import examples
from .transfer import document

# CommonMark, with raw HTML on (as most renderers have it), plus GitHub's tables and strikethrough.
RENDERER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
ALLOWED = {"h1", "h2", "p", "strong", "em", "br"}

line_starts = st.sampled_from([
    "", "# ", "## ", "> ", "- ", "* ", "+ ", "1. ", "12) ", "    ", "\t", "```", "~~~", "===", "---", "***", "| a | b |",
    "|---|---|", "<div>", "<!-- ", "[x]: http://example.com", "![img](x.png)", "    - ", "1.", "=", "  1. ", "\\",
])
pieces = st.one_of(
    st.sampled_from([HOSTILE, "[link](javascript:alert(1))", "<http://example.com>", "**bold**", "_em_", "`code`",
                     "~~gone~~", "&amp;", "&lt;b&gt;", "&#60;script&#62;", "\\*", "a  ", "x\\", "<b>bold</b>"]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=15),
)
lines = st.builds(lambda start, rest: start + "".join(rest), line_starts, st.lists(pieces, max_size=4))
texts = st.lists(lines, min_size=1, max_size=6).map("\n".join)


class _Tags(HTMLParser):
    """The tag names of an HTML text and its text content."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _words(text: str) -> str:
    """The text with every run of whitespace made one space (rendering does that)."""
    return " ".join(text.split())


@given(title=lines, user_text=texts, reply=texts, error=lines)
@settings(max_examples=examples(300), deadline=None)
def test_the_markdown_export_renders_what_was_said_as_plain_text(title, user_text, reply, error):
    doc = document()
    doc["conversation"].update(title=title, status="failed", error=error)
    doc["turns"][0]["text"], doc["turns"][1]["text"] = user_text, reply
    rendered = RENDERER.render(markdown.render(doc))
    parsed = _Tags()
    parsed.feed(rendered)
    parsed.close()
    assert set(parsed.tags) <= ALLOWED, (set(parsed.tags) - ALLOWED, rendered)
    assert parsed.tags.count("h1") == 1 and parsed.tags.count("h2") == 1, rendered
    shown = _words("".join(parsed.text))
    for said in (title, error, *user_text.splitlines(), *reply.splitlines()):
        said = _words(said.replace("\x00", "\ufffd"))
        assert said in shown, (said, rendered)
    assert "<script" not in rendered and "<img" not in rendered


def test_markup_in_an_export_is_escaped_not_fenced():
    doc = document()
    doc["turns"][0]["text"] = f"{HOSTILE}\n1. not a list\n    not code\n===\n[x](javascript:alert(1))"
    text = markdown.render(doc)
    assert r'\<img src=x onerror="window.\_\_pwned=1"\>\<script\>window.\_\_pwned=2\</script\>' in text
    assert r"1\. not a list" in text and r"\===" in text and "\n    not code" not in text
    rendered = RENDERER.render(text)
    assert "<img" not in rendered and "<script" not in rendered and "<a " not in rendered
    assert "&lt;img src=x" in rendered and "<ol" not in rendered and "<pre" not in rendered
    assert re.search(r"<h1>", rendered) and rendered.count("<h1>") == 1
    assert html.unescape(HOSTILE) in html.unescape(re.sub(r"<[^>]+>", "", rendered))
