"""The conversation journal: the relay's writes, queued in memory and applied in order off the audio path.

One writer task per conversation applies what is queued in batches. A database that is away (down,
restarting, refusing connections) is waited out with capped exponential backoff for as long as the
conversation lives, and later writes wait behind the failed batch so the order holds. A batch that fails
for any other reason (a constraint, bad data, a bug) is retried one write at a time, so only the write
that fails is set aside and logged, and everything after it is still stored. At the end the journal
waits for what is queued within JOURNAL_CLOSE_TIMEOUT_SECONDS, then names each write it could not store.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from itertools import islice
from typing import Any

from channels.db import database_sync_to_async
from django.db import InterfaceError, OperationalError

from . import services
from .relay.effects import JournalOp, describe

logger = logging.getLogger(__name__)

# Backoff while the database is away: from RETRY_BASE_S doubling up to RETRY_MAX_S, each scaled by a random
# 0.5–1 so that conversations that failed together do not all come back in the same instant.
RETRY_BASE_S = 0.25
RETRY_MAX_S = 4.0
# At most this many writes in one transaction: a backlog after an outage goes in in several steps.
BATCH_MAX = 200
# Errors that say the database is away rather than that a write is wrong: waited out, never set aside.
TRANSIENT = (OperationalError, InterfaceError, ConnectionError, TimeoutError)

Apply = Callable[[Any, list[JournalOp]], Awaitable[None]]


async def apply_through_services(conversation_id: Any, ops: list[JournalOp]) -> None:
    """Apply a batch in one transaction on Channels' database thread (which drops dead connections first)."""
    await database_sync_to_async(services.journal_apply)(conversation_id=conversation_id, ops=ops)


def retry_delay(failures: int, base_s: float = RETRY_BASE_S, max_s: float = RETRY_MAX_S) -> float:
    """The wait before try number `failures` + 1: base·2^(failures-1), capped at max_s, scaled by 0.5–1."""
    return min(max_s, base_s * 2 ** max(0, failures - 1)) * random.uniform(0.5, 1.0)


def close_timeout() -> float:
    """How long the end of a conversation waits for its queued writes (JOURNAL_CLOSE_TIMEOUT_SECONDS)."""
    from django.conf import settings

    return float(settings.JOURNAL_CLOSE_TIMEOUT_SECONDS)


