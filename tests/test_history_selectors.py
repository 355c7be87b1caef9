"""What the history lists and shows: selectors and services, on SQLite and on PostgreSQL."""
from __future__ import annotations

import datetime

import pytest
from django.db import connection

from conversations import selectors, services
from conversations.models import Conversation, Turn, Usage

from .history import START, stored, usage

pytestmark = pytest.mark.django_db

on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL full-text search: run with DATABASE_URL=postgres://…"
)
on_sqlite = pytest.mark.skipif(connection.vendor == "postgresql", reason="the icontains fallback is for other databases")


@pytest.fixture
def other(django_user_model):
    """A second user, whose conversations nobody else sees."""
    return django_user_model.objects.create_user(username="eve", password="another long password")


def titles(conversations) -> list[str]:
    return [c.title for c in conversations]


def test_the_list_is_the_users_own_conversations_newest_first_with_counts_and_durations(user, other):
    stored(user, [("user", "old")], title="old", started_at=START, minutes=3)
    stored(user, [("user", "new"), ("assistant", "hi"), ("user", "bye")], title="new",
           started_at=START + datetime.timedelta(days=1), minutes=None, status=Conversation.Status.ACTIVE)
    stored(other, [("user", "not yours")], title="eve's")
    listed = list(selectors.conversation_list(user=user))
    assert titles(listed) == ["new", "old"]
    assert [c.turn_count for c in listed] == [3, 1]
    assert listed[0].duration is None  # in progress
    assert listed[1].duration == datetime.timedelta(minutes=3)


def test_a_tool_the_assistant_used_is_not_counted_as_a_turn(user):
    stored(user, [("user", "What time is it?"), {"role": "tool", "tool_name": "current_time", "tool_call_id": "call_1"},
                  ("assistant", "It is noon.")])
    assert [c.turn_count for c in selectors.conversation_list(user=user)] == [2]


def test_a_conversation_that_failed_before_anything_was_said_is_not_listed(user):
    stored(user, [], title="", status=Conversation.Status.FAILED)
    stored(user, [("user", "something")], title="kept", status=Conversation.Status.FAILED)
    assert titles(selectors.conversation_list(user=user)) == ["kept"]
    assert selectors.conversation_exists_for(user=user)


def test_the_date_range_takes_whole_days_inclusive(user):
    for day in (10, 11, 12, 13):
        stored(user, [("user", f"day {day}")], title=f"day {day}",
               started_at=START.replace(day=day, hour=23, minute=50))
    dated = selectors.conversation_list(
        user=user, started_from=datetime.date(2026, 3, 11), started_to=datetime.date(2026, 3, 12)
    )
    assert titles(dated) == ["day 12", "day 11"]
    assert titles(selectors.conversation_list(user=user, started_from=datetime.date(2026, 3, 13))) == ["day 13"]


def test_search_finds_a_word_said_in_a_transcript_or_in_a_title(user, other):
    stored(user, [("user", "Tell me about the axolotl"), ("assistant", "It is a salamander.")], title="Pets")
    stored(user, [("user", "What is the weather")], title="Axolotl facts")
    stored(user, [("user", "Nothing to see")], title="Other")
    stored(other, [("user", "my axolotl")], title="Eve's axolotl")
    assert sorted(titles(selectors.conversation_list(user=user, q="axolotl"))) == ["Axolotl facts", "Pets"]
    assert titles(selectors.conversation_list(user=user, q="salamander")) == ["Pets"]
    assert sorted(titles(selectors.conversation_list(user=user, q="  "))) == ["Axolotl facts", "Other", "Pets"]


def test_every_word_of_a_search_must_appear_in_one_line_or_the_title(user):
    stored(user, [("user", "red apples"), ("assistant", "green pears")], title="fruit")
    stored(user, [("user", "red pears please")], title="both")
    assert titles(selectors.conversation_list(user=user, q="red pears")) == ["both"]
    assert titles(selectors.conversation_list(user=user, q="red bananas")) == []


def test_search_ignores_case(user):
    stored(user, [("user", "The Zeppelin took off")], title="flight")
    assert titles(selectors.conversation_list(user=user, q="zePPelin")) == ["flight"]


