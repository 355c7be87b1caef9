"""The local deployment (`make deploy-local`: deploy/local.py) through its proxy, over HTTPS and WSS verified
against its own self-signed certificate, with two workers: a conversation on each, a dropped connection
resuming where its conversation is held, limits shared between them, a live session ended from the other
worker, a worker stopped with SIGTERM whose conversation goes on on the other, and a worker killed outright
while the other keeps serving.

Needs nginx, openssl, PostgreSQL (DATABASE_URL: the stack gets its own database on that server,
voiceapp_deploystack_<pid>, created by `up` and dropped after, so that two test passes may run at once) and Redis (REDIS_URL, or DEPLOY_TEST_REDIS_URL to
give the stack another Redis database; its keys carry a prefix of their own either way)."""
from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from deploy import local

from .browser_support import ARTIFACTS, ROOT, free_port, wait_until

DATABASE = f"voiceapp_deploystack_{os.getpid()}"
PASSWORD = "correct horse battery staple"
# The page's reconnect delays after a drop (static/js/conversation/retry.js nominalDelay), in seconds.
PAGE_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 8.0)
RETRY_CODES = (1001, 1006, 1011, 1012)  # RETRY_CODES there

USERS_SCRIPT = f"""
import django
django.setup()
from django.contrib.auth import get_user_model
from conversations.models import UserLimits
User = get_user_model()
alice = User.objects.create_user("alice", password={PASSWORD!r})
UserLimits.objects.create(user=alice, max_concurrent=1)
User.objects.create_user("bob", password={PASSWORD!r})
User.objects.create_user("root", password={PASSWORD!r}, is_staff=True)
"""


@dataclass
class Stack:
    """A running local deployment: its state folder, ports, environment and the CA to trust."""

    state: Path
    https_port: int
    http_port: int
    env: dict[str, str]
    tls: ssl.SSLContext

    @property
    def origin(self) -> str:
        return f"https://localhost:{self.https_port}"

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """Run deploy/local.py as `make deploy-local` does."""
        return subprocess.run(
            [sys.executable, "deploy/local.py", *args, "--state", str(self.state), "--workers", "2",
             "--https-port", str(self.https_port), "--http-port", str(self.http_port)],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120)

    def pid(self, worker: int) -> int:
        return local.read_pid(local.worker_paths(self.state, worker)[1])

    def served_by(self, pattern: str) -> int:
        """The worker that answered the request whose line in nginx's access log matches the regex `pattern`."""
        log = self.state / "logs" / "access.log"

        def find():
            lines = [line for line in log.read_text().splitlines() if re.search(pattern, line)]
            return lines[-1] if lines else None

        # A WebSocket's line is written when the tunnel closes, a moment after the client saw the close.
        line = wait_until(find, 10)
        # After a dead worker nginx lists every address it tried; the last one answered.
        return int(re.findall(r"worker-(\d+)\.sock", line.split("upstream=")[1])[-1])


class Client:
    """A browser's HTTP side: its own cookies, TLS verified against the stack's certificate, no redirects followed."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.jar = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        self.opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=stack.tls), urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def request(self, path: str, data: dict | None = None) -> tuple[int, str, object]:
        """GET `path` (POST `data` with the CSRF token, as a form on the site's page does)."""
        headers = {}
        body = None
        if data is not None:
            body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": self.cookie("csrftoken")}).encode()
            headers["Origin"] = self.stack.origin
        request = urllib.request.Request(self.stack.origin + path, data=body, headers=headers)
        try:
            with self.opener.open(request, timeout=15) as response:
                return response.status, response.read().decode(), response.headers
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), exc.headers

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)

    def login(self, username: str) -> None:
        """Sign in with the login form."""
        assert self.request("/accounts/login/")[0] == 200
        status, _, headers = self.request("/accounts/login/", {"username": username, "password": PASSWORD})
        assert status == 302 and headers["Location"] == "/", status

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


class Talk:
    """One talk socket through the proxy, read continuously (pings stay answered): its text messages and its close."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.messages: asyncio.Queue = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                if isinstance(frame, str):
                    await self.messages.put(json.loads(frame))
        except ConnectionClosed:
            pass
        await self.messages.put(None)

    async def until(self, *kinds: str, timeout: float = 30) -> dict:
        """The next message of one of these types."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.messages.get()
                if message is None:
                    raise AssertionError(f"the socket closed ({self.ws.close_code}) before {kinds}")
                if message["type"] in kinds:
                    return message

    async def closed(self, timeout: float = 15) -> int | None:
        """Wait for the server to close the socket; its close code."""
        await asyncio.wait_for(asyncio.shield(self.reader), timeout)
        return self.ws.close_code

    async def exchange(self, text: str) -> dict:
        """Type `text` and wait for the assistant's whole answer."""
        await self.ws.send(json.dumps({"type": "text", "text": text}))
        done = await self.until("response_done")
        assert done["status"] == "completed", done
        return done


