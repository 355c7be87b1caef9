"""Hot-path benchmark: per-frame latency and CPU of the project's relay beside a bare relay and no relay.

Run with `make bench` (PostgreSQL and Redis must be up). N clients each stream 40 ms PCM16 frames in
real time, each frame carrying a sequence number in its first bytes; an upstream stand-in that speaks
the realtime protocol (`echo_upstream.py`) sends every frame straight back as an audio delta, so the
time from sending a frame to receiving it again is the round trip through whatever sits in between:

- `direct`: the clients speak the realtime protocol straight to the stand-in (the floor);
- `bare`: `bare_relay.py`, a few lines of `websockets` doing the same protocol work as the project;
- the project's ASGI app (`voiceapp.asgi`, logged in, on PostgreSQL and Redis) under each ASGI server.

All paths run in the same run, one after the other at each size, so a noisy machine affects all alike.
Reported per path: p50/p99 round trip and what it adds to the direct path's, the serving process's
CPU per conversation-second (and its ratio to the bare relay's), and frames lost.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect  # noqa: E402

from tests.browser_support import free_port, served  # noqa: E402

from voiceapp import serve as project_server  # noqa: E402

FRAME_MS = 40
FRAME_BYTES = 24_000 * FRAME_MS // 1000 * 2  # 1920 bytes of 24 kHz PCM16
KEY = "bench-key"
PY = sys.executable


# --- The ASGI servers the project can run under -------------------------------------------------

def server_commands(port: int) -> dict[str, list[str]]:
    """Each candidate server's command line for the project's ASGI app, with long-lived WebSocket settings."""
    app = "voiceapp.asgi:application"
    host = "127.0.0.1"
    return {
        "daphne": [PY, "-m", "daphne", "-b", host, "-p", str(port), app],
        "uvicorn+websockets": [PY, "-m", "uvicorn", app, "--host", host, "--port", str(port), "--loop", "uvloop",
                               "--http", "httptools", "--ws", "websockets", "--ws-per-message-deflate", "false",
                               "--no-access-log", "--lifespan", "off"],
        "uvicorn+websockets-sansio/asyncio": [PY, "-m", "uvicorn", app, "--host", host, "--port", str(port), "--loop",
                                              "asyncio", "--http", "h11", "--ws", "websockets-sansio",
                                              "--ws-per-message-deflate", "false", "--no-access-log", "--lifespan", "off"],
        "uvicorn+websockets-sansio": [PY, "-m", "uvicorn", app, "--host", host, "--port", str(port), "--loop",
                                      "uvloop", "--http", "httptools", "--ws", "websockets-sansio",
                                      "--ws-per-message-deflate", "false", "--no-access-log", "--lifespan", "off"],
        "uvicorn+wsproto": [PY, "-m", "uvicorn", app, "--host", host, "--port", str(port), "--loop", "uvloop",
                            "--http", "httptools", "--ws", "wsproto", "--ws-per-message-deflate", "false",
                            "--no-access-log", "--lifespan", "off"],
        "hypercorn": [PY, "-m", "hypercorn", "-b", f"{host}:{port}", "-k", "uvloop", app],
        "granian": [PY, "-m", "granian", "--interface", "asgi", "--host", host, "--port", str(port),
                    "--loop", "uvloop", "--log-level", "warning", app],
        "project": project_server.command(host, port),
    }


def tree_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and all its descendants (threads included), from /proc."""
    total = 0.0
    stack = [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while stack:
        p = stack.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def process(name: str, argv: list[str], port: int, env: dict[str, str] | None = None, cwd: Path = ROOT):
    """Start a server process, wait until its port answers, and stop it afterwards."""
    return served(f"bench-{name}", argv, port, env or {}, cwd)


# --- The load ---------------------------------------------------------------------------------------

@dataclass
class Route:
    """One way from the clients to the echo: how to connect, and the process whose CPU it costs."""

    name: str
    url: str
    kind: str  # "direct", "bare" or "project"
    pid: int | None = None
    recording: bool = True  # the project's users record their conversations (their default)


@dataclass
class Result:
    """What one path did at one size."""

    rtts: list[float] = field(default_factory=list)
    sent: int = 0
    received: int = 0
    errors: list[str] = field(default_factory=list)
    cpu_s: float = float("nan")
    wall_s: float = float("nan")

    def pct(self, q: float) -> float:
        """The q-quantile of the round trips, in milliseconds."""
        if not self.rtts:
            return float("nan")
        ordered = sorted(self.rtts)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def open_socket(path: Route, cookie: str):
    """Connect one client along the path; for the project, log in and wait until the relay is ready."""
    if path.kind == "direct":
        return await connect(path.url, additional_headers={"api-key": KEY}, compression=None, max_size=None)
    if path.kind == "bare":
        return await connect(path.url, compression=None, max_size=None)
    origin = path.url.replace("ws://", "http://", 1).split("/ws/", 1)[0]
    ws = await connect(path.url, additional_headers={"Cookie": cookie, "Origin": origin}, compression=None,
                       max_size=None, open_timeout=60)
    while True:
        message = await asyncio.wait_for(ws.recv(), 60)
        if isinstance(message, str) and json.loads(message).get("type") == "ready":
            return ws


async def stream(ws, path: Route, start: float, seconds: float, result: Result) -> None:
    """Send sequence-numbered frames in real time from `start`; time each one's return."""
    loop = asyncio.get_running_loop()
    clock = time.perf_counter  # uvloop's loop.time() only counts whole milliseconds
    total = int(seconds * 1000 / FRAME_MS)
    sent_at = [0.0] * total
    frame = bytearray(FRAME_BYTES)
    direct = path.kind == "direct"
    rtts = result.rtts
    got = 0

    async def receive() -> None:
        nonlocal got
        async for message in ws:
            if direct:
                if type(message) is not str or '"response.output_audio.delta"' not in message:
                    continue
                at = message.index('"delta":"') + 9
                head = base64.b64decode(message[at:at + 12])
            elif type(message) is bytes:
                head = message
            else:
                continue
            seq = int.from_bytes(head[:4], "little")
            if seq < total:
                rtts.append(clock() - sent_at[seq])
                got += 1
                if got == total:
                    return

    reader = asyncio.create_task(receive())
    await asyncio.sleep(max(0.0, start - loop.time()))
    for seq in range(total):
        frame[:4] = seq.to_bytes(4, "little")
        sent_at[seq] = clock()
        if direct:
            await ws.send('{"type":"input_audio_buffer.append","audio":"' + base64.b64encode(frame).decode() + '"}')
        else:
            await ws.send(bytes(frame))
        # Paced against the clock, as a microphone is.
        await asyncio.sleep(max(0.0, start + (seq + 1) * FRAME_MS / 1000 - loop.time()))
    result.sent += total
    try:
        await asyncio.wait_for(reader, 2.0)  # the last frames' way back
    except TimeoutError:
        pass
    result.received += got


async def run_path(path: Route, n: int, seconds: float, cookies: list[str], profile: Path | None = None) -> Result:
    """Connect n clients along the path, stream for `seconds` with their frames spread over the 40 ms, close."""
    result = Result()
    try:
        # A path that hangs is reported as an error (with where every task was), not waited on forever.
        await asyncio.wait_for(_run_path(path, n, seconds, cookies, profile, result), seconds + 120)
    except TimeoutError:
        result.errors.append(f"timed out after {seconds + 120:.0f} s")
        for task in asyncio.all_tasks():
            task.print_stack(limit=3, file=sys.stderr)
    return result


async def _run_path(path: Route, n: int, seconds: float, cookies: list[str], profile: Path | None,
                    result: Result) -> None:
    opened = await asyncio.gather(*(open_socket(path, cookies[i % len(cookies)]) for i in range(n)),
                                  return_exceptions=True)
    sockets = [ws for ws in opened if not isinstance(ws, BaseException)]
    result.errors += [repr(e) for e in opened if isinstance(e, BaseException)]
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.5
    spy = None
    if profile is not None and path.pid:
        # py-spy's raw (collapsed) stacks of the serving process over the streaming window.
        out = profile / f"{''.join(c if c.isalnum() else '-' for c in path.name)}-{n}.txt"
        spy = subprocess.Popen([str(Path(PY).parent / "py-spy"), "record", "-p", str(path.pid), "-r", "250", "-d", str(int(seconds)),
                                "-f", "raw", "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu0 = tree_cpu_seconds(path.pid) if path.pid else float("nan")
    t0 = time.monotonic()
    done = await asyncio.gather(
        *(stream(ws, path, start + i * FRAME_MS / 1000 / max(1, len(sockets)), seconds, result)
          for i, ws in enumerate(sockets)),
        return_exceptions=True,
    )
    # Only the streaming window counts: not the logins, the handshakes or the closing writes.
    result.wall_s = time.monotonic() - t0 - 0.5
    if path.pid:
        result.cpu_s = tree_cpu_seconds(path.pid) - cpu0
    result.errors += [repr(e) for e in done if isinstance(e, BaseException)]
    if spy is not None:
        spy.wait()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


# --- Set-up ---------------------------------------------------------------------------------------

def bench_env(db_url: str, redis_url: str, echo_port: int) -> dict[str, str]:
    """The project's settings for the benchmark: production-like (DEBUG off), on the echo stand-in."""
    return {
        "DJANGO_SETTINGS_MODULE": "voiceapp.settings",
        "DOTENV_FILE": "",
        "DEBUG": "0",
        "SECRET_KEY": "benchmark-only-secret-key-" + "x" * 30,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "AZURE_OPENAI_ENDPOINT": f"http://127.0.0.1:{echo_port}/",
        "AZURE_OPENAI_API_KEY": KEY,
        "AZURE_OPENAI_DEPLOYMENT": "gpt-realtime",
        "AZURE_OPENAI_API_VERSION": "",
        "AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT": "",
        "LOG_LEVEL": "WARNING",
    }


def make_cookies(n: int, env: dict[str, str], *, recording: bool = True, prefix: str = "") -> list[str]:
    """Create the database, migrate, log in n users and return their session cookies (relay_load.py, soak.py too).

    With `recording` off the users have turned recording off in their settings; `prefix` names the users.
    """
    os.environ.update(env)
    db_url = env["DATABASE_URL"]
    if db_url.startswith("postgres"):
        name = db_url.rsplit("/", 1)[1]
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {name}"],
                       capture_output=True)
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from conversations.models import VoicePreferences

    call_command("migrate", verbosity=0)
    cookies = []
    for i in range(n):
        name = prefix or ("bench" if recording else "bench-quiet")
        user, _ = get_user_model().objects.get_or_create(username=f"{name}{i}")
        VoicePreferences.objects.update_or_create(user=user, defaults={"voice": "alloy", "record": recording})
        client = Client()
        client.force_login(user)
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}")
    return cookies


def fmt(x: float, spec: str = ".1f") -> str:
    """A number for the table, or a dash."""
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", "-n", type=int, nargs="+", default=[20, 100, 200])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--servers", nargs="+", default=["daphne", "uvicorn+websockets", "uvicorn+wsproto", "hypercorn",
                                                         "granian", "project"],
                        help="which servers to run the project under; 'project' is the one `make run` uses")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--before", type=Path, metavar="TREE",
                        help="also serve an earlier checkout of the project (git worktree add TREE COMMIT) with "
                             "daphne, as its `make run` did")
    parser.add_argument("--profile", type=Path, help="record py-spy profiles of the relays into this folder")
    args = parser.parse_args(argv)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    echo_port, bare_port = free_port(), free_port()
    env = bench_env(os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/voiceapp_bench"),
                    os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"), echo_port)
    cookies = make_cookies(max(args.conversations), env)
    quiet_cookies = make_cookies(max(args.conversations), env, recording=False) if "project" in args.servers else []
    rows = []
    with ExitStack() as stack:
        stack.enter_context(process("echo", [PY, str(ROOT / "benchmarks/echo_upstream.py"), "--port", str(echo_port),
                                             "--uvloop"], echo_port))
        echo_url = f"ws://127.0.0.1:{echo_port}/openai/v1/realtime?model=gpt-realtime"
        bare = stack.enter_context(process("bare", [PY, str(ROOT / "benchmarks/bare_relay.py"), "--port",
                                                    str(bare_port), "--upstream", echo_url], bare_port))
        paths = [Route("direct", echo_url, "direct"), Route("bare relay", f"ws://127.0.0.1:{bare_port}/", "bare", bare.pid)]
        for name in args.servers:
            port = free_port()
            proc = stack.enter_context(process(name, server_commands(port)[name], port, env))
            label = f"project ({project_server.NAME}, make run)" if name == "project" else f"project on {name}"
            paths.append(Route(label, f"ws://127.0.0.1:{port}/ws/talk/", "project", proc.pid))
            if name == "project":  # what recording costs: the same server, users who turned it off
                paths.append(Route(label.replace(")", ", no recording)"), f"ws://127.0.0.1:{port}/ws/talk/",
                                   "project", proc.pid, recording=False))

        if args.before:
            port = free_port()
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=args.before, capture_output=True,
                                    text=True).stdout.strip()
            argv = [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "voiceapp.asgi:application"]
            proc = stack.enter_context(process("before", argv, port, env, cwd=args.before))
            paths.append(Route(f"project before ({commit}, daphne)", f"ws://127.0.0.1:{port}/ws/talk/", "project",
                               proc.pid))

        import uvloop

        async def warm_up() -> None:
            for path in paths:  # first connections pay for imports, caches and database connections
                await run_path(path, 2, 1.0, cookies if path.recording else quiet_cookies)

        uvloop.run(warm_up())
        header = (f"{'n':>4}  {'path':<44} {'p50 ms':>7} {'p99 ms':>7} {'+p50':>6} {'+p99':>6} "
                  f"{'CPU ms/conv-s':>13} {'x bare':>7} {'lost':>6} {'errors':>6}")
        print(header)
        print("-" * len(header), flush=True)
        for n in args.conversations:
            results: dict[str, Result] = {}
            for path in paths:
                results[path.name] = uvloop.run(run_path(path, n, args.seconds, cookies if path.recording else quiet_cookies,
                                                         args.profile))
                time.sleep(1.0)  # let the closed conversations store themselves before the next path
            floor = results["direct"]
            bare_cpu = results["bare relay"].cpu_s / results["bare relay"].wall_s / n * 1000
            for path in paths:
                r = results[path.name]
                cpu = r.cpu_s / r.wall_s / n * 1000 if path.pid else float("nan")
                row = {
                    "n": n, "path": path.name, "p50_ms": r.pct(0.5), "p99_ms": r.pct(0.99),
                    "added_p50_ms": r.pct(0.5) - floor.pct(0.5), "added_p99_ms": r.pct(0.99) - floor.pct(0.99),
                    "cpu_ms_per_conv_s": cpu, "cpu_vs_bare": cpu / bare_cpu if path.pid else float("nan"),
                    "sent": r.sent, "lost": r.sent - r.received, "errors": len(r.errors),
                }
                rows.append(row)
                added = path.kind != "direct"
                print(f"{n:>4}  {path.name:<44} {fmt(row['p50_ms']):>7} {fmt(row['p99_ms']):>7} "
                      f"{fmt(row['added_p50_ms']) if added else '':>6} {fmt(row['added_p99_ms']) if added else '':>6} "
                      f"{fmt(cpu, '.2f'):>13} {fmt(row['cpu_vs_bare'], '.2f'):>7} {row['lost']:>6} {row['errors']:>6}",
                      flush=True)
                if r.errors:
                    print(f"      first error: {r.errors[0][:200]}")
            print(flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