@on_sqlite
def test_without_postgresql_search_is_icontains_with_a_plain_escaped_excerpt(user):
    long_line = "word " * 60 + "the <script>alert(1)</script> quokka is here " + "filler " * 60
    conversation = stored(user, [("user", "hello"), ("assistant", long_line)], title="Zoo")
    assert titles(selectors.conversation_list(user=user, q="quok")) == ["Zoo"]  # substrings match too
    [row] = selectors.history_rows(conversations=[conversation], q="quokka")
    assert row.title == "Zoo" and row.excerpt_role == "assistant"
    assert "quokka" in row.excerpt and len(row.excerpt) <= selectors.EXCERPT_CHARS + 2
    assert row.excerpt.startswith("…") and row.excerpt.endswith("…")
    assert not hasattr(row.excerpt, "__html__")  # plain text: the template escapes it


@on_postgres
def test_postgresql_ranks_more_matching_lines_and_title_matches_first(user):
    stored(user, [("user", "one kayak"), ("assistant", "nothing")], title="single", started_at=START)
    stored(user, [("user", "kayak here"), ("assistant", "a kayak there"), ("user", "kayak again")],
           title="many", started_at=START - datetime.timedelta(days=2))
    stored(user, [("user", "a canoe trip"), ("assistant", "fine")], title="Kayak and canoe trip",
           started_at=START - datetime.timedelta(days=1))
    ranked = list(selectors.conversation_list(user=user, q="kayak"))
    # Three matching lines, then a title match (worth two lines), then one line; not newest first.
    assert titles(ranked) == ["many", "Kayak and canoe trip", "single"]
    assert ranked[0].rank > ranked[1].rank > ranked[2].rank


@on_postgres
def test_postgresql_understands_quotes_and_exclusions_and_never_fails_on_odd_input(user):
    stored(user, [("user", "green tea is nice")], title="first")
    stored(user, [("user", "tea that is green")], title="second")
    assert titles(selectors.conversation_list(user=user, q='"green tea"')) == ["first"]
    assert titles(selectors.conversation_list(user=user, q="tea -nice")) == ["second"]
    for odd in ("&|!(", "'", ":*", "\\", "<script>"):
        assert list(selectors.conversation_list(user=user, q=odd)) == []


@on_postgres
def test_postgresql_marks_the_matching_words_and_escapes_everything_else(user):
    conversation = stored(
        user,
        [("user", "hello"), ("assistant", "Try <script>alert('x')</script> with the platypus, [[hl:x]] even")],
        title="The <b>platypus</b> chat",
    )
    [row] = selectors.history_rows(conversations=[conversation], q="platypus")
    assert str(row.title) == "The &lt;b&gt;<mark>platypus</mark>&lt;/b&gt; chat"
    assert row.excerpt_role == "assistant"
    assert "<mark>platypus</mark>" in row.excerpt
    assert "<script>" not in row.excerpt and "&lt;script&gt;" in row.excerpt
    assert "[[hl:x]]" in row.excerpt  # text that looks like a marker stays text
    assert row.excerpt.count("<mark>") == 1 and row.excerpt.count("</mark>") == 1
    assert str(row.excerpt) == (
        "Try &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; with the <mark>platypus</mark>, [[hl:x]] even"
    )


@on_postgres
def test_postgresql_excerpts_a_long_line_around_its_first_match(user):
    line = "start " + "a " * 100 + "the <b>wombat</b> lives here " + "b " * 100 + "end"
    conversation = stored(user, [("user", line)], title="zoo")
    [row] = selectors.history_rows(conversations=[conversation], q="wombat")
    assert row.title == "zoo"
    assert row.excerpt.startswith("…") and row.excerpt.endswith("…")
    assert "the &lt;b&gt;<mark>wombat</mark>&lt;/b&gt; lives here" in row.excerpt
    assert "start" not in row.excerpt and "end" not in row.excerpt


@on_postgres
def test_postgresql_search_uses_the_gin_index_on_turn_text(user):
    from django.contrib.postgres.search import SearchQuery, SearchVector

    query = SearchQuery("axolotl", config="simple", search_type="websearch")
    matching = Turn.objects.annotate(document=SearchVector("text", config="simple")).filter(document=query)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = matching.explain()
    assert "turn_text_search" in plan


def test_rows_without_a_search_are_the_conversations_as_they_are(user):
    conversation = stored(user, [("user", "hi")], title="<i>t</i>")
    [row] = selectors.history_rows(conversations=[conversation], q="")
    assert row.title == "<i>t</i>" and not hasattr(row.title, "__html__") and row.excerpt == ""


