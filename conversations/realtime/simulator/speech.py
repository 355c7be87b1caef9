"""Speech for the simulated assistant: espeak-ng when installed, else a tone of plausible length.

Synthesis runs in a worker thread and is cached by (text, voice, speed), so one process can serve
many sessions without blocking its event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import shutil
import subprocess
import wave
from functools import lru_cache

import numpy as np

logger = logging.getLogger(__name__)

SAMPLE_RATE = 24_000
_ESPEAK_WPM = 175  # espeak-ng's default speaking rate
_SECONDS_PER_CHAR = 0.065  # roughly what espeak-ng takes per character at 175 wpm


async def synthesize(text: str, *, voice: str = "alloy", speed: float = 1.0) -> bytes:
    """Return PCM16 LE mono 24 kHz audio speaking `text`, without blocking the event loop."""
    return await asyncio.to_thread(_synthesize_cached, text, voice, round(speed, 2))


def espeak_available() -> bool:
    """Whether real speech (rather than the tone fallback) will be produced."""
    return shutil.which("espeak-ng") is not None


@lru_cache(maxsize=512)
def _synthesize_cached(text: str, voice: str, speed: float) -> bytes:
    """Synthesize once per distinct (text, voice, speed)."""
    if espeak_available():
        try:
            return _espeak(text, voice, speed)
        except (OSError, subprocess.SubprocessError, wave.Error, ValueError):
            logger.warning("espeak-ng failed; using a tone instead", exc_info=True)
    return tone(max(0.4, len(text) * _SECONDS_PER_CHAR / max(speed, 0.25)))


def _espeak(text: str, voice: str, speed: float) -> bytes:
    """Run espeak-ng and resample its 22050 Hz output to 24 kHz."""
    # Each simulated voice gets its own stable pitch, so voices are told apart by ear.
    pitch = 30 + int(hashlib.sha256(voice.encode()).hexdigest(), 16) % 40
    words_per_minute = str(int(_ESPEAK_WPM * min(max(speed, 0.25), 1.5)))
    result = subprocess.run(
        [
            "espeak-ng",
            "--stdout",
            "-v",
            "en-us",
            "-s",
            words_per_minute,
            "-p",
            str(pitch),
            "--",
            text,
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    with wave.open(io.BytesIO(result.stdout)) as wav:
        rate = wav.getframerate()
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise ValueError("unexpected espeak-ng output format")
        # espeak-ng streams to stdout, so its header's frame count is bogus: read everything.
        frames = wav.readframes(2**31 - 1)
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64)
    return resample(samples, rate).astype("<i2").tobytes()


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """Linear-interpolation resampling to 24 kHz; adequate for a test voice."""
    if rate == SAMPLE_RATE or samples.size == 0:
        return np.clip(samples, -32768, 32767)
    count = round(samples.size * SAMPLE_RATE / rate)
    positions = np.arange(count) * (rate / SAMPLE_RATE)
    return np.clip(np.interp(positions, np.arange(samples.size), samples), -32768, 32767)


def tone(seconds: float, *, frequency: float = 440.0, level: float = 0.3) -> bytes:
    """A sine tone with 10 ms fades, as PCM16 LE mono 24 kHz."""
    count = int(seconds * SAMPLE_RATE)
    t = np.arange(count) / SAMPLE_RATE
    wave_ = np.sin(2 * np.pi * frequency * t) * level
    fade = min(count // 2, SAMPLE_RATE // 100)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        wave_[:fade] *= ramp
        wave_[-fade:] *= ramp[::-1]
    return (wave_ * 32767).astype("<i2").tobytes()
