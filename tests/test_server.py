"""The server `make run` uses: the one the README names, no compression, and frames over the limits refused."""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conversations.realtime.protocol import MAX_AUDIO_FRAME_BYTES, MAX_MESSAGE_CHARS

from voiceapp import serve

from .browser_support import ARTIFACTS, LOGIN_SCRIPT, ROOT, app_server, until

SERVER_MAX_MESSAGE_BYTES = serve.OPTIONS["ws_max_size"]



@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """The app's server on its own SQLite file (the test database is in memory), and a logged-in user's cookie."""
    db = tmp_path_factory.mktemp("frames") / "db.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DEBUG": "1", "DATABASE_URL": f"sqlite:///{db}",
           "REDIS_URL": "", "AZURE_OPENAI_ENDPOINT": "", "OPENAI_API_KEY": ""}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    cookie = subprocess.run([sys.executable, "-c", LOGIN_SCRIPT], cwd=ROOT, env=env, check=True,
                            capture_output=True, text=True, timeout=60).stdout.strip().splitlines()[-1]
    with app_server({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_KEY")}) as url:
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


@pytest.mark.parametrize("frame", [bytes(SERVER_MAX_MESSAGE_BYTES + 2), "a" * (SERVER_MAX_MESSAGE_BYTES + 2)],
                         ids=["binary", "text"])
def test_a_frame_over_the_servers_limit_closes_the_socket_as_too_big(server, frame):
    async def run():
        async with open_socket(server, "/ws/check/") as ws:
            await ws.send(json.dumps({"type": "ping", "t": 1}))
            await until(ws, "pong")
            # The server may close while the client is still writing the frame,
            # so the send can raise as well as the next receive.
            with pytest.raises(ConnectionClosed):
                await ws.send(frame)
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1009  # message too big

    asyncio.run(run())


def test_the_socket_refuses_per_message_compression_a_browser_offers(server):
    async def run():
        # websockets offers permessage-deflate by default, as browsers do.
        async with open_socket(server, "/ws/check/") as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            assert ws.protocol.extensions == []
            await ws.send(json.dumps({"type": "ping", "t": 3}))
            assert (await until(ws, "pong"))["t"] == 3

    asyncio.run(run())


def test_make_run_serves_with_the_server_the_readme_names():
    makefile = (ROOT / "Makefile").read_text()
    run_recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "$(PY) -m voiceapp.serve " in run_recipe
    assert "daphne" not in run_recipe
    readme = (ROOT / "README.md").read_text()
    assert f"`make run` serves the app with **{serve.NAME}**" in readme
    assert serve.command("127.0.0.1", 8000)[1:3] == ["-m", "voiceapp.serve"]
    assert serve.OPTIONS["ws_per_message_deflate"] is False


def test_the_running_server_is_the_one_named(server):
    url, _ = server
    with urllib.request.urlopen(url + "/accounts/login/", timeout=10) as response:
        assert response.headers["Server"] == serve.NAME


def test_a_socket_flooding_audio_and_messages_is_closed_with_1008_and_the_server_logs_it_once(server):
    """Frames still on their way when the app closes the socket are dropped quietly: no send after close."""
    async def run() -> tuple[int, str]:
        async with open_socket(server, "/ws/talk/") as ws:
            ready = await until(ws, "ready", timeout=30)
            frame, ping = bytes(MAX_AUDIO_FRAME_BYTES), json.dumps({"type": "ping", "t": 1})
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(20):
                    while True:  # as fast as the socket takes them, text between the audio
                        await ws.send(frame)
                        await ws.send(ping)
            return closed.value.rcvd.code, ready["conversation_id"]

    code, conversation_id = asyncio.run(run())
    assert code == 1008
    port = server[0].rsplit(":", 1)[1]
    deadline = time.monotonic() + 10
    while True:  # the server writes its log as the conversation ends
        log = (ARTIFACTS / f"server-{port}.log").read_text()
        if f"Conversation {conversation_id} ended" in log or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert log.count(f"conversation {conversation_id}, ") == 1 and "audio over 2x real time" in log
    assert "Exception in ASGI application" not in log and "Talk socket handler failed" not in log
