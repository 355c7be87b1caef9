"""On Azure the user is transcribed by the configured transcription deployment, or not at all."""
from __future__ import annotations

import pytest
from django.urls import reverse

from conversations import selectors, services
from conversations.realtime.client import GA, PREVIEW
from conversations.realtime.options import Preferences, build_session_config
from conversations.realtime.protocol import session_update
from conversations.realtime.schema import validate_client_event
from conversations.upstream import SIMULATOR_TRANSCRIPTION_DEPLOYMENT, transcription_models


@pytest.fixture
def on_azure(settings):
    settings.REALTIME_SIMULATED = False
    settings.AZURE_OPENAI_ENDPOINT = "https://res.openai.azure.com/"
    settings.OPENAI_API_KEY = ""
    return settings


@pytest.fixture
def on_openai(settings):
    settings.REALTIME_SIMULATED = False
    settings.AZURE_OPENAI_ENDPOINT = ""
    settings.OPENAI_API_KEY = "sk-test"
    return settings


def transcription_of(prefs: Preferences, dialect: str):
    event = session_update(build_session_config(prefs, dialect), dialect)
    validate_client_event(event, dialect)
    session = event["session"]
    return session["audio"]["input"]["transcription"] if dialect == GA else session["input_audio_transcription"]


def test_azure_sends_the_configured_deployment_name(on_azure):
    on_azure.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT = "my-whisper"
    assert transcription_models() == ("my-whisper",)
    prefs = selectors.preferences_default()
    assert prefs.transcription_model == "my-whisper"
    assert transcription_of(prefs, GA) == {"model": "my-whisper"}
    assert transcription_of(prefs, PREVIEW) == {"model": "my-whisper"}


@pytest.mark.django_db
def test_a_model_saved_under_openai_becomes_the_azure_deployment(on_azure, django_user_model):
    user = django_user_model.objects.create_user(username="bo", password="x")
    services.preferences_update(user=user, preferences=Preferences(transcription_model="gpt-4o-transcribe"))
    on_azure.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT = "whisper"
    assert selectors.preferences_for(user=user).transcription_model == "whisper"


def test_azure_without_a_transcription_deployment_does_not_transcribe(on_azure):
    on_azure.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT = ""
    assert transcription_models() == ()
    prefs = selectors.preferences_default()
    assert prefs.transcription_model == ""
    # Sent as null (valid in both dialects) rather than a model name Azure has no deployment for.
    assert transcription_of(prefs, GA) is None
    assert transcription_of(prefs, PREVIEW) is None


def test_openai_offers_its_transcription_models(on_openai):
    on_openai.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT = "ignored-here"
    assert transcription_models() == ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
    on_openai.REALTIME_TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"
    assert selectors.preferences_default().transcription_model == "gpt-4o-mini-transcribe"


def test_the_built_in_simulator_has_a_transcription_deployment_unless_one_is_named(settings):
    settings.REALTIME_SIMULATED = True
    settings.AZURE_OPENAI_ENDPOINT = ""
    settings.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT = ""
    assert transcription_models() == (SIMULATOR_TRANSCRIPTION_DEPLOYMENT,)
    settings.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT = "gpt-4o-mini-transcribe"
    assert transcription_models() == ("gpt-4o-mini-transcribe",)


@pytest.fixture
def logged_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_user(username="cy", password="x"))
    return client


@pytest.mark.django_db
def test_the_settings_page_offers_only_the_azure_deployment(on_azure, logged_in):
    on_azure.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT = "my-whisper"
    page = logged_in.get(reverse("conversations:settings")).content.decode()
    assert '<option value="my-whisper" selected>my-whisper</option>' in page
    assert "gpt-4o-transcribe" not in page


@pytest.mark.django_db
def test_the_settings_page_says_an_administrator_must_set_the_deployment(on_azure, client, django_user_model):
    on_azure.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT = ""
    client.force_login(django_user_model.objects.create_user(username="op", is_staff=True))
    for url in (reverse("conversations:settings"), reverse("conversations:talk")):
        page = client.get(url).content.decode()
        assert "AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT" in page
        assert 'name="transcription_model"' not in page


@pytest.mark.django_db
def test_other_users_are_told_plainly_that_they_are_not_transcribed(on_azure, logged_in):
    on_azure.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT = ""
    for url in (reverse("conversations:settings"), reverse("conversations:talk")):
        page = logged_in.get(url).content.decode()
        assert "AZURE_OPENAI" not in page  # the setting's name is the operator's business
        assert "What you say is not written down on this site" in page
        assert 'name="transcription_model"' not in page


@pytest.mark.django_db
def test_saving_a_model_name_azure_has_no_deployment_for_is_refused(on_azure, logged_in):
    on_azure.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT = "my-whisper"
    form = {"voice": "alloy", "instructions": "", "turn_detection": "server_vad", "vad_threshold": 0.5,
            "silence_duration_ms": 500, "prefix_padding_ms": 300, "eagerness": "auto",
            "transcription_model": "whisper-1", "language": "", "noise_reduction": "near_field", "speed": 1.0}
    answer = logged_in.post(reverse("conversations:settings"), form, HTTP_ACCEPT="application/json")
    assert answer.status_code == 400 and "transcription_model" in answer.json()["errors"]
    form["transcription_model"] = "my-whisper"
    assert logged_in.post(reverse("conversations:settings"), form, HTTP_ACCEPT="application/json").json()["ok"]


@pytest.mark.django_db
def test_saving_settings_on_azure_without_a_deployment_works(on_azure, logged_in):
    on_azure.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT = ""
    form = {"voice": "alloy", "instructions": "", "turn_detection": "server_vad", "vad_threshold": 0.5,
            "silence_duration_ms": 500, "prefix_padding_ms": 300, "eagerness": "auto",
            "language": "", "noise_reduction": "near_field", "speed": 1.0}
    answer = logged_in.post(reverse("conversations:settings"), form, HTTP_ACCEPT="application/json")
    assert answer.json()["ok"], answer.content


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_conversation_on_azure_without_a_transcription_deployment_still_runs(use_simulator, settings, cookie):
    from tests.relay import Transcript, collect, communicator

    settings.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT = ""
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    await comm.send_json_to({"type": "text", "text": "Hello there"})
    await collect(comm, seen, lambda s: bool(s.of_type("response_done")))
    await comm.disconnect()
    session = [e for e in use_simulator.received if e["type"] == "session.update"][0]["session"]
    assert session["audio"]["input"]["transcription"] is None
    assert not seen.of_type("error")


@pytest.mark.asyncio
async def test_the_built_in_simulator_is_given_the_configured_transcription_deployment(settings):
    from conversations.upstream import _EmbeddedSimulator

    settings.REALTIME_SIMULATED = True
    settings.AZURE_OPENAI_ENDPOINT = ""
    settings.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT = "my-transcriber"
    embedded = _EmbeddedSimulator()
    await embedded.url()
    try:
        assert embedded._sim.transcription_deployments == frozenset({"my-transcriber"})
    finally:
        await embedded._sim.stop()
