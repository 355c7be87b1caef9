"""Conversation settings are validated per dialect and become valid sessions in both dialects."""
import dataclasses

import pytest

from conversations.forms import PreferencesForm
from conversations.realtime.client import GA, PREVIEW
from conversations.realtime.options import Preferences, browser_settings, build_session_config
from conversations.realtime.protocol import session_update
from conversations.realtime.schema import validate_client_event


def form_data(**changes):
    data = {k: ("" if v is None else v) for k, v in dataclasses.asdict(Preferences()).items()}
    data.update(changes)
    return data


def test_defaults_are_valid_in_both_dialects():
    assert PreferencesForm(form_data(), dialect=GA).is_valid()
    assert PreferencesForm(form_data(), dialect=PREVIEW).is_valid()


def test_ga_voices_are_refused_on_preview():
    assert PreferencesForm(form_data(voice="marin"), dialect=GA).is_valid()
    form = PreferencesForm(form_data(voice="marin"), dialect=PREVIEW)
    assert not form.is_valid() and "voice" in form.errors


def test_temperature_exists_only_in_preview():
    assert "temperature" in PreferencesForm(dialect=PREVIEW).fields
    assert "temperature" not in PreferencesForm(dialect=GA).fields


@pytest.mark.parametrize(
    "field,value",
    [
        ("vad_threshold", 1.5),
        ("vad_threshold", -0.1),
        ("silence_duration_ms", 50),
        ("prefix_padding_ms", 5000),
        ("speed", 2.0),
        ("max_response_tokens", 0),
        ("turn_detection", "telepathy"),
        ("noise_reduction", "studio"),
        ("language", "xx"),
        ("instructions", "x" * 2001),
    ],
)
def test_out_of_range_values_get_a_clear_message(field, value):
    form = PreferencesForm(form_data(**{field: value}), dialect=GA)
    assert not form.is_valid()
    message = form.error_dict()[field][0]
    assert message and "Traceback" not in message


def test_preview_temperature_range_is_checked():
    form = PreferencesForm(form_data(temperature=1.5), dialect=PREVIEW)
    assert not form.is_valid() and "temperature" in form.errors


def test_hidden_fields_keep_their_values():
    current = Preferences(temperature=1.1)
    form = PreferencesForm(form_data(voice="cedar"), dialect=GA)
    assert form.is_valid()
    prefs = form.to_preferences(current)
    assert prefs.voice == "cedar" and prefs.temperature == 1.1


def test_empty_max_tokens_means_unlimited():
    form = PreferencesForm(form_data(max_response_tokens=""), dialect=GA)
    assert form.is_valid()
    assert form.to_preferences(Preferences()).max_response_tokens is None


VARIANTS = [
    Preferences(),
    Preferences(turn_detection="push_to_talk", noise_reduction="off"),
    Preferences(turn_detection="semantic_vad", eagerness="high", language="de"),
    Preferences(vad_threshold=0.8, silence_duration_ms=900, prefix_padding_ms=100, speed=1.4, max_response_tokens=200),
    Preferences(voice="marin", transcription_model="gpt-4o-mini-transcribe", noise_reduction="far_field"),
]


@pytest.mark.parametrize("prefs", VARIANTS)
@pytest.mark.parametrize("dialect", [GA, PREVIEW])
def test_every_choice_renders_a_session_update_the_service_accepts(prefs, dialect):
    validate_client_event(session_update(build_session_config(prefs, dialect), dialect), dialect)


def test_language_sets_transcription_and_asks_for_answers_in_it():
    config = build_session_config(Preferences(language="es", instructions="Be kind."), GA)
    assert config.transcription_language == "es"
    assert config.instructions.endswith("Always answer in Spanish.")


def test_push_to_talk_turns_server_vad_off():
    config = build_session_config(Preferences(turn_detection="push_to_talk"), GA)
    assert config.turn_detection is None
    assert browser_settings(config)["turn_detection"] == "push_to_talk"


def test_a_ga_voice_falls_back_on_a_preview_deployment():
    assert build_session_config(Preferences(voice="cedar"), PREVIEW).voice == "alloy"


def test_noise_reduction_off_sends_null():
    update = session_update(build_session_config(Preferences(noise_reduction="off"), GA), GA)
    assert update["session"]["audio"]["input"]["noise_reduction"] is None
