"""The built-in tools: `recall` finds the user's own earlier words with their dates, `current_time` tells the time."""
from __future__ import annotations

import asyncio
import datetime
import json
import re

import pytest
from django.utils import timezone, translation

from conversations.tools import ToolContext
from conversations.tools.builtin import current_time, recall
from conversations.tools.selectors import tools_for_user

from .history import stored

pytestmark = pytest.mark.django_db
# Through the registry the tools run in its worker threads, whose connections see only committed rows.
in_threads = pytest.mark.django_db(transaction=True)

EARLIER = timezone.make_aware(datetime.datetime(2026, 11, 20, 23, 30), datetime.UTC)


@pytest.fixture
def other(django_user_model):
    return django_user_model.objects.create_user(username="grace", password="another horse battery")


@pytest.fixture
def current(user):
    """The conversation that asks: the user's newest one, which mentions the boat too."""
    return stored(user, [("user", "What did I tell you about the boat?")], started_at=timezone.now())


async def registry_run(registry, name: str, arguments: str, tool_context: ToolContext):
    """Run a tool as the relay does: in the registry's worker thread."""
    return await registry.run(name, arguments, tool_context)


def context(user, conversation, time_zone: str = "UTC") -> ToolContext:
    return ToolContext(user_id=user.pk, conversation_id=str(conversation.pk), time_zone=time_zone)


def test_recall_finds_the_users_own_earlier_words_with_the_date(user, current):
    stored(user, [("user", "Remember that my boat is called the Blue Heron and sits in slip 14."),
                  ("assistant", "I will remember the Blue Heron.")], title="Sailing plans", started_at=EARLIER)

    found = recall(query="boat", context=context(user, current))

    assert found["matches"] == [{"date": "2026-11-20", "title": "Sailing plans", "speaker": "user",
                                 "snippet": "Remember that my boat is called the Blue Heron and sits in slip 14."}]
    assert found["query"] == "boat"


def test_recall_gives_the_date_in_the_users_time_zone(user, current):
    stored(user, [("user", "The boat needs new sails.")], started_at=EARLIER)  # 23:30 UTC is the next day in Berlin

    found = recall(query="sails", context=context(user, current, "Europe/Berlin"))

    assert [m["date"] for m in found["matches"]] == ["2026-11-21"]


def test_recall_never_finds_another_users_words(user, other, current):
    stored(other, [("user", "My boat is the Sea Wolf, remember that.")], title="Boat", started_at=EARLIER)

    found = recall(query="boat", context=context(user, current))

    assert found["matches"] == []
    assert "Sea Wolf" not in json.dumps(found)


def test_recall_leaves_out_the_conversation_that_asks(user, current):
    found = recall(query="boat", context=context(user, current))

    assert found["matches"] == []
    assert "None of the user's earlier conversations mention this" in found["note"]
    assert found["today"] == timezone.now().date().isoformat()


@in_threads
def test_recall_with_no_match_says_so_for_the_model_and_the_page(user, current):
    stored(user, [("user", "We talked about gardening.")], started_at=EARLIER)
    registry = tools_for_user(user=user)

    result = asyncio.run(registry_run(registry, "recall", '{"query": "submarine"}', context(user, current)))

    assert result.ok
    assert json.loads(result.output)["matches"] == []
    assert result.summary == "No earlier conversation mentions “submarine”."


def test_recall_falls_back_to_single_words_when_no_conversation_has_them_all(user, current):
    stored(user, [("user", "The quokka at the zoo was adorable.")], started_at=EARLIER)

    found = recall(query="quokka holiday", context=context(user, current))

    assert [m["snippet"] for m in found["matches"]] == ["The quokka at the zoo was adorable."]


def test_recall_returns_at_most_limit_conversations_with_snippets_around_the_word(user, current):
    filler = "and then we talked about many other things " * 10
    for day in range(1, 6):
        stored(user, [("user", f"{filler} the lighthouse on day {day}")],
               started_at=EARLIER - datetime.timedelta(days=day))

    found = recall(query="lighthouse", limit=2, context=context(user, current))

    assert len(found["matches"]) == 2
    for match in found["matches"]:
        assert "lighthouse" in match["snippet"]
        assert len(match["snippet"]) <= 302
        assert match["snippet"].startswith("…")


@in_threads
def test_recall_summary_counts_what_it_found_and_is_translated(user, current):
    stored(user, [("user", "The boat is blue.")], started_at=EARLIER)
    stored(user, [("user", "The boat leaks.")], started_at=EARLIER - datetime.timedelta(days=1))
    registry = tools_for_user(user=user)

    result = asyncio.run(registry_run(registry, "recall", '{"query": "boat"}', context(user, current)))
    assert result.summary == "Found 2 earlier conversations mentioning “boat”."
    with translation.override("de"):
        result = asyncio.run(registry_run(registry, "recall", '{"query": "boat"}', context(user, current)))
        assert result.summary == "2 frühere Gespräche erwähnen „boat“."
        assert registry.working_text("recall") == "Deine früheren Gespräche werden durchsucht…"


@in_threads
def test_recall_refuses_an_empty_query_before_searching(user, current):
    registry = tools_for_user(user=user)

    result = asyncio.run(registry_run(registry, "recall", '{"query": "   "}', context(user, current)))

    assert not result.ok
    assert "query: String should have at least 1 character" in json.loads(result.output)["error"]


def test_current_time_is_in_the_given_time_zone():
    now = current_time(context=ToolContext(user_id=1, conversation_id="c", time_zone="Asia/Tokyo"))

    assert now["time_zone"] == "Asia/Tokyo"
    assert now["iso"].endswith("+09:00")
    moment = datetime.datetime.fromisoformat(now["iso"])
    assert abs((moment - datetime.datetime.now(datetime.UTC)).total_seconds()) < 60
    assert now["time"] == moment.strftime("%H:%M")
    assert now["date"] == moment.date().isoformat()
    assert re.fullmatch(r"[A-Z][a-z]+day", now["weekday"])


def test_current_time_in_an_unknown_zone_is_utc():
    now = current_time(context=ToolContext(user_id=1, conversation_id="c", time_zone="Mars/Olympus_Mons"))

    assert now["time_zone"] == "UTC"
    assert now["iso"].endswith("+00:00")


@in_threads
def test_current_time_summary_and_working_text(user):
    registry = tools_for_user(user=user)
    result = asyncio.run(registry_run(registry, "current_time", "{}",
                                   ToolContext(user_id=1, conversation_id="c", time_zone="Europe/Berlin")))
    assert result.ok
    assert re.fullmatch(r"Checked the time: \d\d:\d\d \(Europe/Berlin\)\.", result.summary)
    assert registry.working_text("current_time") == "Checking the time…"
    with translation.override("es"):
        assert registry.working_text("current_time") == "Consultando la hora…"
