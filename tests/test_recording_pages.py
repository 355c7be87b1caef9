"""The history pages show a recording where there is one: the player, each line's place in it, the list marker."""
from __future__ import annotations

import re

import pytest

from conversations.models import Turn

from .history import stored
from .recordings import recorded

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(client, user):
    client.force_login(user)
    return client


def with_places(user, places: list[int | None]):
    """A conversation whose turns start at these places in the recording (None: not recorded)."""
    conversation = stored(user, [("user" if i % 2 == 0 else "assistant", f"Line {i}") for i in range(len(places))])
    for position, ms in enumerate(places):
        Turn.objects.filter(conversation=conversation, position=position).update(recording_ms=ms)
    return conversation


def test_a_recorded_conversation_has_a_player_a_download_and_a_time_per_recorded_line(ada, user):
    conversation = with_places(user, [0, 2500, None, 65_000])
    recorded(conversation, 1.0, parts=1)
    page = ada.get(f"/history/{conversation.pk}/").content.decode()
    src = f"/history/{conversation.pk}/recording.mp3"
    assert f'<audio id="recording-audio" controls preload="metadata" src="{src}">' in page
    assert f'href="{src}?download=1" download>Download recording</a>' in page
    assert re.findall(r'data-seek-ms="(\d+)"', page) == ["0", "2500", "65000"]
    assert 'aria-label="Play the recording from 1:05"' in page
    assert "js/history-player.js" in page


def test_without_a_recording_there_is_no_player_and_no_times(ada, user):
    conversation = with_places(user, [0, 2500])  # places left over, but no chunks
    page = ada.get(f"/history/{conversation.pk}/").content.decode()
    assert "<audio" not in page and "data-seek-ms" not in page and "history-player.js" not in page
    assert "Download recording" not in page


def test_the_history_list_marks_recorded_conversations(ada, user):
    recorded(stored(user, [("user", "Recorded one")], title="Recorded one"), 1.0, parts=2)
    stored(user, [("user", "Silent one")], title="Silent one")
    page = ada.get("/history/").content.decode()
    items = re.findall(r'<li class="history-item">(.*?)</li>', page, re.S)
    marked = {re.search(r'class="history-title"[^>]*>([^<]+)<', item).group(1): "recording-marker" in item
              for item in items}
    assert marked == {"Recorded one": True, "Silent one": False}
    assert ">recording</span>" in page  # a word, not only a red dot


def test_searching_the_history_still_marks_recordings(ada, user):
    recorded(stored(user, [("user", "A quetzalcoatlus flew by")]), 1.0, parts=2)
    page = ada.get("/history/", {"q": "quetzalcoatlus"}).content.decode()
    assert page.count("recording-marker") == 1


def test_the_delete_confirmation_says_the_recording_goes_too(ada, user):
    conversation = stored(user, [("user", "Hi")])
    assert "recording" not in ada.get(f"/history/{conversation.pk}/delete/").content.decode()
    recorded(conversation, 1.0, parts=1)
    assert "Its recording is deleted with it." in ada.get(f"/history/{conversation.pk}/delete/").content.decode()
