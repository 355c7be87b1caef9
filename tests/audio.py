"""Speech-like PCM16 24 kHz test audio: espeak-ng when installed, a voiced tone burst otherwise."""
from __future__ import annotations

import io
import shutil
import subprocess
import wave

import numpy as np

RATE = 24_000


def silence(ms: int) -> bytes:
    """Digital silence of the given length."""
    return bytes(RATE * ms // 1000 * 2)


def speech(text: str = "Hello there, how are you today?") -> bytes:
    """Spoken text as PCM16 mono 24 kHz."""
    if shutil.which("espeak-ng"):
        wav = subprocess.run(["espeak-ng", "--stdout", text], check=True, capture_output=True).stdout
        with wave.open(io.BytesIO(wav)) as w:
            rate, frames = w.getframerate(), w.readframes(w.getnframes())
        samples = np.frombuffer(frames, dtype="<i2").astype(np.float32)
        t_out = np.arange(int(len(samples) * RATE / rate)) / RATE
        resampled = np.interp(t_out, np.arange(len(samples)) / rate, samples)
        return resampled.astype("<i2").tobytes()
    t = np.arange(int(RATE * 1.5)) / RATE
    voiced = 8000 * (np.sin(2 * np.pi * 150 * t) + 0.5 * np.sin(2 * np.pi * 300 * t))
    return voiced.astype("<i2").tobytes()


def frames(pcm: bytes, ms: int = 40) -> list[bytes]:
    """Split PCM into frames of `ms` milliseconds, as the browser sends them."""
    size = RATE * ms // 1000 * 2
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]