class Journal:
    """Queue one conversation's writes and apply them in batches, in order, without blocking the relay."""

    def __init__(self, conversation_id: Any, *, apply: Apply = apply_through_services,
                 retry_base_s: float = RETRY_BASE_S, retry_max_s: float = RETRY_MAX_S, batch_max: int = BATCH_MAX) -> None:
        self.conversation_id = conversation_id
        self._apply = apply
        self.retry_base_s, self.retry_max_s, self.batch_max = retry_base_s, retry_max_s, batch_max
        # Written writes leave from the left only once the database took them: a failed batch stays first.
        self._pending: deque[JournalOp] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._abandoned = False
        self._closing = False
        self._closed = False
        self._in_flight = 0  # writes of the batch being applied right now (may be stored if time runs out)
        self.set_aside: list[JournalOp] = []  # writes that failed on their own and were skipped
        self.not_stored: list[JournalOp] = []  # writes still queued when the close gave up, or put after it
        self.retries = 0  # failed tries while the database was away, over the journal's life

    def start(self) -> None:
        """Start the background writer."""
        self._task = asyncio.create_task(self._run(), name=f"journal-{self.conversation_id}")

    def put(self, op: JournalOp) -> None:
        """Queue one write; never waits (and does nothing once the journal was abandoned)."""
        if self._abandoned:
            return
        if self._closed:
            # Nothing will write it any more: said precisely rather than dropped quietly.
            self.not_stored.append(op)
            logger.error("Conversation %s: write not stored (it came after the journal closed): %s",
                         self.conversation_id, describe(op))
            return
        self._pending.append(op)
        self._wake.set()

    def abandon(self) -> None:
        """Drop every write not yet applied, and those still to come: the conversation was deleted."""
        # The writer drops what is queued, so a close that is waiting returns at once.
        self._abandoned = True
        self._wake.set()

    @property
    def pending(self) -> int:
        """How many writes wait to be stored."""
        return len(self._pending)

    async def _run(self) -> None:
        failures = 0
        while True:
            if self._abandoned:
                self._pending.clear()
            if not self._pending:
                if self._closing or self._abandoned:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = list(islice(self._pending, self.batch_max))
            error = await self._store(batch)
            if error is None:
                if failures:
                    logger.warning("Conversation %s: the database is back; writes go on after %d failed tries",
                                   self.conversation_id, failures)
                    failures = 0
                continue
            failures += 1
            self.retries += 1
            delay = retry_delay(failures, self.retry_base_s, self.retry_max_s)
            log = logger.warning if failures == 1 else logger.info
            log("Conversation %s: database unavailable (%s: %s); %d writes wait, retrying in %.1fs",
                self.conversation_id, type(error).__name__, _one_line(error), len(self._pending), delay)
            await asyncio.sleep(delay)

    async def _store(self, batch: list[JournalOp]) -> BaseException | None:
        """Store `batch` (dequeuing what was stored); return the error if the database is away, else None."""
        try:
            await self._attempt(batch)
        except TRANSIENT as exc:
            return exc
        except Exception:  # noqa: BLE001 - one write is wrong: find it, store the rest
            return await self._one_by_one(batch)
        self._done(len(batch))
        return None

    async def _one_by_one(self, batch: list[JournalOp]) -> BaseException | None:
        """Store a failed batch one write at a time: set aside only the writes that fail on their own."""
        for op in batch:
            try:
                await self._attempt([op])
            except TRANSIENT as exc:
                return exc  # the rest stay queued, first in line, for the retry
            except Exception as exc:  # noqa: BLE001
                self.set_aside.append(op)
                logger.error("Conversation %s: write set aside, it failed on its own (%s: %s): %s",
                             self.conversation_id, type(exc).__name__, _one_line(exc), describe(op))
            self._done(1)
        return None

    async def _attempt(self, ops: list[JournalOp]) -> None:
        self._in_flight = len(ops)
        try:
            await self._apply(self.conversation_id, ops)
        except asyncio.CancelledError:
            raise  # the close gave up mid-write: it reports these as maybe stored
        except BaseException:
            self._in_flight = 0
            raise
        self._in_flight = 0

    def _done(self, count: int) -> None:
        if self._abandoned:
            return  # abandon() emptied the queue under us
        for _ in range(count):
            self._pending.popleft()

    def give_up(self, why: str) -> None:
        """Stop now and name every write still queued as not stored (the end was cut short)."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        if self._abandoned or not self._pending:
            self._pending.clear()
            return
        self._report_unsaved(why)

    def _report_unsaved(self, why: str) -> None:
        unsaved, self._pending = list(self._pending), deque()
        in_flight = self._in_flight
        self.not_stored.extend(unsaved)
        logger.error("Conversation %s: %d writes not stored: %s%s", self.conversation_id, len(unsaved), why,
                     f" (the first {in_flight} were being written and may have been stored)" if in_flight else "")
        for op in unsaved:
            logger.error("Conversation %s: not stored: %s", self.conversation_id, describe(op))

    async def close(self, timeout: float | None = None) -> None:
        """Store everything queued (including writes put while this waits), then stop; waits at most `timeout` s.

        What the database did not take by then is logged, one line per write, and kept in `not_stored`.
        """
        timeout = close_timeout() if timeout is None else timeout
        task = self._task
        self._closing = True
        self._wake.set()
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                task.cancel()
                await asyncio.wait({task})
        if self._closed:
            return  # given up meanwhile: already reported
        self._closed = True
        if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
            logger.error("Conversation %s: the journal's writer failed", self.conversation_id,
                         exc_info=task.exception())
        if self._abandoned or not self._pending:
            self._pending.clear()
            return
        self._report_unsaved(f"the database did not take them within {timeout:g}s of the end")


def _one_line(exc: BaseException) -> str:
    """An error's message on one short line (psycopg's run over several)."""
    return " ".join(str(exc).split())[:200]