async def open_talk(stack: Stack, client: Client, query: str = "") -> Talk:
    """Open /ws/talk/ through the proxy as the page does (wss, the site's Origin, the session cookie)."""
    ws = await connect(f"wss://localhost:{stack.https_port}/ws/talk/{query}", ssl=stack.tls, origin=stack.origin,
                       additional_headers={"Cookie": client.cookie_header()}, open_timeout=10, max_size=None)
    return Talk(ws)


@pytest.fixture
def stack():
    """`deploy/local.py up` with two workers on a fresh database, a Redis database and free ports; `down` after."""
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not (Path(local.NGINX).exists() and shutil.which("openssl")):
        pytest.skip("needs nginx and openssl (Debian's nginx-light and openssl)")
    if not database_url.startswith("postgres") or not redis_url:
        pytest.skip("the deployment runs on PostgreSQL and Redis: run with DATABASE_URL=postgres://... and REDIS_URL")
    server = urlsplit(database_url)
    stack_db = server._replace(path=f"/{DATABASE}").geturl()
    import psycopg

    with psycopg.connect(server._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")  # `up` creates it again

    # A short path: unix socket paths are limited to about 100 characters.
    state = Path(tempfile.mkdtemp(prefix="vd-"))
    env = {name: value for name, value in os.environ.items()
           if name not in {"DJANGO_SETTINGS_MODULE", "DEBUG", "ALLOWED_HOSTS", "SECURE_PROXY_SSL_HEADER",
                           "TRUSTED_PROXY_COUNT", "FORWARDED_ALLOW_IPS"}}
    prefix = f"test-deploy-{uuid.uuid4().hex[:8]}"
    env.update({
        "DATABASE_URL": stack_db, "REDIS_URL": os.environ.get("DEPLOY_TEST_REDIS_URL") or redis_url,
        "AZURE_OPENAI_ENDPOINT": "", "OPENAI_API_KEY": "",  # each worker answers with its own simulator
        "CACHE_KEY_PREFIX": prefix, "MEDIA_ROOT": str(state / "media"),
        "LIVE_REGISTRY_REFRESH_SECONDS": "0.5", "LIVE_REGISTRY_TTL_SECONDS": "3",
    })
    https_port, http_port = free_port(), free_port()
    the_stack = Stack(state, https_port, http_port, env, tls=ssl.create_default_context())
    try:
        result = the_stack.cli("up")
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"Serving https://localhost:{https_port}/" in result.stdout
        # Trust exactly the certificate `up` made, nothing else: verification stays on.
        the_stack.tls = ssl.create_default_context(cafile=str(state / "tls" / "cert.pem"))
        subprocess.run([sys.executable, "-c", USERS_SCRIPT], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "voiceapp.settings"},
                       check=True, capture_output=True, timeout=60)
        yield the_stack
    finally:
        down = the_stack.cli("down")
        if (state / "logs").exists():
            shutil.copytree(state / "logs", ARTIFACTS / "deploy-local", dirs_exist_ok=True)
        shutil.rmtree(state, ignore_errors=True)
        with psycopg.connect(server._replace(path="/postgres").geturl(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    assert down.returncode == 0, down.stdout + down.stderr


@pytest.mark.browser
def test_a_real_browser_signs_in_and_talks_through_the_tls_proxy(stack, open_browser, tmp_path):
    from .browser_support import speech_wav

    wav = speech_wav(tmp_path / "hello.wav", "Hello there, how are you today?")
    # Chromium does not know the stack's own certificate authority; the socket tests above verify TLS.
    browser = open_browser(stack.origin, wav, ignore_https_errors=True)
    refused: list[str] = []
    browser.page.on("console", lambda message: refused.append(message.text) if "Refused" in message.text else None)
    browser.login("bob", PASSWORD)
    assert browser.page.url == stack.origin + "/"
    browser.start()
    browser.page.wait_for_function("() => window.voiceApp.stats.messages.response_done >= 1", timeout=60_000)
    bubbles = browser.page.eval_on_selector_all("#transcript .bubble", "els => els.map(e => e.textContent)")
    assert any("Assistant" in text or "ASSISTANT" in text.upper() for text in bubbles), bubbles
    assert refused == []  # the site's Content-Security-Policy allows everything the page does over wss
    browser.page.click("#stop")  # nginx logs a socket's request when the tunnel closes
    # (the page's socket URL carries its time zone: /ws/talk/?tz=...)
    assert stack.served_by(r'"GET /ws/talk/(\?\S*)? HTTP/1\.1" 101') in (1, 2)  # it went through nginx to a worker


@pytest.mark.system
def test_two_workers_behind_the_proxy_share_conversations_limits_and_survive_losing_one(stack):
    asyncio.run(_scenario(stack))

    # `down` (in the fixture) stops everything; `status` says so.
    down = stack.cli("down")
    assert down.returncode == 0
    assert stack.cli("status").returncode == 1


async def _scenario(stack: Stack) -> None:
    def get(client: Client, path: str):
        return asyncio.to_thread(client.request, path)

    def rows() -> list[dict]:
        status, body, _ = staff.request("/staff/live.json")
        assert status == 200
        return json.loads(body)["rows"]

    async def worker_of(conversation_id: str) -> int:
        """Which worker holds a live conversation, from the staff list (each entry names its worker's pid)."""
        def listed():
            # A killed worker's entries stay listed until they expire: only a running worker counts.
            return next((row for row in rows() if row["conversation_id"] == conversation_id
                         and local.running(int(row["worker"].split(":")[1]), b"voiceapp.serve")), None)

        row = await asyncio.to_thread(wait_until, listed, 10)
        pid = int(row["worker"].split(":")[1])
        return next(n for n in (1, 2) if stack.pid(n) == pid)

    async def session_on_each_worker(username: str) -> dict[int, tuple[Client, Talk, str]]:
        """Sign in as `username` from new browsers until one holds a live conversation on each worker.

        nginx sends each session's talk sockets to one worker (by a hash of its session cookie), so one
        browser's conversations all land on one worker; the chance that 16 sessions all hash to the same
        one of two workers is 2^-15.
        """
        found: dict[int, tuple[Client, Talk, str]] = {}
        for _ in range(16):
            client = Client(stack)
            await asyncio.to_thread(client.login, username)
            talk = await open_talk(stack, client)
            conversation_id = (await talk.until("ready"))["conversation_id"]
            worker = await worker_of(conversation_id)
            if worker in found:
                await talk.ws.close()
            else:
                found[worker] = (client, talk, conversation_id)
            if len(found) == 2:
                return found
        raise AssertionError(f"16 sessions of {username} all went to worker {set(found)}")

    # Plain HTTP is sent to HTTPS.
    with pytest.raises(urllib.error.HTTPError) as redirect:
        urllib.request.build_opener(type("NoRedirect", (urllib.request.HTTPRedirectHandler,),
                                         {"redirect_request": lambda *a, **k: None})).open(
            f"http://localhost:{stack.http_port}/history/?page=2", timeout=10)
    assert redirect.value.code == 301
    assert redirect.value.headers["Location"] == f"https://localhost:{stack.https_port}/history/?page=2"

    staff = Client(stack)
    await asyncio.to_thread(staff.login, "root")
    # The page from a worker, its scripts from nginx (revalidated each time: their names are not hashed).
    status, page, _ = await get(staff, "/")
    assert status == 200 and "/static/js/talk.js" in page
    status, script, headers = await get(staff, "/static/js/talk.js")
    assert status == 200 and "import" in script and headers["Cache-Control"] == "no-cache"

    # A conversation on each worker, each answering through WSS.
    bob = await session_on_each_worker("bob")
    await asyncio.gather(*(talk.exchange(f"Hello worker {n}") for n, (_, talk, _) in bob.items()))

    # A dropped connection (no close frame, as when the network goes) reconnects to the worker that still
    # holds the conversation and resumes it there, rather than a second copy starting on the other worker.
    client, talk, conversation_id = bob[1]
    talk.ws.transport.abort()
    await talk.closed()
    talk = await open_talk(stack, client, f"?conversation={conversation_id}")
    ready = await talk.until("ready")
    assert ready["resumed"] and not ready["continued"]
    assert [row["worker"].split(":")[1] for row in rows() if row["conversation_id"] == conversation_id] == \
        [str(stack.pid(1))]
    bob[1] = (client, talk, conversation_id)

    # Limits are shared: alice may have one conversation at once, and her second browser is refused by the
    # other worker too.
    first_browser = Client(stack)
    await asyncio.to_thread(first_browser.login, "alice")
    first = await open_talk(stack, first_browser)
    alice_worker = await worker_of((await first.until("ready"))["conversation_id"])
    for _ in range(16):
        browser = Client(stack)
        await asyncio.to_thread(browser.login, "alice")
        marker = uuid.uuid4().hex
        second = await open_talk(stack, browser, f"?attempt={marker}")
        error = await second.until("error")
        assert (error["code"], error["limit"], await second.closed()) == ("limit_reached", "concurrent", 4429)
        if await asyncio.to_thread(stack.served_by, marker) != alice_worker:
            break
    else:
        raise AssertionError("every second browser of alice's went to the worker holding the first")
    await first.ws.close()  # Stop

    # Staff end a live session from the other worker. nginx takes the workers in turn for pages and forms,
    # so the request after one worker W answered goes to the other: End the conversation W holds.
    marker = uuid.uuid4().hex
    assert (await get(staff, f"/staff/live/?probe={marker}"))[0] == 200
    holder = await asyncio.to_thread(stack.served_by, marker)
    _, talk, conversation_id = bob.pop(holder)
    end_path = f"/staff/live/{conversation_id}/end/"
    status, _, headers = await asyncio.to_thread(staff.request, end_path, {"confirmed": "1"})
    assert status == 302 and headers["Location"] == "/staff/live/"
    assert await asyncio.to_thread(stack.served_by, f"POST {end_path}") != holder
    error = await talk.until("error")
    assert (error["code"], await talk.closed()) == ("ended_by_staff", 4430)

    # SIGTERM the worker holding bob's other conversation: the socket closes with 1012 ("restarting"), and
    # reconnecting as the page does continues it on the other worker with its earlier turns.
    (stopping, (client, talk, conversation_id)), = bob.items()
    other = 3 - stopping
    os.kill(stack.pid(stopping), signal.SIGTERM)
    assert await talk.closed(30) == 1012
    resumed, history = None, None
    for delay in PAGE_RETRY_DELAYS:
        await asyncio.sleep(delay)
        try:
            attempt = await open_talk(stack, client, f"?conversation={conversation_id}")
        except (OSError, InvalidStatus):
            continue  # the handshake failed (the page sees 1006): try again after the next delay
        try:
            history = await attempt.until("history")
            ready = await attempt.until("ready")
        except AssertionError:
            # Closed first: the page retries only after these codes; anything else is a failure here.
            assert attempt.ws.close_code in RETRY_CODES, attempt.ws.close_code
            continue
        resumed = attempt
        break
    assert resumed is not None, "the conversation did not continue after its worker stopped"
    assert ready["conversation_id"] == conversation_id and ready["continued"]
    said = [item["text"] for item in history["items"]]
    assert said[0] == f"Hello worker {stopping}" and len(said) >= 2 and said[1]  # the question and its answer
    # (Once the stopped worker has exited, its entry cannot be the one found.)
    await asyncio.to_thread(wait_until, lambda: not local.running(stack.pid(stopping), b"voiceapp.serve"), 30)
    assert await worker_of(conversation_id) == other
    await resumed.exchange("And hello again")
    await resumed.ws.close()
    status, page, _ = await get(client, f"/history/{conversation_id}/")
    assert status == 200 and page.index(f"Hello worker {stopping}") < page.index("And hello again")

    # `up` again brings the stopped worker back and leaves the rest running.
    again = await asyncio.to_thread(stack.cli, "up", "--skip-release")
    assert again.returncode == 0, again.stderr
    assert f"Started worker {stopping} " in again.stdout and f"Started worker {other} " not in again.stdout
    assert stack.cli("status").returncode == 0

    # Kill one worker outright, with a conversation on it: the other serves every page and every new
    # conversation meanwhile (those of the browser whose sockets went to the dead worker too), and the
    # conversation the dead worker held continues there from what was stored.
    killed, survivor = stopping, other
    for _ in range(4):  # the browser whose sockets went to the stopped worker goes there again
        talk = await open_talk(stack, client)
        conversation_id = (await talk.until("ready"))["conversation_id"]
        if await worker_of(conversation_id) == killed:
            break
        await talk.ws.close()
    else:
        raise AssertionError(f"no conversation landed on worker {killed}")
    await talk.exchange("Before the crash")
    # The turns are written in the background, a moment after the answer.
    await asyncio.to_thread(wait_until, lambda: "Before the crash" in client.request(f"/history/{conversation_id}/")[1], 10)
    os.kill(stack.pid(killed), signal.SIGKILL)
    await asyncio.to_thread(wait_until, lambda: not local.running(stack.pid(killed), b"voiceapp.serve"), 10)
    assert await talk.closed() == 1006  # no goodbye: the page retries
    crashed = await open_talk(stack, client, f"?conversation={conversation_id}")
    history = await crashed.until("history")
    assert (await crashed.until("ready"))["continued"]
    assert [item["text"] for item in history["items"]][0] == "Before the crash"
    assert await worker_of(conversation_id) == survivor
    await crashed.exchange("After the crash")
    await crashed.ws.close()
    for n in range(4):
        marker = f"after-kill-{n}"
        status, _, _ = await get(client, f"/history/?q={marker}")
        assert status == 200
        assert await asyncio.to_thread(stack.served_by, marker) == survivor
    for n in range(2):
        talk = await open_talk(stack, client)
        conversation_id = (await talk.until("ready"))["conversation_id"]
        assert await worker_of(conversation_id) == survivor
        await talk.exchange(f"Still here {n}")
        await talk.ws.close()
