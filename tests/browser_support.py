"""Support for real-browser tests: the app's own server on the test database, Chromium with a WAV microphone."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conversations.realtime.simulator import RealtimeSimulator

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(settings_dict: dict) -> str:
    """The DATABASE_URL of the (test) database Django is connected to, for a server subprocess."""
    user = settings_dict.get("USER") or "postgres"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"


@contextmanager
def served(name: str, argv: list[str], port: int, env: dict[str, str], cwd: Path = ROOT) -> Iterator[subprocess.Popen]:
    """Run a server process (its output in test-artifacts/NAME.log) until its port answers; stop it afterwards."""
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / ("".join(c if c.isalnum() else "-" for c in name) + ".log"), "w")
    proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited; see {log.name}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start in 30 s; see {log.name}") from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextmanager
def app_server(env: dict[str, str]) -> Iterator[str]:
    """Serve the ASGI app exactly as `make run` does (voiceapp.serve) on a free port; yield its base URL."""
    from voiceapp import serve

    port = free_port()
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "DEBUG": "1", **env}
    with served(f"server-{port}", serve.command("127.0.0.1", port), port, env):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def two_workers_served(name: str, **env: str) -> Iterator[tuple[str, str, subprocess.Popen]]:
    """Servers A and B on this test's PostgreSQL database and Redis, each with its own simulator and a live-registry
    prefix of this test's; `env` adds settings. Yields (URL of A, URL of B, A's process). Skips off PostgreSQL/Redis."""
    import secrets

    import pytest
    from django.conf import settings
    from django.db import connection

    from voiceapp import serve

    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("two workers share PostgreSQL and Redis: run with DATABASE_URL=postgres://... and REDIS_URL")
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.settings", "DEBUG": "1",
        "DATABASE_URL": database_url(connection.settings_dict), "REDIS_URL": settings.REDIS_URL,
        "AZURE_OPENAI_ENDPOINT": "", "OPENAI_API_KEY": "",  # each server runs its own simulator
        "LIVE_REGISTRY_KEY_PREFIX": f"test-{name}-{secrets.token_hex(4)}",
        **env,
    }
    ports = free_port(), free_port()
    with served(f"{name}-a-{ports[0]}", serve.command("127.0.0.1", ports[0]), ports[0], env) as a, \
         served(f"{name}-b-{ports[1]}", serve.command("127.0.0.1", ports[1]), ports[1], env):
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}", a


def speech_wav(path: Path, text: str, *, lead_silence_s: float = 2.0, tail_silence_s: float = 3.0) -> Path:
    """Write a 48 kHz mono WAV of silence, spoken text and silence, for Chromium's fake microphone."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", "48000", "-c", "1", "-b", "16", str(path),
         "pad", str(lead_silence_s), str(tail_silence_s)],
        check=True,
    )
    raw.unlink()
    return path


def barge_in_wav(folder: Path) -> Path:
    """A request for a long answer, then "Stop" 2 s after it: the reply (about 2.5 s) is playing by then."""
    first = speech_wav(folder / "a.wav", "Hello there, please tell me a long story.", lead_silence_s=1.5, tail_silence_s=2.0)
    second = speech_wav(folder / "b.wav", "Stop, wait a moment please.", lead_silence_s=0, tail_silence_s=4)
    wav = folder / "barge.wav"
    subprocess.run(["sox", str(first), str(second), str(wav)], check=True)
    return wav


def browser_available() -> bool:
    """Whether Chromium, espeak-ng and sox are installed."""
    return Path(CHROMIUM).exists() and bool(shutil.which("espeak-ng")) and bool(shutil.which("sox"))


def chromium_args(wav: Path | None, *, fake_ui: bool = True) -> list[str]:
    """Launch flags: a sandbox-free headless Chromium whose microphone plays `wav`.

    Without `fake_ui` the permission prompt is not auto-accepted: headless Chromium then denies it.
    """
    args = [
        "--no-sandbox",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-gpu",
        "--no-first-run",
        "--use-fake-device-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
    ]
    if fake_ui:
        args.append("--use-fake-ui-for-media-stream")
    if wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={wav}")
    return args


@contextmanager
def simulator_thread(**kwargs) -> Iterator[RealtimeSimulator]:
    """Run a RealtimeSimulator on its own event loop in a thread, so a sync test can read `received`."""
    import asyncio
    import threading

    from conversations.realtime.simulator import RealtimeSimulator

    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        sim = RealtimeSimulator(**kwargs)
        loop.run_until_complete(sim.start(host="127.0.0.1", port=0))
        holder["sim"] = sim
        started.set()
        loop.run_forever()
        loop.run_until_complete(sim.stop())
        loop.close()

    thread = threading.Thread(target=run, name="simulator", daemon=True)
    thread.start()
    if not started.wait(15):
        raise RuntimeError("the simulator did not start")
    try:
        yield holder["sim"]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy; fail with a clear message on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


# A script that creates a user and prints a logged-in session cookie, for a server on its own database.
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


async def until(ws, kind: str, timeout: float = 20.0) -> dict:
    """The next text message of a type, skipping audio and other messages."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.recv()
            if isinstance(frame, str):
                message = json.loads(frame)
                if message["type"] == kind:
                    return message
