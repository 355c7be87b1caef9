"""Reply-latency benchmark: N live conversations through the served app, against a direct-to-simulator baseline.

Run with `make bench` (PostgreSQL and Redis must be up). Each simulated browser streams 40 ms PCM16
frames in real time (1.5 s of speech, then 2.5 s of silence, repeated) and counts the reply audio.
The same load is then sent straight to the simulator, speaking the Azure protocol itself, as the
baseline. Reported: relay CPU per conversation, and reply latency (from the first silent frame after
the speech to the first reply audio, so it includes the VAD's 500 ms of silence) beside the baseline's,
measured in the same run so a noisy machine affects both alike.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.hotpath import make_cookies  # noqa: E402
from benchmarks.loadclient import FRAME_MS, KEY, SPEECH_FRAMES, cpu_seconds, origin_of, pattern, start_simulator  # noqa: E402
from tests.browser_support import app_server, free_port  # noqa: E402

from websockets.asyncio.client import connect  # noqa: E402

from conversations.realtime.client import GA  # noqa: E402
from conversations.realtime.protocol import SessionConfig, session_update  # noqa: E402


async def relay_client(url: str, cookie: str, frames: list[bytes], seconds: float, stats: dict) -> None:
    """A browser: binary PCM frames up, binary audio and small JSON down."""
    async with connect(url, additional_headers={"Cookie": cookie, "Origin": origin_of(url)}, max_size=None) as ws:
        while json.loads(await ws.recv()).get("type") != "ready":
            pass
        await _stream(ws, frames, seconds, stats, send=ws.send, is_audio=lambda m: isinstance(m, bytes))


async def direct_client(url: str, frames: list[bytes], seconds: float, stats: dict) -> None:
    """The baseline: the same load spoken straight to the simulator in the Azure GA protocol."""
    async with connect(url, additional_headers={"api-key": KEY}, max_size=None) as ws:
        # The same session configuration the relay sends, so the two modes differ only by the relay.
        await ws.send(json.dumps(session_update(SessionConfig(), GA)))

        def send(frame: bytes):
            return ws.send('{"type":"input_audio_buffer.append","audio":"' + base64.b64encode(frame).decode() + '"}')

        await _stream(ws, frames, seconds, stats, send=send, is_audio=lambda m: '"response.output_audio.delta"' in m)


async def _stream(ws, frames, seconds, stats, *, send, is_audio) -> None:
    loop = asyncio.get_running_loop()
    speech_ended: list[float] = []  # when the first silent frame of the current cycle was sent

    async def reader() -> None:
        async for message in ws:
            if is_audio(message):
                stats["audio_frames"] += 1
                if speech_ended:
                    stats["latency"].append(loop.time() - speech_ended.pop())

    task = asyncio.create_task(reader())
    start = loop.time()
    i = 0
    while loop.time() - start < seconds:
        if i % len(frames) == SPEECH_FRAMES:
            speech_ended[:] = [loop.time()]
        await send(frames[i % len(frames)])
        i += 1
        # Pace in real time against the wall clock, as a microphone does.
        await asyncio.sleep(max(0.0, start + i * FRAME_MS / 1000 - loop.time()))
    stats["frames_sent"] += i
    task.cancel()


async def run_load(make_client, n: int, seconds: float) -> dict:
    """Run n clients at once; return their combined counts."""
    stats = {"audio_frames": 0, "frames_sent": 0, "latency": []}
    results = await asyncio.gather(*(make_client(stats) for _ in range(n)), return_exceptions=True)
    stats["errors"] = [repr(r) for r in results if isinstance(r, BaseException)]
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", "-n", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    db_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/voiceapp_bench")
    cookies = make_cookies(max(args.conversations), {"DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": db_url})
    frames = pattern()

    sim_port = free_port()
    sim = start_simulator(sim_port)
    env = {"DATABASE_URL": db_url, "AZURE_OPENAI_ENDPOINT": f"http://127.0.0.1:{sim_port}/",
           "AZURE_OPENAI_API_KEY": KEY, "AZURE_OPENAI_DEPLOYMENT": "gpt-realtime", "AZURE_OPENAI_API_VERSION": "",
           "LOG_LEVEL": "WARNING"}
    try:
        with app_server(env) as base:
            server_pid = int(subprocess.check_output(["pgrep", "-f", f"voiceapp.serve --host 127.0.0.1 --port {base.rsplit(':', 1)[1]}"]).split()[0])
            relay_url = base.replace("http", "ws") + "/ws/talk/"
            direct_url = f"ws://127.0.0.1:{sim_port}/openai/v1/realtime?model=gpt-realtime"
            print(f"{'n':>4} {'mode':>7} {'relay CPU %':>12} {'CPU ms/conv/s':>14} {'sim CPU %':>10} "
                  f"{'reply p50 ms':>13} {'p95 ms':>8} {'audio frames':>13} {'errors':>7}")
            # Warm-up: start-up costs and the simulator's speech cache should not count against either mode.
            asyncio.run(run_load(lambda st: relay_client(relay_url, cookies[0], frames, 6, st), 1, 6))
            for n in args.conversations:
                for mode in ("direct", "relay"):
                    if mode == "relay":
                        make = lambda st, it=iter(cookies): relay_client(relay_url, next(it), frames, args.seconds, st)  # noqa: E731
                    else:
                        make = lambda st: direct_client(direct_url, frames, args.seconds, st)  # noqa: E731
                    d0, s0, t0 = cpu_seconds(server_pid), cpu_seconds(sim.pid), time.monotonic()
                    stats = asyncio.run(run_load(make, n, args.seconds))
                    wall = time.monotonic() - t0
                    d_cpu, s_cpu = cpu_seconds(server_pid) - d0, cpu_seconds(sim.pid) - s0
                    lat = sorted(stats["latency"]) or [float("nan")]
                    print(f"{n:>4} {mode:>7} {100 * d_cpu / wall:>12.1f} {1000 * d_cpu / wall / n:>14.2f} "
                          f"{100 * s_cpu / wall:>10.1f} {1000 * statistics.median(lat):>13.0f} "
                          f"{1000 * lat[int(0.95 * (len(lat) - 1))]:>8.0f} {stats['audio_frames']:>13} "
                          f"{len(stats['errors']):>7}", flush=True)
                    if stats["errors"]:
                        print("   first error:", stats["errors"][0])
                    time.sleep(2)  # let conversations close and flush before the next round
    finally:
        sim.terminate()
        sim.wait(10)


if __name__ == "__main__":
    main()
