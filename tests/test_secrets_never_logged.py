"""No API key or Entra ID token reaches a log line, even with every logger at DEBUG."""
from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import pytest_asyncio

from conversations.realtime.client import RealtimeConnection, UpstreamRejected, azure_target, openai_target
from conversations.realtime.simulator import RealtimeSimulator
from voiceapp.redaction import REDACTED, RedactSecrets, redact

KEY = "azure-key-RECOGNISABLE-0123456789"
TOKEN = "entra-token-RECOGNISABLE-9876543210"


@pytest.fixture
def debug_logs(caplog) -> Iterator[tuple[pytest.LogCaptureFixture, io.StringIO]]:
    """Everything logged at DEBUG, as records (caplog) and as a plain handler's formatted output."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    try:
        yield caplog, stream
    finally:
        root.removeHandler(handler)


def everything_logged(caplog: pytest.LogCaptureFixture, stream: io.StringIO) -> str:
    """Every message, traceback and formatted line the capture saw."""
    parts = [caplog.text, stream.getvalue()]
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(record.exc_text or "")
    return "\n".join(parts)


@pytest_asyncio.fixture
async def sim_with(request) -> RealtimeSimulator:
    """A simulator that accepts exactly the credential the test names."""
    async with RealtimeSimulator(api_key=request.param, realtime_pacing=False) as sim:
        yield sim


async def open_and_talk(target, **kwargs) -> None:
    connection = await RealtimeConnection.open(target, timeout=5, **kwargs)
    await connection.send({"type": "response.create"})
    async for event in connection.events():
        if event["type"] == "session.created":
            break
    await connection.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("sim_with", [KEY], indirect=True)
async def test_an_azure_api_key_is_not_logged_at_debug(sim_with, debug_logs, settings):
    settings.AZURE_OPENAI_API_KEY = ""  # the filter must not depend on the key being configured
    target = azure_target(endpoint=sim_with.url, deployment="gpt-realtime", api_key=KEY)
    await open_and_talk(target)
    logged = everything_logged(*debug_logs)
    # The handshake headers were logged (so the test saw DEBUG output), with the value redacted.
    assert f"api-key: {REDACTED}" in logged
    assert KEY not in logged


@pytest.mark.asyncio
@pytest.mark.parametrize("sim_with", [KEY], indirect=True)
async def test_a_bearer_key_is_not_logged_at_debug(sim_with, debug_logs):
    target = openai_target(api_key=KEY, model="gpt-realtime", base_url=sim_with.url)
    await open_and_talk(target)
    logged = everything_logged(*debug_logs)
    assert f"Authorization: Bearer {REDACTED}" in logged
    assert KEY not in logged


@pytest.mark.asyncio
@pytest.mark.parametrize("sim_with", [TOKEN], indirect=True)
async def test_an_entra_token_is_not_logged_at_debug(sim_with, debug_logs):
    async def token_provider() -> str:
        return TOKEN

    target = azure_target(endpoint=sim_with.url, deployment="gpt-realtime")
    await open_and_talk(target, token_provider=token_provider)
    logged = everything_logged(*debug_logs)
    assert f"Authorization: Bearer {REDACTED}" in logged
    assert TOKEN not in logged


@pytest.mark.asyncio
@pytest.mark.parametrize("sim_with", ["the-right-key-000000"], indirect=True)
async def test_a_refused_key_is_not_logged_either(sim_with, debug_logs):
    target = azure_target(endpoint=sim_with.url, deployment="gpt-realtime", api_key=KEY)
    with pytest.raises(UpstreamRejected) as info:
        await RealtimeConnection.open(target, timeout=5)
    logging.getLogger("conversations.relay").warning("upstream failed: %s %s", info.value, info.value.detail,
                                                     exc_info=info.value)
    logged = everything_logged(*debug_logs)
    assert "401" in logged
    assert KEY not in logged


def test_a_configured_secret_is_redacted_from_any_logger_by_the_filter(settings):
    settings.AZURE_OPENAI_API_KEY = KEY
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("any.thing")
    logger.addHandler(handler)
    try:
        logger.error("oops with %s inside", KEY)
        try:
            raise RuntimeError(f"failed with {KEY}")
        except RuntimeError:
            logger.exception("and a traceback")
    finally:
        logger.removeHandler(handler)
    assert "oops with [redacted] inside" in stream.getvalue()
    assert "RuntimeError: failed with [redacted]" in stream.getvalue()
    assert KEY not in stream.getvalue()


@pytest.mark.parametrize(
    "line",
    [
        "> api-key: abc123secret",
        "> Authorization: Bearer abc123secret",
        "{'api-key': 'abc123secret', 'Host': 'x'}",
        '{"Authorization": "Bearer abc123secret"}',
        "wss://x/realtime?api_key=abc123secret&model=m",
        "token eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJjb2cifQ.c2lnbmF0dXJlX2hlcmU",
    ],
)
def test_credential_shapes_are_redacted(line):
    assert "abc123secret" not in redact(line)
    assert "eyJhbGciOiJSUzI1NiJ9" not in redact(line)
    assert REDACTED in redact(line)


def test_ordinary_lines_are_left_alone():
    line = "Upstream azure session opened (ga dialect)"
    assert redact(line, ["short"]) == line


def test_the_console_handler_redacts_every_logger():
    from django.conf import settings

    assert "redact_secrets" in settings.LOGGING["handlers"]["console"]["filters"]
    assert settings.LOGGING["filters"]["redact_secrets"]["()"] == "voiceapp.redaction.RedactSecrets"
