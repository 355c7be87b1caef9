"""Persistence off the audio path: writes are queued in memory and applied by a background task."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async

from . import services
from .realtime.protocol import Usage

logger = logging.getLogger(__name__)


class ConversationRecorder:
    """Queue the writes of one conversation and apply them in batches, in order, without blocking the relay."""

    def __init__(self, conversation_id: Any) -> None:
        self.conversation_id = conversation_id
        self._queue: asyncio.Queue[services.RecordOp | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the background writer."""
        self._task = asyncio.create_task(self._run(), name=f"recorder-{self.conversation_id}")

    def _put(self, func: Any, **kwargs: Any) -> None:
        self._queue.put_nowait((func, {"conversation_id": self.conversation_id, **kwargs}))

    def turn(self, *, item_id: str, role: str, position: int, response_id: str = "", text: str = "") -> None:
        """Queue a new turn at its place in the conversation."""
        self._put(services.turn_add, item_id=item_id, role=role, position=position, response_id=response_id, text=text)

    def text(self, *, item_id: str, text: str) -> None:
        """Queue the final text of a turn."""
        self._put(services.turn_set_text, item_id=item_id, text=text)

    def audio(self, *, item_id: str, audio_ms: int, interrupted: bool = False) -> None:
        """Queue a turn's audio length and interruption."""
        self._put(services.turn_set_audio, item_id=item_id, audio_ms=audio_ms, interrupted=interrupted)

    def usage(self, *, response_id: str, model: str, status: str, usage: Usage) -> None:
        """Queue the token usage of a response."""
        self._put(services.usage_record, response_id=response_id, model=model, status=status, usage=usage)

    def session(self, *, upstream_session_id: str) -> None:
        """Queue the upstream session id."""
        self._put(services.conversation_set_session, upstream_session_id=upstream_session_id)

    def end(self, *, failed: bool = False, error: str = "") -> None:
        """Queue the end of the conversation."""
        self._put(services.conversation_end, failed=failed, error=error)

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            ops = [op for op in batch if op is not None]
            if ops:
                await database_sync_to_async(services.conversation_record)(ops=ops)
            if None in batch:
                return

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
            logger.exception("Conversation %s: the writer failed", self.conversation_id)
