"""The settings page and its JSON answer to the talk page's panel."""
import dataclasses

import pytest

from conversations.models import VoicePreferences
from conversations.realtime.options import Preferences

pytestmark = pytest.mark.django_db


def form_data(**changes):
    data = {k: ("" if v is None else v) for k, v in dataclasses.asdict(Preferences()).items()}
    data.pop("temperature")  # GA: no temperature field
    data.update(changes)
    return data


@pytest.fixture
def logged_in(client, user, settings):
    settings.AZURE_OPENAI_API_VERSION = ""
    client.force_login(user)
    return client


def test_the_settings_page_shows_the_form_with_ga_voices(logged_in):
    response = logged_in.get("/settings/")
    assert response.status_code == 200
    assert b'value="marin"' in response.content
    assert b'name="temperature"' not in response.content


def test_the_preview_dialect_offers_temperature_and_no_ga_voices(logged_in, settings):
    settings.AZURE_OPENAI_API_VERSION = "2025-04-01-preview"
    content = logged_in.get("/settings/").content
    assert b'name="temperature"' in content and b'value="marin"' not in content


def test_saving_from_the_panel_answers_json_and_stores_the_choice(logged_in, user):
    response = logged_in.post("/settings/", form_data(voice="cedar", turn_detection="push_to_talk", language="de"),
                              HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "settings": {"turn_detection": "push_to_talk", "voice": "cedar", "language": "de"}}
    saved = VoicePreferences.objects.get(user=user)
    assert (saved.voice, saved.turn_detection, saved.language) == ("cedar", "push_to_talk", "de")


def test_bad_values_answer_400_with_messages_per_field_and_store_nothing(logged_in, user):
    response = logged_in.post("/settings/", form_data(vad_threshold="2", speed="fast"), HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"vad_threshold", "speed"}
    assert all(isinstance(m, str) and m for msgs in errors.values() for m in msgs)
    assert not VoicePreferences.objects.filter(user=user).exists()


def test_the_plain_form_redirects_with_a_message(logged_in):
    response = logged_in.post("/settings/", form_data(voice="ash"), follow=True)
    assert response.redirect_chain[-1][0] == "/settings/"
    assert b"Settings saved" in response.content


def test_the_plain_form_shows_errors_and_keeps_input(logged_in):
    response = logged_in.post("/settings/", form_data(silence_duration_ms="10", instructions="Keep this text"))
    assert response.status_code == 400
    assert b"Keep this text" in response.content


def test_settings_require_login(client):
    assert client.get("/settings/").status_code == 302
    assert client.post("/settings/", form_data(), HTTP_ACCEPT="application/json").status_code == 302


def test_the_talk_page_carries_the_settings_form(logged_in):
    response = logged_in.get("/")
    assert "settings_form" in response.context


def test_the_check_page_renders(logged_in):
    assert logged_in.get("/check/").status_code == 200
