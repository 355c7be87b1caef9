"""The history pages: list, search, dates, pages, one conversation, rename, delete, escaping."""
from __future__ import annotations

import datetime

import pytest
from django.db import connection

from conversations.models import Conversation

from .history import START, stored, usage

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def test_history_requires_login(client):
    response = client.get("/history/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


def test_the_header_links_to_history(signed_in):
    body = signed_in.get("/").content.decode()
    assert '<a href="/history/">History</a>' in body
    assert '<a href="/history/" aria-current="page">History</a>' in signed_in.get("/history/").content.decode()


def test_with_no_conversations_the_list_says_how_to_start_one(signed_in):
    body = signed_in.get("/history/").content.decode()
    assert "No conversations yet — press Start on the" in body and 'href="/"' in body


def test_the_list_shows_title_date_duration_and_turns_newest_first(signed_in, user):
    stored(user, [("user", "Plan a trip"), ("assistant", "Where to?")], title="Plan a trip", minutes=12.5)
    stored(user, [("user", "Later one")], title="Later one", started_at=START + datetime.timedelta(hours=2),
           minutes=None, status=Conversation.Status.ACTIVE)
    stored(user, [("assistant", "Hello")], title="")
    response = signed_in.get("/history/")
    body = response.content.decode()
    assert response.status_code == 200
    assert body.index("Later one") < body.index("Plan a trip")
    assert "12:30" in body and "2 turns" in body and "1 turn" in body and "in progress" in body
    assert "March 14, 2026" in body and "Untitled conversation" in body
    assert 'datetime="2026-03-14T09:30:00+00:00"' in body


def test_a_conversation_that_failed_before_anything_was_said_is_not_listed(signed_in, user):
    failed = stored(user, [], status=Conversation.Status.FAILED)
    body = signed_in.get("/history/").content.decode()
    assert str(failed.pk) not in body and "No conversations yet" in body


def test_the_list_has_pages_of_twenty(signed_in, user):
    for n in range(45):
        stored(user, [("user", f"talk {n}")], title=f"talk number {n:02d}",
               started_at=START + datetime.timedelta(minutes=n))
    first = signed_in.get("/history/")
    assert len(first.context["rows"]) == 20 and first.context["rows"][0].conversation.title == "talk number 44"
    assert "Page 1 of 3" in first.content.decode() and 'href="?page=2"' in first.content.decode()
    last = signed_in.get("/history/", {"page": 3})
    assert [r.conversation.title for r in last.context["rows"]] == [f"talk number {n:02d}" for n in range(4, -1, -1)]
    assert signed_in.get("/history/", {"page": "nonsense"}).status_code == 200  # the first page
    assert signed_in.get("/history/", {"page": 99}).context["page"].number == 3


def test_pages_keep_the_search(signed_in, user):
    for n in range(25):
        stored(user, [("user", f"llama number {n}")], title=f"t{n}", started_at=START + datetime.timedelta(minutes=n))
    body = signed_in.get("/history/", {"q": "llama"}).content.decode()
    assert 'href="?q=llama&amp;page=2"' in body


def test_search_finds_a_conversation_by_a_word_said_in_it(signed_in, user):
    stored(user, [("user", "I saw a narwhal today"), ("assistant", "Lucky you")], title="Sea")
    stored(user, [("user", "Nothing special")], title="Plain")
    response = signed_in.get("/history/", {"q": "narwhal"})
    assert [r.conversation.title for r in response.context["rows"]] == ["Sea"]
    body = response.content.decode()
    assert "Plain" not in body
    if connection.vendor == "postgresql":
        assert "I saw a <mark>narwhal</mark> today" in body
    else:
        assert "I saw a narwhal today" in body


def test_a_search_with_no_match_says_what_to_try(signed_in, user):
    stored(user, [("user", "hello")], title="hello")
    body = signed_in.get("/history/", {"q": "<zebra>"}).content.decode()
    assert "Nothing matches “&lt;zebra&gt;”; try fewer words or clear the dates." in body
    assert "<zebra>" not in body


def test_dates_narrow_the_list(signed_in, user):
    stored(user, [("user", "march")], title="in march", started_at=START)
    stored(user, [("user", "april")], title="in april", started_at=START + datetime.timedelta(days=30))
    response = signed_in.get("/history/", {"from": "2026-04-01", "to": "2026-04-30"})
    assert [r.conversation.title for r in response.context["rows"]] == ["in april"]
    assert 'value="2026-04-01"' in response.content.decode()
    empty = signed_in.get("/history/", {"to": "2026-01-01"}).content.decode()
    assert "No conversations in these dates" in empty


@pytest.mark.parametrize("params,error", [
    ({"from": "2026-02-30"}, "Enter a date as YYYY-MM-DD."),
    ({"to": "yesterday"}, "Enter a date as YYYY-MM-DD."),
    ({"from": "2026-05-01", "to": "2026-04-01"}, "The start date is after the end date."),
])
def test_invalid_dates_are_a_form_error_not_a_crash(signed_in, user, params, error):
    stored(user, [("user", "hello")], title="hello")
    response = signed_in.get("/history/", params)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert "rows" not in response.context


def test_the_conversation_page_shows_the_dialogue_with_times_tokens_and_actions(signed_in, user):
    conversation = stored(user, [
        ("user", "What is a quokka?"),
        {"role": "assistant", "text": "A small marsupial from Western Australia", "interrupted": True,
         "audio_ms": 1500, "generated_ms": 3000},
        ("user", "And a numbat?"),
        {"role": "assistant", "text": "An anteater", "status": "incomplete", "status_reason": "max_output_tokens"},
        {"role": "assistant", "text": "", "status": "failed", "status_reason": "server_error"},
    ], title="Quokkas")
    usage(conversation, "resp_1", 120)
    usage(conversation, "resp_3", 30, estimated=True)
    response = signed_in.get(f"/history/{conversation.pk}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Quokkas</h1>" in body
    assert body.index("What is a quokka?") < body.index("And a numbat?")
    assert '<time class="offset">0:10</time>' in body and '<time class="offset">0:40</time>' in body
    # Half the audio played: the first half of the words heard, the rest shown apart.
    assert '<span class="heard">A small marsupial</span>' in body
    assert "Not heard: </span>from Western Australia</span>" in body
    assert "about 50% heard, estimated from how much of its audio was played" in body
    assert "(cut short: the answer reached its length limit)" in body
    assert "(this answer failed: server_error)" in body
    assert "120 tokens" in body and "30 tokens (estimated)" in body and "150 tokens" in body
    assert "50 in, 100 out" in body and "partly estimated" in body
    assert f'href="/?conversation={conversation.pk}"' in body
    assert f'action="/history/{conversation.pk}/rename/"' in body
    assert f'href="/history/{conversation.pk}/delete/"' in body


def test_an_interrupted_reply_without_its_generated_length_says_the_share_is_unknown(signed_in, user):
    conversation = stored(user, [{"role": "assistant", "text": "Old reply", "interrupted": True, "audio_ms": 700}])
    body = signed_in.get(f"/history/{conversation.pk}/").content.decode()
    assert "Old reply" in body and "how much of it was heard was not recorded" in body


def test_rename_changes_the_title(signed_in, user):
    conversation = stored(user, [("user", "hello")], title="hello")
    response = signed_in.post(f"/history/{conversation.pk}/rename/", {"title": "  Greetings  "})
    assert response.status_code == 302 and response.url == f"/history/{conversation.pk}/"
    conversation.refresh_from_db()
    assert conversation.title == "Greetings"
    assert "Renamed." in signed_in.get(response.url).content.decode()


@pytest.mark.parametrize("title,error", [
    ("x" * 201, "Ensure this value has at most 200 characters (it has 201)."),
    ("   ", "This field is required."),
])
def test_rename_refuses_a_title_too_long_or_empty(signed_in, user, title, error):
    conversation = stored(user, [("user", "hello")], title="hello")
    response = signed_in.post(f"/history/{conversation.pk}/rename/", {"title": title})
    assert response.status_code == 400 and error in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.title == "hello"


def test_rename_is_a_post(signed_in, user):
    conversation = stored(user, [("user", "hello")], title="hello")
    assert signed_in.get(f"/history/{conversation.pk}/rename/").status_code == 405


def test_delete_asks_first_then_deletes(signed_in, user):
    conversation = stored(user, [("user", "forget me")], title="Secret")
    confirm = signed_in.get(f"/history/{conversation.pk}/delete/")
    assert confirm.status_code == 200
    assert "Delete this conversation?" in confirm.content.decode()
    assert Conversation.objects.filter(pk=conversation.pk).exists()  # asking deletes nothing
    response = signed_in.post(f"/history/{conversation.pk}/delete/")
    assert response.status_code == 302 and response.url == "/history/"
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert "The conversation was deleted." in signed_in.get("/history/").content.decode()
    assert signed_in.get(f"/history/{conversation.pk}/").status_code == 404


SCRIPT = "<script>alert('pwned')</script>"


def test_transcripts_and_titles_are_escaped_on_every_page(signed_in, user):
    conversation = stored(user, [("user", f"say {SCRIPT} pelican"), ("assistant", f"no {SCRIPT}")],
                          title=f"{SCRIPT} pelican")
    pages = [
        signed_in.get("/history/"),
        signed_in.get("/history/", {"q": "pelican"}),
        signed_in.get(f"/history/{conversation.pk}/"),
        signed_in.get(f"/history/{conversation.pk}/delete/"),
        signed_in.post(f"/history/{conversation.pk}/rename/", {"title": "x" * 300}),
    ]
    for response in pages:
        body = response.content.decode()
        assert SCRIPT not in body, response.request["PATH_INFO"]
        assert "&lt;script&gt;" in body
    if connection.vendor == "postgresql":
        searched = pages[1].content.decode()
        assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt; <mark>pelican</mark>" in searched


@pytest.mark.parametrize("lang,expected", [("es", "Aún no hay conversaciones"), ("de", "Noch keine Gespräche")])
def test_the_history_page_speaks_the_users_language(signed_in, lang, expected):
    assert expected in signed_in.get("/history/", HTTP_ACCEPT_LANGUAGE=lang).content.decode()
