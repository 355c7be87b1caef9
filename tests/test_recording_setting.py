"""The "Record conversations" setting: on by default, saved from the settings page and the talk page's panel."""
import dataclasses
import re

import pytest

from conversations import selectors
from conversations.models import VoicePreferences
from conversations.realtime.options import Preferences

pytestmark = pytest.mark.django_db


def form_data(*, record: bool):
    """What a browser submits: every field, and `record=on` only when the box is ticked."""
    data = {k: ("" if v is None else v) for k, v in dataclasses.asdict(Preferences()).items()}
    data.pop("temperature")  # GA: no temperature field
    data.pop("record")
    if record:
        data["record"] = "on"
    return data


@pytest.fixture
def logged_in(client, user, settings):
    settings.AZURE_OPENAI_API_VERSION = ""
    client.force_login(user)
    return client


def checkbox(page: str) -> str:
    return re.search(r'<input type="checkbox" name="record"[^>]*>', page).group(0)


def test_recording_is_on_by_default_and_explained(logged_in):
    page = logged_in.get("/settings/").content.decode()
    assert " checked" in checkbox(page)
    assert '<label for="id_record">Record conversations</label>' in page
    assert 'aria-describedby="id_record_helptext"' in checkbox(page)
    assert "Both sides are recorded so you can play them back from the history." in page
    assert "existing ones stay until you delete them" in page


def test_unticking_the_box_saves_record_off_and_shows_it_unticked(logged_in, user):
    response = logged_in.post("/settings/", form_data(record=False))
    assert response.status_code == 302
    assert VoicePreferences.objects.get(user=user).record is False
    assert selectors.preferences_for(user=user).record is False
    assert " checked" not in checkbox(logged_in.get("/settings/").content.decode())


def test_ticking_it_again_saves_record_on(logged_in, user):
    logged_in.post("/settings/", form_data(record=False))
    logged_in.post("/settings/", form_data(record=True))
    assert VoicePreferences.objects.get(user=user).record is True
    assert " checked" in checkbox(logged_in.get("/settings/").content.decode())


def test_the_talk_pages_panel_saves_it_too(logged_in, user):
    assert 'name="record"' in logged_in.get("/").content.decode()
    response = logged_in.post("/settings/", form_data(record=False), HTTP_ACCEPT="application/json")
    assert response.status_code == 200 and response.json()["ok"] is True
    assert VoicePreferences.objects.get(user=user).record is False
    assert " checked" not in checkbox(logged_in.get("/").content.decode())
