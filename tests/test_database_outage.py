"""The database stopping mid-conversation and starting again (a PostgreSQL of this test's own, on another port):
the conversation keeps talking, its writes wait in order, the server reconnects, and every turn is stored in order."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .browser_support import LOGIN_SCRIPT, ROOT, app_server, free_port, until, wait_until

PG_BIN = Path("/usr/lib/postgresql/15/bin")
FRAME_BYTES = 24_000 * 40 // 1000 * 2

pytestmark = pytest.mark.skipif(not (PG_BIN / "initdb").exists() or not shutil.which("runuser") or os.geteuid() != 0,
                                reason="needs PostgreSQL 15's initdb and pg_ctl, run as the postgres OS user")


class OwnPostgres:
    """A PostgreSQL cluster in a temporary folder, on a free port, that this test stops and starts (never the shared one)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.data = folder / "data"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *argv: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        shutil.chown(self.folder, "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "start", "-w", "-D", str(self.data), "-l", str(self.folder / "log"),
                          "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off")

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data))

    def query(self, sql: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url.replace("postgres://", "postgresql://"), connect_timeout=5) as con:
            return con.execute(sql, params).fetchall()


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    folder = Path(tempfile.mkdtemp(prefix="voiceapp-pg-"))
    pg = OwnPostgres(folder)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        with_server_gone = pg.data / "postmaster.pid"
        if with_server_gone.exists():
            subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "stop", "-m", "immediate",
                            "-D", str(pg.data)], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def _migrated_with_a_user(server_env: dict[str, str]) -> str:
    """Migrate the server's own database and sign a user in there; the session cookie header value."""
    env = {**os.environ, **server_env}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=180)
    return subprocess.run([sys.executable, "-c", LOGIN_SCRIPT], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True, timeout=60).stdout.strip().splitlines()[-1]


async def _reply(ws, text: str) -> tuple[dict, int]:
    """Type `text`, and read until the reply is done: the final assistant transcript and the bytes of audio heard."""
    await ws.send(json.dumps({"type": "text", "text": text}))
    audio, transcript = 0, None
    async with asyncio.timeout(20):
        while True:
            frame = await ws.recv()
            if isinstance(frame, bytes):
                audio += len(frame)
                continue
            message = json.loads(frame)
            assert message["type"] != "error", message
            if message["type"] == "transcript_done" and message["role"] == "assistant":
                transcript = message
            if message["type"] == "response_done":
                return transcript, audio


def test_a_conversation_talks_through_a_database_restart_and_every_turn_is_stored_in_order(own_postgres, tmp_path):
    from websockets.asyncio.client import connect

    pg = own_postgres
    server_env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "DEBUG": "1", "DATABASE_URL": pg.url,
           "REDIS_URL": "", "AZURE_OPENAI_ENDPOINT": "", "OPENAI_API_KEY": "", "MEDIA_ROOT": str(tmp_path / "media"),
           # Persistent connections, as deployed: the one the server holds dies with the restart and must be replaced.
           "CONN_MAX_AGE": "60"}
    cookie = _migrated_with_a_user(server_env)
    said = ["Before the database stops", "While the database is down", "Once it is back"]

    async def talk(url: str) -> tuple[str, list[tuple[dict, int]]]:
        async with connect(url.replace("http", "ws") + "/ws/talk/", origin=url, additional_headers={"Cookie": cookie},
                           open_timeout=10) as ws:
            conversation_id = (await until(ws, "ready", timeout=30))["conversation_id"]
            replies = [await _reply(ws, said[0])]
            await asyncio.to_thread(wait_until, lambda: pg.query(
                "SELECT count(*) FROM conversations_turn WHERE conversation_id = %s", conversation_id)[0][0] == 2, 10)

            await asyncio.to_thread(pg.stop)
            for _ in range(25):  # a second of microphone: the audio path never waits on the database
                await ws.send(bytes(FRAME_BYTES))
            replies.append(await _reply(ws, said[1]))

            await asyncio.to_thread(pg.start)
            replies.append(await _reply(ws, said[2]))
            await ws.close(code=1000)  # Stop
            return conversation_id, replies

    with app_server(server_env) as url:
        conversation_id, replies = asyncio.run(talk(url))
        ended = wait_until(lambda: pg.query("SELECT status, ended_by FROM conversations_conversation WHERE id = %s "
                                            "AND ended_at IS NOT NULL", conversation_id), 20)

    assert all(transcript and transcript["text"] and audio > 0 for transcript, audio in replies)
    assert ended == [("ended", "user")]
    turns = pg.query("SELECT role, text FROM conversations_turn WHERE conversation_id = %s ORDER BY position",
                     conversation_id)
    assert [role for role, _ in turns] == ["user", "assistant"] * 3
    assert [text for role, text in turns if role == "user"] == said
    assert [text for role, text in turns if role == "assistant"] == [t["text"] for t, _ in replies]


