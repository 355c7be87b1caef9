"""What a real daphne does with frames over the app's limits (an `error`) and over its own (the connection drops)."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conversations.realtime.protocol import MAX_AUDIO_FRAME_BYTES, MAX_MESSAGE_CHARS

from .browser_support import ROOT, daphne_server

# Daphne's default --websocket-max-message-size and --websocket-max-frame-size.
DAPHNE_MAX_MESSAGE_BYTES = 1024 * 1024

LOGIN_SCRIPT = """
import django
django.setup()
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
user = get_user_model().objects.create_user(username="frames", password="x")
client = Client()
client.force_login(user)
print(f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """A daphne on its own SQLite file (the test database is in memory), and a logged-in user's cookie."""
    db = tmp_path_factory.mktemp("frames") / "db.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DEBUG": "1", "DATABASE_URL": f"sqlite:///{db}",
           "REDIS_URL": "", "AZURE_OPENAI_ENDPOINT": "", "OPENAI_API_KEY": ""}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    cookie = subprocess.run([sys.executable, "-c", LOGIN_SCRIPT], cwd=ROOT, env=env, check=True,
                            capture_output=True, text=True, timeout=60).stdout.strip().splitlines()[-1]
    with daphne_server({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_KEY")}) as url:
        yield url, cookie


def open_socket(server: tuple[str, str], path: str):
    url, cookie = server
    return connect(
        url.replace("http://", "ws://") + path,
        origin=url,
        additional_headers={"Cookie": cookie},
        max_size=None,
        open_timeout=10,
    )


async def until(ws, kind: str, timeout: float = 20.0) -> dict:
    """The next text message of a type, skipping audio and other messages."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.recv()
            if isinstance(frame, str):
                message = json.loads(frame)
                if message["type"] == kind:
                    return message


def test_audio_over_one_second_is_refused_with_an_error_and_the_socket_stays_open(server):
    async def run():
        async with open_socket(server, "/ws/talk/") as ws:
            await until(ws, "ready", timeout=30)
            await ws.send(bytes(MAX_AUDIO_FRAME_BYTES + 2))
            error = await until(ws, "error")
            assert error["code"] == "audio_frame_too_large" and error["fatal"] is False
            await ws.send(json.dumps({"type": "ping", "t": 7}))
            assert (await until(ws, "pong"))["t"] == 7

    asyncio.run(run())


def test_a_text_frame_over_the_message_cap_is_refused_with_an_error(server):
    async def run():
        async with open_socket(server, "/ws/check/") as ws:
            await ws.send(json.dumps({"type": "text", "text": "a" * MAX_MESSAGE_CHARS}))
            error = await until(ws, "error")
            assert error["code"] == "message_too_long"
            await ws.send(json.dumps({"type": "ping", "t": 1}))
            assert (await until(ws, "pong"))["t"] == 1

    asyncio.run(run())


@pytest.mark.parametrize("frame", [bytes(DAPHNE_MAX_MESSAGE_BYTES + 2), "a" * (DAPHNE_MAX_MESSAGE_BYTES + 2)],
                         ids=["binary", "text"])
def test_a_frame_over_daphnes_limit_drops_the_connection_without_a_close_frame(server, frame):
    async def run():
        async with open_socket(server, "/ws/check/") as ws:
            await ws.send(json.dumps({"type": "ping", "t": 1}))
            await until(ws, "pong")
            await ws.send(frame)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            # autobahn fails the connection by dropping TCP: no close frame, so 1006 on the client.
            assert ws.close_code == 1006
            assert ws.protocol.close_rcvd is None

    asyncio.run(run())
