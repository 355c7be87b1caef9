"""Limits hold across server processes: two app servers sharing Redis and a database count one user's live conversations together."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from .browser_support import LOGIN_SCRIPT, ROOT, app_server, until

REDIS_URL = os.environ.get("REDIS_URL", "")
pytestmark = pytest.mark.skipif(not REDIS_URL, reason="counters are shared between processes only through Redis")


def _socket(url: str, cookie: str):
    return connect(url.replace("http://", "ws://") + "/ws/talk/", origin=url, additional_headers={"Cookie": cookie},
                   max_size=None, open_timeout=10)


async def _refusal(url: str, cookie: str) -> tuple[dict, int | None]:
    """Open a socket expecting a refusal: the error message and the close code."""
    async with _socket(url, cookie) as ws:
        error = await until(ws, "error", timeout=30)
        try:
            await asyncio.wait_for(ws.recv(), 10)
        except ConnectionClosed:
            pass
        return error, ws.close_code


async def until_any(ws, kinds: tuple[str, ...], timeout: float = 30.0) -> dict:
    """The next text message of one of these types."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.recv()
            if isinstance(frame, str) and (message := json.loads(frame))["type"] in kinds:
                return message


def test_a_conversation_on_one_server_counts_against_the_limit_on_the_other(tmp_path):
    # One SQLite file for both processes: they write little here (one conversation at a time), and the
    # limit under test lives in Redis, not in the database.
    db = tmp_path / "db.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DEBUG": "1", "DATABASE_URL": f"sqlite:///{db}",
           "REDIS_URL": REDIS_URL, "AZURE_OPENAI_ENDPOINT": "", "OPENAI_API_KEY": "",
           "LIMIT_CONCURRENT_CONVERSATIONS": "1", "CACHE_KEY_PREFIX": f"test-{uuid.uuid4().hex[:12]}"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    cookie = subprocess.run([sys.executable, "-c", LOGIN_SCRIPT], cwd=ROOT, env=env, check=True,
                            capture_output=True, text=True, timeout=60).stdout.strip().splitlines()[-1]
    served = {k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_KEY",
                                  "LIMIT_CONCURRENT_CONVERSATIONS", "CACHE_KEY_PREFIX")}

    async def run(a: str, b: str) -> None:
        async with _socket(a, cookie) as first:
            ready = await until(first, "ready", timeout=30)
            assert ready["conversation_id"]
            error, code = await _refusal(b, cookie)
            assert error["code"] == "limit_reached" and error["limit"] == "concurrent"
            assert "1 conversation going" in error["message"] and code == 4429
            await first.close(1000)  # Stop on server A frees the slot in Redis
        # The slot is freed as A finishes ending the conversation (storing it first): moments after the close.
        for _ in range(20):
            async with _socket(b, cookie) as second:
                first_message = await until_any(second, ("ready", "error"))
                if first_message["type"] == "ready":
                    assert first_message["conversation_id"] != ready["conversation_id"]
                    await second.close(1000)
                    return
            await asyncio.sleep(0.25)
        raise AssertionError("server B never admitted a conversation after Stop on server A")

    with app_server(served) as a, app_server(served) as b:
        asyncio.run(run(a, b))
