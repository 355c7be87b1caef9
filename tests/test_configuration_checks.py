"""`manage.py check` explains realtime settings that cannot work, and names the target it will use."""
from __future__ import annotations



from conversations.checks import realtime_settings_check
from conversations.realtime.client import GA, PREVIEW
from conversations.upstream import configured_dialect


def api_version_problems() -> list:
    """The check's findings about the api-version."""
    return [p for p in realtime_settings_check(None) if p.id in {"conversations.E001", "conversations.W003"}]


def ids() -> list[str]:
    return [p.id for p in api_version_problems()]


def azure(settings, version: str) -> None:
    settings.AZURE_OPENAI_ENDPOINT = "https://res.openai.azure.com/"
    settings.AZURE_OPENAI_API_VERSION = version
    settings.REALTIME_SIMULATED = False


def test_a_ga_date_api_version_is_a_warning_that_it_is_ignored(settings):
    azure(settings, "2025-08-28")
    problems = api_version_problems()
    assert [p.id for p in problems] == ["conversations.W003"]
    assert "ignored" in problems[0].msg
    assert configured_dialect() == GA


def test_the_retired_preview_version_stays_an_error(settings):
    azure(settings, "2024-10-01-preview")
    assert "conversations.E001" in ids()
    assert "conversations.W003" not in ids()


def test_a_current_preview_version_is_fine_and_selects_preview(settings):
    azure(settings, "2025-04-01-preview")
    assert ids() == []
    assert configured_dialect() == PREVIEW


def test_no_api_version_is_fine_and_ga(settings):
    azure(settings, "")
    assert ids() == []
    assert configured_dialect() == GA


def test_the_simulator_honours_the_same_rule(settings):
    settings.AZURE_OPENAI_ENDPOINT = ""
    settings.REALTIME_SIMULATED = True
    settings.AZURE_OPENAI_API_VERSION = "2025-08-28"
    assert configured_dialect() == GA
    settings.AZURE_OPENAI_API_VERSION = "2025-04-01-preview"
    assert configured_dialect() == PREVIEW


def test_azure_without_a_transcription_deployment_is_a_warning(settings):
    azure(settings, "")
    settings.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT = ""
    assert "conversations.W004" in [p.id for p in realtime_settings_check(None)]
    settings.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT = "whisper"
    assert "conversations.W004" not in [p.id for p in realtime_settings_check(None)]
