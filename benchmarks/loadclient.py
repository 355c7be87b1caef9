"""What the load benchmarks share: the microphone's frames, the speech pattern, the simulator process, CPU readings.

`relay_load.py` (reply latency) and `soak.py` (many conversations with faults) both stream the same
speech-then-silence pattern in 40 ms PCM16 frames at real time, against a standalone simulator.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.audio import silence, speech  # noqa: E402

FRAME_MS = 40
FRAME_BYTES = 24_000 * FRAME_MS // 1000 * 2  # 1920 bytes of 24 kHz PCM16
KEY = "bench-key"
SPEECH_MS = 1500
SPEECH_FRAMES = SPEECH_MS // FRAME_MS


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def split_frames(pcm: bytes) -> list[bytes]:
    """Whole browser-sized frames of `pcm` (a trailing partial frame is dropped)."""
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)]


def utterance() -> list[bytes]:
    """One spoken turn (1.5 s of espeak-ng speech, or a voiced tone without it) that the simulator's VAD hears."""
    return split_frames(speech("Hello, this is a load test.")[: SPEECH_FRAMES * FRAME_BYTES])


def pattern() -> list[bytes]:
    """One speak-then-listen cycle (1.5 s of speech, 2.5 s of silence), split into browser-sized frames."""
    return utterance() + split_frames(silence(2500))


SILENT_FRAME = bytes(FRAME_BYTES)


def origin_of(url: str) -> str:
    """The site's own origin (scheme, host and port) for a ws:// URL: the server refuses any other."""
    return url.replace("ws://", "http://", 1).split("/ws/", 1)[0]


def start_simulator(port: int, *args: str, log: IO[str] | int = subprocess.DEVNULL,
                    env: dict[str, str] | None = None, wait: bool = True) -> subprocess.Popen:
    """Run `manage.py realtime_simulator` on `port` with the benchmarks' key (and `args`, e.g. fault knobs).

    Returns once it prints that it listens (at once with `wait=False`: call `wait_listening` later).
    """
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "realtime_simulator", "--port", str(port), "--api-key", KEY, *args],
        cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONUNBUFFERED": "1",
                       **(env or {})},
        stdout=subprocess.PIPE, stderr=log, text=True,
    )
    if wait:
        wait_listening(proc)
    return proc


def wait_listening(proc: subprocess.Popen) -> None:
    """Wait until a simulator started by `start_simulator` listens; then keep draining what it prints."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if re.search(r"listening on", line):
            break
    else:
        raise RuntimeError(f"the simulator exited with {proc.wait()}")
    # Nobody reads the rest of its output; a full pipe would block it, so drain it.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