def test_a_server_stopped_while_the_database_is_down_names_each_write_it_could_not_store_and_the_next_one_sweeps_it(
        own_postgres, tmp_path):
    from websockets.asyncio.client import connect

    from .browser_support import ARTIFACTS

    pg = own_postgres
    server_env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "DEBUG": "1", "DATABASE_URL": pg.url,
                  "REDIS_URL": "", "AZURE_OPENAI_ENDPOINT": "", "OPENAI_API_KEY": "", "MEDIA_ROOT": str(tmp_path / "media"),
                  "JOURNAL_CLOSE_TIMEOUT_SECONDS": "2", "SWEEP_INTERVAL_SECONDS": "60"}
    cookie = _migrated_with_a_user(server_env)
    secret = "The words of the lost turn"

    async def talk(url: str, server: subprocess.Popen) -> str:
        async with connect(url.replace("http", "ws") + "/ws/talk/", origin=url, additional_headers={"Cookie": cookie},
                           open_timeout=10) as ws:
            conversation_id = (await until(ws, "ready", timeout=30))["conversation_id"]
            await _reply(ws, "Stored before the outage")
            await asyncio.to_thread(wait_until, lambda: pg.query(
                "SELECT count(*) FROM conversations_turn WHERE conversation_id = %s", conversation_id)[0][0] == 2, 10)
            await asyncio.to_thread(pg.stop)
            await _reply(ws, secret)
            server.terminate()  # SIGTERM while the database is down
            return conversation_id

    port = free_port()
    from voiceapp import serve

    from .browser_support import served

    with served(f"server-{port}", serve.command("127.0.0.1", port), port, server_env) as server:
        conversation_id = asyncio.run(talk(f"http://127.0.0.1:{port}", server))
        assert server.wait(60) in (0, -15)  # the shutdown gave up on the writes within its bound
    log = (ARTIFACTS / f"server-{port}.log").read_text()
    lost = [line.split("not stored: ", 1)[1] for line in log.splitlines()
            if f"Conversation {conversation_id}: not stored: " in line]
    assert f"Conversation {conversation_id}: {len(lost)} writes not stored: the database did not take them within 2s" in log
    # The turn said while the database was down is named (its place and length, never its words), and the end.
    assert any(op.startswith("TurnAdded") and "role=user position=2" in op and f"text={len(secret)} chars" in op
               for op in lost)
    assert lost[-1].startswith("ConversationEnded failed=False ended_by=")  # Stop or the shutdown, whichever came first
    assert secret not in log

    # The database comes back; the next server (one process, no Redis) finds the conversation still active
    # and, nothing being live in it yet, closes it as interrupted at its last stored turn.
    pg.start()
    assert pg.query("SELECT status FROM conversations_conversation WHERE id = %s", conversation_id) == [("active",)]
    with app_server(server_env):
        closed = wait_until(lambda: pg.query("SELECT status, ended_by, ended_at FROM conversations_conversation "
                                             "WHERE id = %s AND ended_at IS NOT NULL", conversation_id), 20)
    last_turn = pg.query("SELECT max(created_at) FROM conversations_turn WHERE conversation_id = %s", conversation_id)
    assert closed == [("ended", "interrupted", last_turn[0][0])]
