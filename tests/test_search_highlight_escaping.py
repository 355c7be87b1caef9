"""Whatever a title or a line holds, PostgreSQL's highlighted search shows it as text with only <mark> added.

The highlighting is the one place where stored text becomes markup (selectors._marked): hypothesis
stores titles and lines mixing words with tags, entities, quotes, marker look-alikes and any
Unicode, searches a word in them, and checks that taking the <mark> tags out and unescaping gives
back exactly what was stored (or a piece of it, for an excerpt), that nothing else is a tag, and
that only the searched word is marked.
"""
from __future__ import annotations

import html
import re

import pytest
from django.utils.html import escape
from django.db import connection, transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conversations import selectors

from .history import stored
from .hypothesis_budget import examples

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the highlighting is PostgreSQL's ts_headline"),
]

WORD = "quokka"
fragments = st.one_of(
    st.sampled_from([
        WORD, WORD.upper(), "<script>alert(1)</script>", '<img src=x onerror="window.__pwned=1">', "&amp;", "&lt;b&gt;",
        "&", "<", ">", '"', "'", "[[hl:", "]]", "[[/hl:0123456789abcdef]]", "<mark>", "</mark>", "<!--", "-->",
        "\n", "\t", "  ", "…", "quokkas", "a-quokka-b", "<quokka>", f"<b>{WORD}</b>",
    ]),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
)
lines = st.lists(fragments, min_size=1, max_size=30).map(" ".join).filter(lambda t: "\x00" not in t)


def _without_marks(marked: str) -> tuple[str, list[str]]:
    """The text with the <mark> tags taken out (unescaped), and the marked pieces."""
    marked_words = [html.unescape(m) for m in re.findall(r"<mark>(.*?)</mark>", marked)]
    plain = html.unescape(marked.replace("<mark>", "").replace("</mark>", ""))
    return plain, marked_words


def _as_rendered(value: object) -> str:
    """What the template writes: safe strings (highlighted) as they are, plain ones escaped."""
    return str(value) if hasattr(value, "__html__") else escape(str(value))


def _only_marks_are_tags(marked: str) -> None:
    assert "<" not in marked.replace("<mark>", "").replace("</mark>", ""), marked
    assert ">" not in marked.replace("<mark>", "").replace("</mark>", ""), marked


@given(title=lines, line=lines)
@settings(max_examples=examples(150), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_highlighted_titles_and_lines_are_the_stored_text_with_only_the_searched_word_marked(title, line, user):
    title = title[:200]
    with transaction.atomic():
        conversation = stored(user, [("user", "hello"), ("assistant", line)], title=title)
        [row] = selectors.history_rows(conversations=[conversation], q=WORD)
        rendered_title, rendered_excerpt = _as_rendered(row.title), _as_rendered(row.excerpt)
        for marked in (rendered_title, rendered_excerpt):
            _only_marks_are_tags(marked)
            assert all(m.lower() == WORD for m in _without_marks(marked)[1]), marked
        event("title marked" if "<mark>" in rendered_title else "title plain")
        event("line excerpted" if row.excerpt else "no line matched")
        plain_title, _ = _without_marks(rendered_title)
        assert plain_title == title
        if row.excerpt:
            plain_line, marks = _without_marks(rendered_excerpt)
            assert marks and plain_line.strip("…") in line
        transaction.set_rollback(True)
