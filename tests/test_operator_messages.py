"""What the operator must fix (settings, role assignments, deployments, upstream statuses) reaches staff and the log, never other users."""
from __future__ import annotations

import json
import logging

import pytest

from conversations.relay.failures import NOT_AVAILABLE

from .conftest import session_cookie_for
from .relay import Transcript, collect, communicator

# Words that belong to the operator: any of them in a non-staff user's message is a leak.
INTERNALS = ("AZURE_OPENAI", "Cognitive Services", "role", "deployment", "401", "403", "404", "api-key",
             "api-version", "status")

# How the service refuses the app, through the simulator's knobs (docs/simulator.md): a wrong key is
# a 401, refuse_next(403) an identity without the role, an unknown deployment name a 404.
FAILURES = {
    "401 wrong key": ("upstream_auth", 4401, "AZURE_OPENAI_API_KEY", 401),
    "403 no role": ("upstream_auth", 4401, "Cognitive Services OpenAI User", 403),
    "404 no deployment": ("upstream_not_found", 4404, "AZURE_OPENAI_DEPLOYMENT", 404),
}


def break_upstream(failure: str, settings, sim) -> None:
    """Make the next handshake fail as `failure` says."""
    if failure.startswith("401"):
        settings.AZURE_OPENAI_API_KEY = "not-the-key"
    elif failure.startswith("403"):
        sim.refuse_next(403)
    else:
        settings.AZURE_OPENAI_DEPLOYMENT = "no-such-deployment"


@pytest.fixture(params=[False, True], ids=["user", "staff"])
def person(request, django_user_model):
    """A signed-in user, staff or not, and their session cookie."""
    member = django_user_model.objects.create_user(username="pat", is_staff=request.param)
    return member, session_cookie_for(member)


def assert_words_for(member, message: str, operator_hint: str) -> None:
    """Staff get the hint; anyone else gets NOT_AVAILABLE and no internals."""
    if member.is_staff:
        assert operator_hint in message
    else:
        assert message == NOT_AVAILABLE
        assert not [word for word in INTERNALS if word.lower() in message.lower()], message


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("failure", FAILURES)
async def test_the_talk_socket_tells_staff_what_to_fix_and_others_plain_words(failure, person, use_simulator, settings,
                                                                             caplog):
    member, cookie = person
    code, close_code, hint, status = FAILURES[failure]
    break_upstream(failure, settings, use_simulator)
    caplog.set_level(logging.INFO)
    comm = communicator(cookie)
    assert (await comm.connect())[0]
    seen = await collect(comm, Transcript(), lambda s: False)
    await comm.disconnect()
    error = seen.of_type("error")[-1]
    assert (error["code"], seen.closed_code) == (code, close_code)
    assert_words_for(member, error["message"], hint)
    # The operator learns the upstream's status from the log whoever met the failure.
    assert any("upstream failed" in r.getMessage() and f"HTTP {status}" in r.getMessage() for r in caplog.records)
    assert "Traceback" not in json.dumps(seen.messages)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("failure", FAILURES)
async def test_the_pre_flight_check_tells_staff_what_to_fix_and_others_plain_words(failure, person, use_simulator,
                                                                                  settings, caplog):
    member, cookie = person
    code, _, hint, status = FAILURES[failure]
    break_upstream(failure, settings, use_simulator)
    caplog.set_level(logging.INFO)
    comm = communicator(cookie, path="/ws/check/")
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "upstream_check"})
    result = await comm.receive_json_from(timeout=10)
    await comm.disconnect()
    assert (result["ok"], result["code"]) == (False, code)
    assert_words_for(member, result["message"], hint)
    assert any("Upstream check failed" in r.getMessage() and f"HTTP {status}" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_the_settings_page_names_the_missing_transcription_setting_to_staff_only(person, client, settings):
    member, _ = person
    settings.REALTIME_SIMULATED = False
    settings.AZURE_OPENAI_ENDPOINT = "https://res.openai.azure.com/"
    settings.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT = ""  # so users' words are not transcribed
    client.force_login(member)
    body = client.get("/settings/").content.decode()
    assert ("AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT" in body) == member.is_staff
    if not member.is_staff:
        assert "What you say is not written down on this site" in body
