"""Soak with faults: many conversations through two workers to the simulator while things break; nothing may be lost.

    .venv/bin/python benchmarks/soak.py --clients 40 --seconds 300     (or `make soak`)

Starts a standalone simulator (`manage.py realtime_simulator`) that drops upstream connections at
random moments and ends sessions after a short time (so the relay rolls sessions over), and two
workers (`python -m voiceapp.serve`, A and B) on one PostgreSQL database and one Redis db. C clients,
one user each, open `/ws/talk/` on A or B (alternately) and take turns as a person does: 1.5 s of
speech, then silence until the reply is done, at real time, in 40 ms PCM16 frames. Meanwhile:

- upstream drops and expiries come from the simulator (`--drop-mean`, `--session-expiry`);
- each client drops its own socket now and then (an abrupt TCP abort mid-stream) and resumes the
  conversation on the *other* worker (`/ws/talk/?conversation=ID&resume=1`, as the page does);
- worker A is stopped with SIGTERM once, mid-run (its clients get 1012 and resume on B), and started
  again; clients that change worker later use it again.

At the end every client finishes its turn and presses Stop (close 1000); the workers are stopped
(SIGTERM) so their writes are done; then the database is compared with what the clients were told:

- every conversation a client started is stored once, and ended (not failed);
- the user turns stored are exactly the ones the server acknowledged to a client (`user_item`, or an
  item in the `history` sent on resume);
- the assistant turns stored are exactly the replies a client was told of (`assistant_item`, or in a
  `history`); a reply cut by a fault is stored as interrupted, counted and shown apart;
- no line of either worker's or the simulator's log is an ERROR, CRITICAL or a traceback (warnings
  about the injected faults are expected);
- every utterance spoken whole on a ready socket became a user turn the client was told of, also when
  its turn had not ended (server VAD waits for 500 ms of silence) as the client cut its own socket or
  the worker restarted; one that did not is printed with what the client saw and the workers' log
  lines around it (`unacknowledged`), with the likeliest cause.

Prints a table of figures and exits 1 on any mismatch, 0 otherwise. `--json FILE` writes the figures.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.hotpath import make_cookies  # noqa: E402
from benchmarks.loadclient import (  # noqa: E402
    FRAME_MS, KEY, SILENT_FRAME, origin_of, start_simulator, utterance, wait_listening,
)
from tests.browser_support import free_port  # noqa: E402
from voiceapp import serve  # noqa: E402

from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidHandshake  # noqa: E402

FRAME_S = FRAME_MS / 1000
TRACE = bool(os.environ.get("SOAK_TRACE"))
# Close codes after which a browser page resumes the conversation (docs/browser-protocol.md).
RESUMABLE = {1001, 1006, 1011, 1012}
REPLY_WAIT_S = 15.0  # a reply not done this long after the user stopped speaking is not waited for
UNHEARD_S = 2.5  # a turn the server has not taken this long after the speech ended was cut by a fault
ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback \(most recent call last\)")


@dataclass
class ClientStats:
    """What one simulated browser was told, and what happened to it."""

    index: int
    conversation_id: str | None = None
    conversations_started: int = 0  # `ready` of a new conversation (never more than one: resumes keep it)
    user_items: set[str] = field(default_factory=set)
    assistant_items: set[str] = field(default_factory=set)
    replies_done: dict[str, str] = field(default_factory=dict)  # assistant item id -> response_done status
    utterances: int = 0  # whole utterances spoken on a ready socket
    latencies: list[float] = field(default_factory=list)
    pauses: list[float] = field(default_factory=list)  # from losing the socket to `ready` on the next one
    segments: int = 0  # sockets opened
    resumed: int = 0  # `ready` with resumed (same worker, within the grace period)
    continued: int = 0  # `ready` with continued (stored turns, new upstream session)
    renewed: int = 0  # `note` session_renewed: upstream replaced (rollover or reconnect)
    reconnecting: int = 0  # `reconnecting` messages: upstream reconnect tries
    client_drops: int = 0
    restarts_seen: int = 0  # closes with 1012
    server_closes: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # `error` messages and anything that went wrong
    stopped: bool = False  # ended with Stop and the server's normal close
    finished_s: float = 0.0  # when it was done, from the start of the run
    # Per utterance (whole, on a ready socket): (wall-clock start, end, worker index) and, for the evidence,
    # what this client saw happen: (wall-clock time, what) — its own drops, closes, `reconnecting`, `ready`,
    # and each user item the first time it was told of it.
    spoken: list[tuple[float, float, int]] = field(default_factory=list)
    seen: list[tuple[float, str]] = field(default_factory=list)
    first_told: dict[str, float] = field(default_factory=dict)  # user item id -> wall-clock time first told


class Client:
    """One browser: a user who speaks, waits for the reply, and whose network (or server) fails now and then."""

    def __init__(self, index: int, cookie: str, workers: list[str], drop_times: list[float]) -> None:
        self.stats = ClientStats(index)
        self.cookie = cookie
        self.workers = workers
        self.worker = index % 2  # A or B, alternately
        self.drop_times = sorted(drop_times)  # seconds after the start at which this client cuts its socket
        self.speech = utterance()
        self.lost_at: float | None = None  # when the last socket was lost, to time the pause until the next `ready`

    async def run(self, start: float, stop_at: float) -> ClientStats:
        """Talk until `stop_at` (loop time), surviving drops and restarts; then finish the turn and press Stop."""
        loop = asyncio.get_running_loop()
        failures_in_a_row = 0
        while True:
            try:
                outcome = await self._segment(start, stop_at)
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake) as exc:  # the worker is down or not answering
                failures_in_a_row += 1
                if failures_in_a_row > 40:
                    self.stats.errors.append(f"could not reconnect: {exc!r}")
                    return self.stats
                self.worker = 1 - self.worker
                await asyncio.sleep(min(0.25 * failures_in_a_row, 1.0) * random.uniform(0.5, 1.0))
                continue
            failures_in_a_row = 0
            if outcome == "stopped":
                self.stats.finished_s = round(loop.time() - start, 1)
                return self.stats
            self.lost_at = loop.time()
            if outcome == "dropped":  # our own network fault: come back on the other worker at once
                self.worker = 1 - self.worker
                continue
            code = outcome
            if code in RESUMABLE:
                if code == 1012:
                    self.stats.restarts_seen += 1
                self.worker = 1 - self.worker
                await asyncio.sleep(random.uniform(0.05, 0.3))  # a page's backoff, with jitter
                continue
            self.stats.errors.append(f"closed by the server with {code}")
            if loop.time() >= stop_at or self.stats.conversation_id is None:
                return self.stats
            await asyncio.sleep(1.0)  # e.g. 4502: the page offers Start, which continues the conversation

    async def _segment(self, start: float, stop_at: float) -> str | int:
        """One socket's life: returns "stopped", "dropped" (our abort) or the server's close code."""
        loop = asyncio.get_running_loop()
        url = self.workers[self.worker].replace("http", "ws") + "/ws/talk/"
        if self.stats.conversation_id:
            url += f"?conversation={self.stats.conversation_id}&resume=1"  # as the page reconnects
        ws = await connect(url, additional_headers={"Cookie": self.cookie}, origin=origin_of(url),
                           open_timeout=10, max_size=None, ping_interval=None, close_timeout=5)
        self.stats.segments += 1
        ready = asyncio.Event()
        reply_done = asyncio.Event()
        state: dict[str, Any] = {"speech_ended": None, "pending": False, "speaking": False}
        reader = asyncio.create_task(self._read(ws, ready, reply_done, state))
        try:
            async with asyncio.timeout(30):
                await _first(ready.wait(), reader)
            if reader.done():
                return await reader
            while loop.time() < stop_at:
                # Speak one turn, frame by frame at real time; a fault may cut it.
                if self._drop_due(loop, start):
                    return await self._drop(ws, reader)
                await _first(ready.wait(), reader)
                if reader.done():
                    return await reader
                reply_done.clear()
                spoken_at = time.time()
                state["speaking"] = True
                try:
                    spoken = await self._send(ws, self.speech, ready, reader, loop, start)
                finally:
                    state["speaking"] = False
                if spoken == "dropped":
                    return await self._drop(ws, reader)
                if spoken == "closed":
                    return await reader
                if spoken == "cut":
                    continue
                self.stats.utterances += 1
                self.stats.spoken.append((spoken_at, time.time(), self.worker))
                state["speech_ended"] = ended = loop.time()
                # Listen (sending silence, as an open microphone does) until the reply is done: or, when the
                # server did not take the turn (a fault cut it), until it is clear that none is coming.
                outcome = await self._listen(ws, lambda: reply_done.is_set() or (
                    not state["pending"] and loop.time() - ended > UNHEARD_S),
                    ready, reader, loop, start, loop.time() + REPLY_WAIT_S)
                if outcome in ("dropped", "closed"):
                    return await self._drop(ws, reader) if outcome == "dropped" else await reader
                # A pause between turns.
                outcome = await self._listen(ws, None, ready, reader, loop, start, loop.time() + random.uniform(0.3, 1.0))
                if outcome in ("dropped", "closed"):
                    return await self._drop(ws, reader) if outcome == "dropped" else await reader
            # Time is up: finish the turn in progress, then Stop.
            settle = loop.time() + 1.0  # at least a second of silence, so a turn being spoken is committed
            await self._listen(ws, lambda: loop.time() > settle and not state["pending"], ready, reader, loop, None,
                               loop.time() + REPLY_WAIT_S)
            if reader.done():
                return await reader
            await ws.close(1000)
            await asyncio.wait_for(reader, 15)
            self.stats.stopped = ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000
            if not self.stats.stopped:
                self.stats.errors.append(f"Stop was answered with {ws.close_code}")
            return "stopped"
        finally:
            if not reader.done():
                reader.cancel()
            if ws.close_code is None:
                ws.transport.abort()

    def _drop_due(self, loop: asyncio.AbstractEventLoop, start: float | None) -> bool:
        return start is not None and bool(self.drop_times) and loop.time() - start >= self.drop_times[0]

    async def _drop(self, ws: Any, reader: asyncio.Task) -> str:
        """Cut the socket as a lost network does: no close frame, the server sees 1006."""
        self.drop_times.pop(0)
        self.stats.client_drops += 1
        self.stats.seen.append((time.time(), f"client drop (on {'AB'[self.worker]})"))
        ws.transport.abort()
        reader.cancel()
        return "dropped"

    async def _send(self, ws: Any, frames: list[bytes], ready: asyncio.Event, reader: asyncio.Task,
                    loop: asyncio.AbstractEventLoop, start: float) -> str:
        """Send frames at real time; "sent", or why not: "cut" (upstream not ready), "dropped", "closed"."""
        t = loop.time()
        for frame in frames:
            if reader.done():
                return "closed"
            if self._drop_due(loop, start):
                return "dropped"
            if not ready.is_set():
                return "cut"  # the page stops sending while the server reconnects upstream
            try:
                await ws.send(frame)
            except ConnectionClosed:
                return "closed"
            t += FRAME_S
            await asyncio.sleep(max(0.0, t - loop.time()))
        return "sent"

    async def _listen(self, ws: Any, until: Any, ready: asyncio.Event, reader: asyncio.Task,
                      loop: asyncio.AbstractEventLoop, start: float | None, deadline: float) -> str:
        """Send silence until `until()` holds or `deadline`; "done", "dropped" or "closed"."""
        t = loop.time()
        while loop.time() < deadline and not (until is not None and until()):
            if reader.done():
                return "closed"
            if self._drop_due(loop, start):
                return "dropped"
            if ready.is_set():
                try:
                    await ws.send(SILENT_FRAME)
                except ConnectionClosed:
                    return "closed"
            t += FRAME_S
            await asyncio.sleep(max(0.0, t - loop.time()))
        return "done"

    async def _read(self, ws: Any, ready: asyncio.Event, reply_done: asyncio.Event, state: dict[str, Any]) -> int:
        """Take in everything the server says; returns the close code when the socket closes."""
        loop = asyncio.get_running_loop()
        stats = self.stats
        first_ready = True
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    if state["speech_ended"] is not None:
                        stats.latencies.append(loop.time() - state["speech_ended"])
                        state["speech_ended"] = None
                    continue
                m = json.loads(message)
                kind = m.get("type")
                if TRACE and kind not in ("transcript",):
                    print(f"{loop.time():.2f} client {stats.index}: {kind} {m.get('item_id', '')} {m.get('status', '')}")
                if kind == "ready":
                    if first_ready and self.lost_at is not None:
                        stats.pauses.append(loop.time() - self.lost_at)
                        self.lost_at = None
                    if first_ready:
                        if m["resumed"]:
                            stats.resumed += 1
                        elif m["continued"]:
                            stats.continued += 1
                        elif stats.conversation_id is None:
                            stats.conversations_started += 1
                        else:
                            stats.errors.append(f"a new conversation {m['conversation_id']} instead of resuming")
                        first_ready = False
                    if stats.conversation_id not in (None, m["conversation_id"]):
                        stats.errors.append(f"ready for {m['conversation_id']}, not {stats.conversation_id}")
                    stats.conversation_id = m["conversation_id"]
                    stats.seen.append((time.time(), f"ready on {'AB'[self.worker]}"))
                    ready.set()
                elif kind == "reconnecting":
                    stats.reconnecting += 1
                    stats.seen.append((time.time(), "reconnecting"))
                    state["pending"] = False  # a reply being generated went with the session
                    ready.clear()
                elif kind == "note" and m.get("code") == "session_renewed":
                    stats.renewed += 1
                elif kind == "history":
                    for item in m["items"]:
                        (stats.user_items if item["role"] == "user" else stats.assistant_items).add(item["item_id"])
                        if item["role"] == "user" and item["item_id"] not in stats.first_told:
                            stats.first_told[item["item_id"]] = time.time()
                            stats.seen.append((time.time(), f"user item {item['item_id']} (in a history)"))
                elif kind == "user_item":
                    stats.user_items.add(m["item_id"])
                    if m["item_id"] not in stats.first_told:
                        stats.first_told[m["item_id"]] = time.time()
                        stats.seen.append((time.time(), f"user item {m['item_id']}"))
                    state["pending"] = True  # a reply is on its way
                elif kind == "assistant_item":
                    stats.assistant_items.add(m["item_id"])
                elif kind == "response_done":
                    if m.get("item_id"):
                        stats.replies_done[m["item_id"]] = m["status"]
                    state["pending"] = False
                    if not state["speaking"]:  # a reply the user talks over (cancelled) is not the answer to this turn
                        reply_done.set()
                elif kind == "error":
                    stats.errors.append(f"error {m.get('code')}: {m.get('message')}")
        except ConnectionClosed:
            pass
        code = ws.close_code if ws.close_code is not None else 1006
        stats.server_closes[code] += 1
        stats.seen.append((time.time(), f"socket closed ({code})"))
        return code


async def _first(awaitable: Any, reader: asyncio.Task) -> None:
    """Wait for `awaitable`, or until the reader ends (the socket closed)."""
    task = asyncio.ensure_future(awaitable)
    try:
        await asyncio.wait({task, reader}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        task.cancel()


# --- Processes ------------------------------------------------------------------------------------

class Worker:
    """One `python -m voiceapp.serve` on a fixed port, which can be stopped (SIGTERM) and started again."""

    def __init__(self, name: str, port: int, env: dict[str, str], logs: Path) -> None:
        self.name, self.port, self.env, self.logs = name, port, env, logs
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.log_files: list[Path] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.runs += 1
        path = self.logs / f"worker-{self.name}{self.runs}.log"
        self.log_files.append(path)
        log = open(path, "w")
        self.proc = subprocess.Popen(serve.command("127.0.0.1", self.port), cwd=ROOT, env={**os.environ, **self.env},
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def wait_up(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited; see {self.log_files[-1]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker {self.name} did not start in {timeout} s") from None
                time.sleep(0.1)

    def stop(self, timeout: float = 40.0) -> int | None:
        """SIGTERM (a deployment's restart), wait for the process to end its conversations and exit."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9


def error_lines(paths: list[Path]) -> list[str]:
    """Lines of the logs that report an error or a traceback."""
    found = []
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            if ERROR_LINE.search(line):
                found.append(f"{path.name}: {line}")
    return found


# --- The run --------------------------------------------------------------------------------------

async def run_clients(clients: list[Client], seconds: float, restart: tuple[Worker, float] | None,
                      events: dict[str, Any]) -> list[ClientStats]:
    """Run every client for `seconds`, restarting a worker once on the way."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    events["wall0"] = time.time()
    stop_at = start + seconds
    tasks = []
    for i, client in enumerate(clients):
        # Staggered starts, as users do not all press Start in the same second.
        tasks.append(asyncio.create_task(_later(i * min(0.25, seconds / 20 / max(1, len(clients))),
                                                client.run(start, stop_at))))
    if restart is not None:
        worker, at = restart
        await asyncio.sleep(at)
        t0 = loop.time()
        events["restart_exit_code"] = await asyncio.to_thread(worker.stop)
        events["restart_stop_s"] = round(loop.time() - t0, 2)
        await asyncio.to_thread(worker.start)
        await asyncio.to_thread(worker.wait_up)
        events["restart_down_s"] = round(loop.time() - t0, 2)
    results = []
    for client, outcome in zip(clients, await asyncio.gather(*tasks, return_exceptions=True)):
        if isinstance(outcome, BaseException):  # a bug in the soak's client: reported, never hidden
            client.stats.errors.append(f"the client failed: {outcome!r}")
            outcome = client.stats
        results.append(outcome)
    return results


async def _later(delay: float, coro: Any) -> Any:
    await asyncio.sleep(delay)
    return await coro


def stored(conversation_ids: set[str], usernames: list[str], since: Any) -> dict[str, Any]:
    """What the database holds for the soak's users since the run started."""
    from conversations.models import Conversation, Turn

    conversations = list(Conversation.objects.filter(user__username__in=usernames, started_at__gte=since)
                         .values("id", "status", "ended_by", "error", "ended_at"))
    turns = list(Turn.objects.filter(conversation_id__in=[c["id"] for c in conversations])
                 .order_by("conversation_id", "position")
                 .values("conversation_id", "item_id", "role", "interrupted", "status", "text", "audio_ms"))
    return {"conversations": conversations, "turns": turns}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", "-c", type=int, default=int(os.environ.get("SOAK_CLIENTS", 8)))
    parser.add_argument("--seconds", "-s", type=float, default=float(os.environ.get("SOAK_SECONDS", 30)))
    parser.add_argument("--database-url", default=os.environ.get(
        "SOAK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/voiceapp_soakrun"))
    parser.add_argument("--redis-url", default=os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/13"))
    parser.add_argument("--drop-mean", type=float, default=60.0,
                        help="mean seconds before the simulator drops an upstream session at random (default 60: "
                             "with sessions rolled over every 10 s, about one in six drops)")
    parser.add_argument("--session-expiry", type=float, default=20.0,
                        help="seconds an upstream session lasts (the relay rolls over before)")
    parser.add_argument("--client-drop-mean", type=float, default=None,
                        help="mean seconds between a client's own socket drops (default: the run's length)")
    parser.add_argument("--restart-at", type=float, default=None,
                        help="seconds into the run at which worker A is restarted (default: 40%% of the run; "
                             "a negative value: no restart)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--logs", type=Path, default=None, help="folder for the logs (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    began = time.monotonic()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    logs = args.logs or Path(tempfile.mkdtemp(prefix="soak-"))
    logs.mkdir(parents=True, exist_ok=True)
    drop_mean = args.drop_mean
    client_drop_mean = args.client_drop_mean or args.seconds
    restart_at = args.restart_at if args.restart_at is not None else 0.4 * args.seconds

    prefix = f"soak-{secrets.token_hex(4)}"  # limit counters, live registry: this run's own keys in Redis
    secret = secrets.token_urlsafe(40)
    base_env = {"DJANGO_SETTINGS_MODULE": "voiceapp.settings", "DOTENV_FILE": "", "SECRET_KEY": secret,
                "DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url}
    os.environ.update(base_env)
    print(f"soak: {args.clients} clients for {args.seconds:g} s, seed {seed}, logs in {logs}", flush=True)
    usernames = [f"soak{i}" for i in range(args.clients)]
    sim_port = free_port()
    sim_log = open(logs / "simulator.log", "w")
    # Everything starts at once: the simulator and the workers boot while this process migrates and logs in.
    sim = start_simulator(sim_port, "--session-expiry", str(args.session_expiry), "--drop-mean", str(drop_mean),
                          "--seed", str(seed), log=sim_log, env={"LOG_LEVEL": "INFO"}, wait=False)
    media = tempfile.mkdtemp(prefix="soak-media-")
    worker_env = {
        **base_env, "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost", "CACHE_KEY_PREFIX": prefix,
        "MEDIA_ROOT": media, "LOG_LEVEL": "INFO",
        "AZURE_OPENAI_ENDPOINT": f"http://127.0.0.1:{sim_port}/", "AZURE_OPENAI_API_KEY": KEY,
        "AZURE_OPENAI_DEPLOYMENT": "gpt-realtime", "AZURE_OPENAI_API_VERSION": "", "OPENAI_API_KEY": "",
        "AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT": "whisper-1",
        # Generous limits: the soak is about faults, not about refusing users.
        "LIMIT_CONCURRENT_CONVERSATIONS": "0", "LIMIT_NEW_CONVERSATIONS_PER_HOUR": "0",
        "LIMIT_AUDIO_MINUTES_PER_DAY": "0", "LIMIT_COST_PER_DAY_USD": "0", "LIMIT_COST_PER_MONTH_USD": "0",
        "LIMIT_CONVERSATION_MINUTES": "0", "DEPLOYMENT_MAX_SESSIONS": "0",
    }
    workers = [Worker("a", free_port(), worker_env, logs), Worker("b", free_port(), worker_env, logs)]
    for worker in workers:
        worker.start()
    cookies = make_cookies(args.clients, {**base_env, "CACHE_KEY_PREFIX": prefix}, prefix="soak")
    from django.utils import timezone

    since = timezone.now()
    rng = random.Random(seed)
    clients = []
    for i, cookie in enumerate(cookies):
        drops, t = [], 0.0
        while True:
            t += rng.expovariate(1 / client_drop_mean)
            if t >= args.seconds - 3:
                break
            drops.append(t)
        clients.append(Client(i, cookie, [w.url for w in workers], drops))
    if not any(c.drop_times for c in clients) and clients:  # every fault at least once, even in a short run
        clients[-1].drop_times = [rng.uniform(0.3, 0.7) * args.seconds]
    events: dict[str, Any] = {}
    try:
        wait_listening(sim)
        for worker in workers:
            worker.wait_up()
        print(f"soak: simulator and workers up after {time.monotonic() - began:.1f} s", flush=True)
        wall0 = time.monotonic()
        restart = (workers[0], restart_at) if restart_at >= 0 else None
        results = asyncio.run(run_clients(clients, args.seconds, restart, events))
        wall = time.monotonic() - wall0
        print(f"soak: clients done after {wall:.1f} s; stopping the workers", flush=True)
    finally:
        for worker in workers:
            worker.stop()
        sim.send_signal(signal.SIGINT)
        try:
            sim.wait(10)
        except subprocess.TimeoutExpired:
            sim.kill()
        sim_log.close()
        _forget_keys(args.redis_url, prefix)

    ids = {r.conversation_id for r in results if r.conversation_id}
    db = stored(ids, usernames, since)
    figures = compare(results, db, logs, workers, events, args, wall, seed)
    print_figures(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0 if figures["ok"] else 1


def compare(results: list[ClientStats], db: dict[str, Any], logs: Path, workers: list[Worker],
            events: dict[str, Any], args: Any, wall: float, seed: int) -> dict[str, Any]:
    """The figures, and every way the database and the logs disagree with what the clients were told."""
    problems: list[str] = []
    started = {r.conversation_id for r in results if r.conversation_id}
    rows = {str(c["id"]): c for c in db["conversations"]}
    if set(rows) != started:
        problems.append(f"conversations stored {sorted(set(rows) - started)} that no client started; "
                        f"started but not stored {sorted(started - set(rows))}")
    completed = [c for c in rows.values() if c["status"] == "ended" and c["ended_at"] is not None]
    not_completed = [(cid, c["status"], c["ended_by"], c["error"][:80]) for cid, c in rows.items()
                     if c["status"] != "ended" or c["ended_at"] is None]
    if not_completed:
        problems.append(f"conversations not completed: {not_completed}")
    # Every client pressed Stop at the end: the stored end must be the user's, not a worker's that let go of it.
    not_by_user = [(cid, c["ended_by"]) for cid, c in rows.items() if c["ended_by"] != "user"]
    if not_by_user:
        problems.append(f"conversations not stored as ended by their user: {not_by_user}")
    user_told = {i for r in results for i in r.user_items}
    assistant_told = {i for r in results for i in r.assistant_items}
    user_stored = {t["item_id"] for t in db["turns"] if t["role"] == "user"}
    assistant_stored = {t["item_id"] for t in db["turns"] if t["role"] == "assistant"}
    for what, told, kept in (("user", user_told, user_stored), ("assistant", assistant_told, assistant_stored)):
        if told - kept:
            problems.append(f"{what} turns a client was told of but not stored (lost): {len(told - kept)}")
        if kept - told:
            problems.append(f"{what} turns stored that no client was told of: {len(kept - told)}")
    interrupted = sum(1 for t in db["turns"] if t["role"] == "assistant" and t["interrupted"])
    cut_unheard = sum(1 for t in db["turns"] if t["role"] == "assistant" and t["interrupted"] and not t["audio_ms"])
    # A user turn with no reply after it (before the next user turn): the user spoke and heard nothing back.
    unanswered = 0
    turns = db["turns"]
    for i, t in enumerate(turns):
        following = turns[i + 1] if i + 1 < len(turns) else None
        if t["role"] == "user" and (following is None or following["conversation_id"] != t["conversation_id"]
                                    or following["role"] == "user"):
            unanswered += 1
    failed_replies = Counter(t["status"] for t in db["turns"] if t["role"] == "assistant" and t["status"])
    for r in results:
        if not r.stopped:
            problems.append(f"client {r.index} did not end with Stop: {r.errors[-3:]}")
    client_errors = [f"client {r.index}: {e}" for r in results for e in r.errors]
    problems += client_errors[:20]
    log_paths = [p for w in workers for p in w.log_files] + [logs / "simulator.log"]
    bad_lines = error_lines(log_paths)
    if bad_lines:
        problems.append(f"{len(bad_lines)} error lines in the logs, e.g. {bad_lines[:5]}")
    sim_text = (logs / "simulator.log").read_text(errors="replace")
    worker_text = "\n".join(p.read_text(errors="replace") for w in workers for p in w.log_files)
    takeovers_timed_out = len(re.findall(r"did not let go within", worker_text))
    if takeovers_timed_out:  # no worker dies in the soak: a holder that does not let go is a bug
        problems.append(f"{takeovers_timed_out} takeovers timed out (two workers held one conversation)")
    latencies = [x for r in results for x in r.latencies]
    pauses = [x for r in results for x in r.pauses]
    lost = unacknowledged(results, db, workers, events.pop("wall0", 0.0))
    # Whatever cut it (the client's own socket before the silence that ends its turn, a worker's restart, an upstream
    # drop), speech the server received is the relay's to keep.
    if lost:
        problems.append(f"{len(lost)} utterances spoken whole on a ready socket never became a turn: "
                        f"{[(u['conversation'], u['at_s'], u['cause']) for u in lost[:5]]}")
    figures = {
        "clients": len(results), "seconds": args.seconds, "wall_s": round(wall, 1), "seed": seed,
        "conversations_started": len(started), "conversations_stored": len(rows),
        "conversations_completed": len(completed),
        "conversations_ended_by": dict(Counter(c["ended_by"] for c in rows.values())),
        "utterances_spoken": sum(r.utterances for r in results),
        "user_turns_acknowledged": len(user_told), "user_turns_stored": len(user_stored),
        "replies_received": len(assistant_told), "assistant_turns_stored": len(assistant_stored),
        "replies_stored_interrupted": interrupted, "user_turns_unanswered": unanswered,
        "replies_cut_before_any_audio": cut_unheard, "replies_not_completed": dict(failed_replies),
        "replies_completed": sum(1 for r in results for status in r.replies_done.values() if status == "completed"),
        "faults": {
            "upstream_drops": len(re.findall(r"Fault injected: session \d+ dropped", sim_text)),
            "session_expiries": len(re.findall(r"Fault injected: session \d+ expired", sim_text)),
            "rollovers": len(re.findall(r"rolled over to a new session", worker_text)),
            "client_drops": sum(r.client_drops for r in results),
            "worker_restarts": 1 if "restart_exit_code" in events else 0,
        },
        "restart": events,
        "reconnects": {
            "sockets_opened": sum(r.segments for r in results),
            "resumed_same_worker": sum(r.resumed for r in results),
            "continued": sum(r.continued for r in results),
            "closes_1012": sum(r.restarts_seen for r in results),
            "taken_over_from_another_worker": len(re.findall(r"continued by another worker; letting go", worker_text)),
            "takeovers_timed_out": takeovers_timed_out,
            "upstream_reconnect_tries": sum(r.reconnecting for r in results),
            "upstream_renewed_notes": sum(r.renewed for r in results),
        },
        "server_closes": dict(sum((r.server_closes for r in results), Counter())),
        "reconnect_pause_ms": {"p50": round(1000 * statistics.median(pauses)) if pauses else None,
                               "max": round(1000 * max(pauses)) if pauses else None, "n": len(pauses)},
        "reply_latency_ms": {"p50": round(1000 * statistics.median(latencies)) if latencies else None,
                             "p95": round(1000 * percentile(latencies, 0.95)) if latencies else None,
                             "n": len(latencies)},
        "log_error_lines": len(bad_lines),
        "utterances_not_acknowledged": dict(Counter(u["cause"] for u in lost)),
        "utterances_not_acknowledged_evidence": lost,
        "finished_s": {"min": min((r.finished_s for r in results), default=0),
                       "max": max((r.finished_s for r in results), default=0)},
        "logs": str(logs),
        "problems": problems,
    }
    figures["ok"] = not problems
    return figures


LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")
EVIDENCE_S = 2.0  # faults this close to an utterance are listed with it
TURN_END_S = 1.0  # after the speech, by when server VAD (500 ms of silence) has ended the turn
CLIENT_CUT = "the client cut its socket before its turn ended"
WORKER_RESTART = "the worker restarted before the turn ended"


def _log_lines(paths: list[Path]) -> list[tuple[float, str, str]]:
    """(epoch seconds, log file name, line) of the workers' timestamped log lines."""
    lines = []
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            m = LOG_TIME.match(line)
            if m:
                at = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000
                lines.append((at, path.stem, line[m.end():]))
    return lines


def unacknowledged(results: list[ClientStats], db: dict[str, Any], workers: list[Worker],
                   wall0: float) -> list[dict[str, Any]]:
    """Each utterance spoken whole on a ready socket that no user item followed, with what happened around it.

    An utterance counts as acknowledged when a user item the client had not been told of arrives between its
    start and the next utterance's start. The likeliest cause is the first that fits, in this order: the client
    cut its own socket within TURN_END_S of the speech's end (the speech was sent, but not the half second of
    silence after it that makes server VAD end the turn: the ending conversation must commit it), the worker
    closed the socket then (restart, 1012), the upstream session was replaced (`reconnecting`), or unexplained.
    """
    logs = _log_lines([p for w in workers for p in w.log_files])
    audio_by_conversation: dict[str, list[int]] = {}
    for t in db["turns"]:
        if t["role"] == "user":
            audio_by_conversation.setdefault(str(t["conversation_id"]), []).append(t["audio_ms"])
    found = []
    for r in results:
        told = sorted(r.first_told.values())
        for n, (begin, end, worker) in enumerate(r.spoken):
            until = r.spoken[n + 1][0] if n + 1 < len(r.spoken) else float("inf")
            if any(begin <= at < until for at in told):
                continue
            window = [(round(at - begin, 2), what) for at, what in r.seen
                      if begin - EVIDENCE_S <= at <= min(until, end + UNHEARD_S + EVIDENCE_S)]
            # Before the turn could have ended: server VAD ends it after 500 ms of silence (a second allows for lag).
            before_end = [what for at, what in window if 0 <= at <= end - begin + TURN_END_S]
            after = [what for at, what in window if at >= 0]
            if any(w.startswith("client drop") for w in before_end):
                cause = CLIENT_CUT
            elif any(w == "socket closed (1012)" for w in before_end):
                cause = WORKER_RESTART
            elif "reconnecting" in after:
                cause = "upstream session lost"
            else:
                cause = "unexplained"
            cid = r.conversation_id or ""
            found.append({
                "client": r.index, "conversation": cid, "worker": "AB"[worker],
                "at_s": round(begin - wall0, 2), "spoken_s": round(end - begin, 2), "cause": cause,
                "client_saw": window,
                "worker_log": [f"{round(at - begin, 2)} {name}: {line}" for at, name, line in logs
                               if cid and cid in line and begin - EVIDENCE_S <= at <= end + UNHEARD_S + EVIDENCE_S],
                "longest_user_turn_ms": max(audio_by_conversation.get(cid, [0])),
            })
    return found


def print_figures(f: dict[str, Any]) -> None:
    rows = [
        ("clients", f["clients"]), ("seconds", f["seconds"]), ("conversations started", f["conversations_started"]),
        ("conversations completed", f["conversations_completed"]),
        ("utterances spoken", f["utterances_spoken"]),
        ("  not a turn: client cut its socket first", f["utterances_not_acknowledged"].get(CLIENT_CUT, 0)),
        ("  not a turn: worker restarted first", f["utterances_not_acknowledged"].get(WORKER_RESTART, 0)),
        ("  not a turn: anything else", sum(n for cause, n in f["utterances_not_acknowledged"].items()
                                             if cause not in (CLIENT_CUT, WORKER_RESTART))),
        ("user turns acknowledged / stored", f"{f['user_turns_acknowledged']} / {f['user_turns_stored']}"),
        ("replies received / stored", f"{f['replies_received']} / {f['assistant_turns_stored']}"),
        ("  completed (heard whole)", f["replies_completed"]),
        ("  stored as interrupted (cut by a fault)", f["replies_stored_interrupted"]),
        ("    of which cut before any audio", f["replies_cut_before_any_audio"]),
        ("user turns left without a reply", f["user_turns_unanswered"]),
        ("faults: upstream drops", f["faults"]["upstream_drops"]),
        ("faults: session expiries (rollovers)", f"{f['faults']['session_expiries']} ({f['faults']['rollovers']})"),
        ("faults: client drops", f["faults"]["client_drops"]),
        ("faults: worker restarts (1012 closes)", f"{f['faults']['worker_restarts']} ({f['reconnects']['closes_1012']})"),
        ("sockets opened (resumed / continued)", f"{f['reconnects']['sockets_opened']} "
         f"({f['reconnects']['resumed_same_worker']} / {f['reconnects']['continued']})"),
        ("taken over from the other worker (timed out)", f"{f['reconnects']['taken_over_from_another_worker']} "
         f"({f['reconnects']['takeovers_timed_out']})"),
        ("upstream reconnect tries / renewed", f"{f['reconnects']['upstream_reconnect_tries']} / "
         f"{f['reconnects']['upstream_renewed_notes']}"),
        ("reply latency p50 / p95 ms", f"{f['reply_latency_ms']['p50']} / {f['reply_latency_ms']['p95']}"),
        ("socket lost -> ready again p50 / max ms", f"{f['reconnect_pause_ms']['p50']} / {f['reconnect_pause_ms']['max']}"),
        ("error lines in the logs", f["log_error_lines"]),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"server closes: {f['server_closes']}; restart: {f['restart']}; clients finished after "
          f"{f['finished_s']['min']}-{f['finished_s']['max']} s")
    if f["utterances_not_acknowledged_evidence"]:
        print(f"utterances not acknowledged: {f['utterances_not_acknowledged']}")
        for u in f["utterances_not_acknowledged_evidence"]:
            print(f"  client {u['client']} conversation {u['conversation']} on {u['worker']} at {u['at_s']} s "
                  f"({u['spoken_s']} s spoken): {u['cause']}; longest user turn stored {u['longest_user_turn_ms']} ms")
            for at, what in u["client_saw"]:
                print(f"      {at:+.2f} s client: {what}")
            for line in u["worker_log"]:
                print(f"      {line}")
    if f["problems"]:
        print("PROBLEMS:")
        for problem in f["problems"]:
            print("  -", problem)
    else:
        print("OK: every conversation completed, every acknowledged turn and reply stored, no error lines")


def _forget_keys(redis_url: str, prefix: str) -> None:
    """Delete this run's own keys (limit counters, live registry) from the soak's Redis db; never anything else."""
    try:
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"*{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
    except Exception as exc:  # noqa: BLE001 - leftovers expire on their own
        print(f"could not delete the run's Redis keys: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