def test_the_transcript_has_times_tokens_per_reply_and_totals(user):
    conversation = stored(user, [("user", "hi"), ("assistant", "hello"), ("user", "bye"), ("assistant", "ciao")])
    usage(conversation, "resp_1", 90)
    usage(conversation, "resp_3", 30, estimated=True)
    usage(conversation, "resp_gone", 12)  # a response with no stored turn still counts in the total
    transcript = selectors.transcript_of(conversation=conversation)
    assert [line.offset for line in transcript.lines] == [datetime.timedelta(seconds=s) for s in (0, 10, 20, 30)]
    assert [line.tokens for line in transcript.lines] == [None, 90, None, 30]
    assert [line.tokens_estimated for line in transcript.lines] == [False, False, False, True]
    assert (transcript.total_tokens, transcript.input_tokens, transcript.output_tokens) == (132, 44, 88)
    assert transcript.estimated
    assert transcript.duration == datetime.timedelta(minutes=5)


def test_an_interrupted_reply_is_split_at_the_share_of_its_audio_that_was_played(user):
    conversation = stored(user, [
        ("user", "tell me"),
        {"role": "assistant", "text": "one two three four five six seven eight", "interrupted": True,
         "audio_ms": 1000, "generated_ms": 4000},
        {"role": "assistant", "text": "stored before the generated length was", "interrupted": True, "audio_ms": 900},
    ])
    lines = selectors.transcript_of(conversation=conversation).lines
    assert (lines[1].heard, lines[1].unheard, lines[1].heard_share) == ("one two", "three four five six seven eight", 0.25)
    assert lines[2].heard_share is None and lines[2].heard == ""


@pytest.mark.parametrize("text,heard_ms,generated_ms,expected", [
    ("a b c d", 0, 1000, ("", "a b c d", 0.0)),
    ("a b c d", 1000, 1000, ("a b c d", "", 1.0)),
    ("a b c d", 2000, 1000, ("a b c d", "", 1.0)),  # never more than all of it
    ("a  b\nc d", 500, 1000, ("a  b", "c d", 0.5)),  # the text's own spacing is kept
    ("a b c", 100, 0, None),  # the generated length is unknown
    ("   ", 100, 1000, None),
])
def test_heard_split(text, heard_ms, generated_ms, expected):
    assert selectors.heard_split(text, heard_ms=heard_ms, generated_ms=generated_ms) == expected


def test_rename_keeps_the_title_when_the_user_says_more(user):
    conversation = stored(user, [("user", "first words")], title="first words")
    services.conversation_rename(conversation=conversation, title="  My   trip\nplans ")
    services.turn_add(conversation_id=conversation.pk, item_id="new", role="user", position=9, text="later words")
    conversation.refresh_from_db()
    assert conversation.title == "My trip plans"


def test_the_title_comes_from_the_first_thing_the_user_said(user):
    conversation = stored(user, [("assistant", "Hi, how can I help?")])
    services.turn_add(conversation_id=conversation.pk, item_id="u", role="user", position=1, text="Plan a  trip")
    services.turn_add(conversation_id=conversation.pk, item_id="u2", role="user", position=2, text="Second thing")
    conversation.refresh_from_db()
    assert conversation.title == "Plan a trip"


def test_delete_removes_the_conversation_its_turns_and_its_usage(user):
    conversation = stored(user, [("user", "hi"), ("assistant", "hello")])
    usage(conversation, "resp_1", 10)
    kept = stored(user, [("user", "keep me")])
    services.conversation_delete(conversation=conversation)
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Turn.objects.filter(conversation_id=conversation.pk).exists()
    assert not Usage.objects.filter(conversation_id=conversation.pk).exists()
    assert Turn.objects.filter(conversation=kept).count() == 1


def test_a_cut_reply_stores_its_heard_and_sent_lengths_through_the_journal(user):
    from conversations.relay.effects import TurnAudio

    conversation = stored(user, [("assistant", "a long answer")])
    services.journal_apply(conversation_id=conversation.pk, ops=[
        TurnAudio("item_0", 2000),
        TurnAudio("item_0", 600, interrupted=True, generated_ms=2400),
    ])
    turn = Turn.objects.get(conversation=conversation)
    assert (turn.audio_ms, turn.generated_ms, turn.interrupted) == (600, 2400, True)


@on_postgres
def test_an_excerpt_never_cuts_a_marked_word_in_two(user):
    line = "quokka " * 11 + "<script>alert(1)</script> " * 3 + "quokka"
    conversation = stored(user, [("user", line)], title="zoo")
    [row] = selectors.history_rows(conversations=[conversation], q="quokka")
    assert row.excerpt.endswith("&lt;/script&gt; …") and "<mark>quokk</mark>" not in row.excerpt
    assert row.excerpt.count("<mark>quokka</mark>") == 11
