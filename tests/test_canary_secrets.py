"""A canary API key (or Entra token) is used for a whole conversation, yet appears in no page, header, static file, socket message or log record."""
from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.contrib import admin
from django.contrib.staticfiles import finders
from django.test import AsyncClient

from conversations import selectors
from conversations.forms import PreferencesForm
from conversations.models import Conversation
from conversations.realtime.client import EntraTokenProvider
from conversations.realtime.simulator import RealtimeSimulator
from conversations.upstream import configured_dialect, transcription_models

from .audio import silence, speech
from .relay import Transcript, collect, communicator, point_at, send_pcm

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("end_live_conversations")]

# Random per run, so no file or fixture could contain it by accident; the token is shaped like Entra's JWTs.
CANARY_KEY = "canary-key-" + secrets.token_hex(12)
CANARY_TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJjYW5hcnkiOiIx" + secrets.token_hex(8) + "fQ.c2lnbmF0dXJl" + secrets.token_hex(8)


class _Credential:
    """Stands in for DefaultAzureCredential: hands out the canary token."""

    async def get_token(self, scope: str):
        from types import SimpleNamespace

        return SimpleNamespace(token=CANARY_TOKEN, expires_on=9_999_999_999)


class _Everything(logging.Handler):
    """Keeps every record that reaches the root logger, formatted with its traceback, before any other handler's filter."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.lines.append(repr(record.args))


@pytest.fixture
def all_logs(caplog):
    """Every logger at DEBUG (the ones the settings quiet too), captured raw at the root."""
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and logger.level > logging.DEBUG:
            caplog.set_level(logging.DEBUG, logger=name)
    handler = _Everything()
    # First in line: the console handler's redaction rewrites records in place, and this must see them
    # as any other handler (a deployer's file or collector) would without that filter.
    logging.getLogger().handlers.insert(0, handler)
    yield handler
    logging.getLogger().removeHandler(handler)


@pytest.fixture(params=["api-key", "entra-token"])
def credential(request, settings, monkeypatch):
    """The canary the app is configured with: as AZURE_OPENAI_API_KEY, or as the token keyless auth obtains."""
    from conversations import upstream

    if request.param == "api-key":
        return request.param, CANARY_KEY
    monkeypatch.setattr(upstream, "entra_token_provider", lambda: EntraTokenProvider(_Credential()))
    return request.param, CANARY_TOKEN


async def _until(comm, seen: Transcript, kind: str) -> Transcript:
    return await collect(comm, seen, lambda s: bool(s.of_type(kind)))


async def _talk(user, cookie: bytes, settings_client: AsyncClient) -> tuple[list[Transcript], str]:
    """A whole conversation: spoken turn, typed turn, a settings change, a dropped socket resumed, Stop, then continued."""
    sockets = []
    comm = communicator(cookie)
    await comm.connect()
    seen = await _until(comm, Transcript(), "ready")
    conversation_id = seen.of_type("ready")[0]["conversation_id"]
    await send_pcm(comm, speech() + silence(1200))
    seen = await _until(comm, seen, "response_done")
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "Tell me something short"}))
    seen = await collect(comm, seen, lambda s: len(s.of_type("response_done")) >= 2)
    # The settings page saves new settings; the live session takes them.
    saved = await settings_client.post("/settings/", await _settings_form_data(user), headers={"accept": "application/json"})
    assert saved.status_code == 200, saved.content
    await comm.send_to(text_data=json.dumps({"type": "apply_settings"}))
    seen = await _until(comm, seen, "settings_applied")
    await comm.disconnect(code=1001)  # the network drops: the conversation waits to be resumed
    sockets.append(seen)

    comm = communicator(cookie, path=f"/ws/talk/?conversation={conversation_id}")
    await comm.connect()
    seen = await _until(comm, Transcript(), "ready")
    assert seen.of_type("ready")[0]["resumed"]
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "And one more thing"}))
    seen = await _until(comm, seen, "response_done")
    await comm.disconnect(code=1000)  # Stop
    sockets.append(seen)

    comm = communicator(cookie, path=f"/ws/talk/?conversation={conversation_id}")
    await comm.connect()
    seen = await _until(comm, Transcript(), "ready")
    assert seen.of_type("ready")[0]["continued"]
    await comm.disconnect(code=1000)
    sockets.append(seen)

    check = communicator(cookie, path="/ws/check/")
    await check.connect()
    await check.send_json_to({"type": "upstream_check"})
    answer = await check.receive_output(timeout=10)
    await check.disconnect()
    assert json.loads(answer["text"])["ok"]
    sockets.append(Transcript(messages=[json.loads(answer["text"])]))
    return sockets, conversation_id


async def _settings_form_data(user) -> dict[str, str]:
    """The settings form as the page would post it: the saved values, with a new voice and instructions."""
    prefs = await database_sync_to_async(selectors.preferences_for)(user=user)
    form = PreferencesForm.for_preferences(prefs, dialect=configured_dialect(), transcription_models=transcription_models())
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None or value is False:
            continue
        data[name] = "on" if value is True else str(value)
    data.update(voice="coral", instructions="Answer in one sentence.")
    return data


def _page_urls(conversation_id: str, user_id: int) -> tuple[list[str], list[str]]:
    """Every page a user reaches, and the further pages a staff member reaches (the admin's lists included)."""
    mine = ["/", f"/?conversation={conversation_id}", "/history/", f"/history/{conversation_id}/",
            f"/history/{conversation_id}/delete/", f"/history/{conversation_id}/recording.mp3",
            f"/history/{conversation_id}/export.json", f"/history/{conversation_id}/export.md",
            "/history/export-all.zip", "/history/import/", "/settings/", "/settings/delete-my-data/", "/check/",
            "/account/usage/", "/jsi18n/", "/accounts/password_change/"]
    staff = ["/staff/usage/", "/staff/usage.csv", f"/staff/usage/users/{user_id}/",
             f"/staff/usage/conversations/{conversation_id}/", "/staff/live/", "/staff/live.json", "/admin/",
             f"/admin/conversations/conversation/{conversation_id}/change/"]
    staff += [f"/admin/{model._meta.app_label}/{model._meta.model_name}/" for model in admin.site._registry]
    return mine, staff


async def _fetch(client: AsyncClient, url: str):
    """GET through Django's ASGI handler; returns the URL, the response and its whole body (streamed ones read)."""
    response = await client.get(url)
    if not response.streaming:
        body = response.content
    elif response.is_async:
        body = b"".join([chunk async for chunk in response.streaming_content])
    else:
        body = b"".join(response.streaming_content)
    return url, response, body


def _static_files() -> list[tuple[str, bytes]]:
    """Every static file the finders serve (the project's and the apps', the admin's included)."""
    found = []
    for finder in finders.get_finders():
        for path, storage in finder.list([]):
            found.append((path, Path(storage.path(path)).read_bytes()))
    return found


async def test_the_canary_credential_appears_nowhere_the_browser_or_the_log_can_see(
        credential, all_logs, settings, django_user_model, monkeypatch):
    kind, canary = credential
    user = await database_sync_to_async(django_user_model.objects.create_user)(username="ada")
    staff = await database_sync_to_async(django_user_model.objects.create_user)(username="sam", is_staff=True,
                                                                                is_superuser=True)
    signed_in = AsyncClient()
    await signed_in.aforce_login(user)
    staff_client = AsyncClient()
    await staff_client.aforce_login(staff)
    cookie = f"{settings.SESSION_COOKIE_NAME}={signed_in.cookies[settings.SESSION_COOKIE_NAME].value}".encode()

    async with RealtimeSimulator(api_key=canary, strict=True, realtime_pacing=False) as sim:
        point_at(settings, sim)
        settings.AZURE_OPENAI_API_KEY = CANARY_KEY if kind == "api-key" else ""
        settings.REALTIME_CONNECT_TIMEOUT = 5.0
        sockets, conversation_id = await _talk(user, cookie, signed_in)
        # The canary was really in use: the service received it, on every session.
        header, expected = ("api-key", canary) if kind == "api-key" else ("authorization", f"Bearer {canary}")
        assert len(sim.sessions) >= 3 and all(s.headers[header] == expected for s in sim.sessions)

        mine, staff_pages = _page_urls(conversation_id, user.pk)
        pages = [await _fetch(signed_in, url) for url in mine]
        pages += [await _fetch(staff_client, url) for url in staff_pages]
        pages.append(await _fetch(AsyncClient(), "/accounts/login/"))

    assert await database_sync_to_async(Conversation.objects.filter(pk=conversation_id).count)() == 1
    assert [url for url, response, _ in pages if response.status_code != 200] == []
    needle = canary.encode()
    leaks = []
    for number, seen in enumerate(sockets):
        leaks += [f"socket {number} message {m['type']}" for m in seen.messages if canary in json.dumps(m)]
        leaks += [f"socket {number} audio frame" for frame in seen.audio if needle in frame]
    for url, response, body in pages:
        if needle in body or canary in str(list(response.items())) or canary in response.cookies.output():
            leaks.append(f"page {url}")
    static = _static_files()
    assert len(static) > 50  # the project's scripts and the admin's: an empty walk would prove nothing
    leaks += [f"static {path}" for path, content in static if needle in content]
    assert len(all_logs.lines) > 50  # DEBUG really was captured (the handshakes, the relay)
    leaks += [f"log line {line[:120]!r}" for line in all_logs.lines if canary in line]
    assert leaks == []
