"""A server that stops (SIGTERM) ends its live conversations: the last turns and the recording's end are stored."""
from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from voiceapp import serve

from .browser_support import LOGIN_SCRIPT, ROOT, free_port, served, until

FRAME_BYTES = 24_000 * 40 // 1000 * 2


def test_stopping_the_server_finalises_the_recording_and_ends_the_conversation(tmp_path):
    from websockets.asyncio.client import connect

    db, media = tmp_path / "db.sqlite3", tmp_path / "media"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DEBUG": "1", "DATABASE_URL": f"sqlite:///{db}",
           "REDIS_URL": "", "AZURE_OPENAI_ENDPOINT": "", "OPENAI_API_KEY": "", "MEDIA_ROOT": str(media)}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    cookie = subprocess.run([sys.executable, "-c", LOGIN_SCRIPT], cwd=ROOT, env=env, check=True,
                            capture_output=True, text=True, timeout=60).stdout.strip().splitlines()[-1]
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    async def talk(server: subprocess.Popen) -> tuple[str, int, int | None]:
        async with connect(url.replace("http", "ws") + "/ws/talk/", origin=url, additional_headers={"Cookie": cookie},
                           open_timeout=10) as ws:
            ready = await until(ws, "ready", timeout=30)
            assert ready["recording"] is True
            await ws.send(json.dumps({"type": "text", "text": "Tell me something long"}))
            start, sent = time.monotonic(), 0
            while sent < 150:  # six seconds of microphone, in real time
                await ws.send(bytes(FRAME_BYTES))
                sent += 1
                await asyncio.sleep(max(0.0, start + sent * 0.04 - time.monotonic()))
            server.terminate()  # SIGTERM, as systemd or a container runtime stops it
            try:
                async with asyncio.timeout(10):
                    while True:
                        await ws.recv()
            except Exception:  # noqa: BLE001 - the server closed the socket
                pass
            return ready["conversation_id"], sent * 40, ws.close_code

    with served(f"shutdown-{port}", serve.command("127.0.0.1", port), port, env) as server:
        conversation_id, sent_ms, close_code = asyncio.run(talk(server))
        # uvicorn re-raises the signal once it has shut down gracefully, so the exit status is SIGTERM's.
        assert server.wait(30) in (0, -15)

    assert close_code == 1012  # "service restart": the page reconnects and continues
    with sqlite3.connect(db) as con:
        status, ended_at, ended_by = con.execute("SELECT status, ended_at, ended_by FROM conversations_conversation WHERE id = ?",
                                       (conversation_id.replace("-", ""),)).fetchone()
        chunks = con.execute("SELECT file, start_ms, duration_ms FROM conversations_recordingchunk "
                             "WHERE conversation_id = ? ORDER BY seq", (conversation_id.replace("-", ""),)).fetchall()
        roles = [r for (r,) in con.execute("SELECT role FROM conversations_turn WHERE conversation_id = ? "
                                           "ORDER BY position", (conversation_id.replace("-", ""),))]
    assert status == "ended" and ended_at is not None and ended_by == "system"
    assert roles[:2] == ["user", "assistant"]
    # Everything up to the stop is in the recording, not just the chunks written before it.
    assert abs(sum(d for _, _, d in chunks) - sent_ms) <= 200
    assert all((media / "recordings" / name).is_file() for name, _, _ in chunks)


@pytest.mark.asyncio
async def test_shutdown_with_no_live_conversations_answers_at_once():
    from conversations.relay.lifespan import lifespan

    sent: list[dict] = []
    queue: asyncio.Queue = asyncio.Queue()
    for kind in ("lifespan.startup", "lifespan.shutdown"):
        queue.put_nowait({"type": kind})

    async def send(message: dict) -> None:
        sent.append(message)

    await asyncio.wait_for(lifespan({"type": "lifespan"}, queue.get, send), 5)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
