"""Run a conversation's recording: place audio on the loop, mix, encode and store chunks in a worker thread."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .encoder import Mp3Encoder
from .mixer import Mixer
from .timeline import SAMPLES_PER_MS, Event, Timeline

logger = logging.getLogger(__name__)

# Called in the worker thread with (chunk number, MP3 bytes, start ms, duration ms); raises to keep it for later.
Store = Callable[[int, bytes, int, int], None]

FLUSH_S = 5.0  # how often placed audio is mixed and encoded
CHUNK_S = 10.0  # how much recording one stored chunk holds: the most a crash can lose
SAVE_RETRIES_S = (0.5, 1.0, 2.0, 4.0)  # at the end, how long a failing store is retried


class RecordingGone(Exception):
    """The conversation no longer exists (deleted meanwhile): stop recording it, quietly."""


_executor: ThreadPoolExecutor | None = None


def executor() -> ThreadPoolExecutor:
    """The process's recording threads, shared by all conversations like a connection pool."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="recording")
    return _executor


class ChunkWriter:
    """Mix, encode and store one recording's audio (runs in a worker thread, one call at a time)."""

    def __init__(self, *, seq: int, start: int, store: Store, chunk_samples: int) -> None:
        self.mixer = Mixer(start=start)
        self.encoder = Mp3Encoder()
        self.store = store
        self.seq = seq
        self.chunk_samples = chunk_samples
        self._chunk_start = start
        self._mp3 = bytearray()
        self._unsaved: list[tuple[int, bytes, int, int]] = []
        self.gone = False

    def write(self, events: list[Event], upto: int, *, final: bool = False) -> None:
        """Mix up to `upto` (at the end: everything), encode, and store each full chunk."""
        if self.gone:
            return
        self.mixer.feed(events)
        if final:
            upto = max(upto, self.mixer.pending_end())
        self._mp3 += self.encoder.encode(self.mixer.mix(upto))
        if final:
            self._mp3 += self.encoder.flush()
        end = self.mixer.emitted
        # At the end, also the encoder's last frames alone (they hold the tail of the audio it looked ahead on).
        if (final and (end > self._chunk_start or self._mp3)) or end - self._chunk_start >= self.chunk_samples:
            start_ms, end_ms = self._chunk_start // SAMPLES_PER_MS, end // SAMPLES_PER_MS
            self._unsaved.append((self.seq, bytes(self._mp3), start_ms, end_ms - start_ms))
            self.seq += 1
            self._chunk_start = end
            self._mp3.clear()
        self.save(retries=SAVE_RETRIES_S if final else ())

    def save(self, *, retries: tuple[float, ...] = ()) -> None:
        """Store the finished chunks in order; a failure keeps them for the next call (or retries, at the end)."""
        delays = list(retries)
        while self._unsaved:
            seq, data, start_ms, duration_ms = self._unsaved[0]
            try:
                self.store(seq, data, start_ms, duration_ms)
            except RecordingGone:
                self.gone = True
                self._unsaved.clear()
                return
            except Exception:  # noqa: BLE001 - storage or database away: keep the chunk and try later
                if not delays:
                    logger.warning("Recording chunk %d could not be stored yet", seq, exc_info=True)
                    return
                time.sleep(delays.pop(0))
                continue
            self._unsaved.pop(0)

    @property
    def unsaved(self) -> int:
        """How many finished chunks are still waiting to be stored."""
        return len(self._unsaved)


class Recorder:
    """One stretch of a conversation's recording: from when it starts (or recording is turned on) to its end."""

    def __init__(
        self,
        *,
        store: Store,
        seq: int = 0,
        base_ms: int = 0,
        flush_s: float = FLUSH_S,
        chunk_s: float = CHUNK_S,
        clock: Callable[[], float] = time.monotonic,
        pool: ThreadPoolExecutor | None = None,
    ) -> None:
        self.timeline = Timeline(base_ms=base_ms, clock=clock)
        self._writer = ChunkWriter(seq=seq, start=self.timeline.base, store=store,
                                   chunk_samples=int(chunk_s * 1000) * SAMPLES_PER_MS)
        self._flush_s = flush_s
        self._pool = pool
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start mixing and storing in the background."""
        self._task = asyncio.create_task(self._run(), name="recording")

    async def close(self, timeout: float = 15.0) -> None:
        """Cut the assistant where it stands, then mix, encode and store the rest; waits at most `timeout`."""
        self._closing.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            logger.error("The recording was still being written after %ss; its end may be missing", timeout)
        except Exception:  # noqa: BLE001 - the conversation still ends cleanly
            logger.exception("The recording failed at its end")

    def abandon(self) -> None:
        """Stop without storing anything more (the conversation was deleted)."""
        self._writer.gone = True
        self._closing.set()

    def next_place(self) -> tuple[int, int]:
        """The chunk number and timeline position (ms) a later stretch of this recording starts at."""
        return self._writer.seq, self._writer.mixer.emitted // SAMPLES_PER_MS

    async def _run(self) -> None:
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self._flush_s)
            if self._closing.is_set():
                break
            events, upto = self.timeline.drain()
            await self._write(events, upto, final=False)
        events, upto = self.timeline.close()
        await self._write(events, upto, final=True)

    async def _write(self, events: list[Event], upto: int, *, final: bool) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._pool or executor(), lambda: self._writer.write(events, upto, final=final))
        except Exception:  # noqa: BLE001 - a broken recording never breaks the conversation
            logger.exception("Recording: mixing or encoding failed")
