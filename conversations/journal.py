"""The conversation journal: the relay's writes, queued in memory and applied in order off the audio path."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async
from django.db import InterfaceError, OperationalError

from . import services
from .relay.effects import JournalOp

logger = logging.getLogger(__name__)

# How long a database outage is waited out before the queued writes are given up (and logged).
RETRY_DELAYS_S = (0.5, 1, 2, 4, 8, 15)


class Journal:
    """Queue one conversation's writes and apply them in batches, in order, without blocking the relay."""

    def __init__(self, conversation_id: Any) -> None:
        self.conversation_id = conversation_id
        self._queue: asyncio.Queue[JournalOp | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._abandoned = False

    def start(self) -> None:
        """Start the background writer."""
        self._task = asyncio.create_task(self._run(), name=f"journal-{self.conversation_id}")

    def put(self, op: JournalOp) -> None:
        """Queue one write; never waits (and does nothing once the journal was abandoned)."""
        if not self._abandoned:
            self._queue.put_nowait(op)

    def abandon(self) -> None:
        """Drop every write not yet applied, and those still to come: the conversation was deleted."""
        # Queued writes are skipped by the writer rather than drained here, so a queued close still arrives.
        self._abandoned = True

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            ops = [op for op in batch if op is not None]
            if ops and not self._abandoned:
                await self._apply(ops)
            if None in batch:
                return

    async def _apply(self, ops: list[JournalOp]) -> None:
        """Apply a batch, waiting out a database outage so that nothing said is lost to a blip."""
        for delay in (*RETRY_DELAYS_S, None):
            if self._abandoned:
                return
            try:
                await database_sync_to_async(services.journal_apply)(conversation_id=self.conversation_id, ops=ops)
                return
            except (OperationalError, InterfaceError) as exc:
                if delay is None:
                    logger.error("Conversation %s: %d writes lost, the database stayed down: %s",
                                 self.conversation_id, len(ops), exc)
                    return
                logger.warning("Conversation %s: database unavailable (%s); retrying in %ss",
                               self.conversation_id, exc, delay)
                await asyncio.sleep(delay)

    async def close(self, timeout: float = 8.0) -> None:
        """Flush everything queued, then stop; waits at most `timeout` seconds."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except asyncio.TimeoutError:
            logger.error("Conversation %s: %d writes still queued at close", self.conversation_id, self._queue.qsize())
            self._task.cancel()
        except Exception:  # noqa: BLE001
            logger.exception("Conversation %s: the journal failed", self.conversation_id)
