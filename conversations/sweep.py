"""The sweep: conversations left "active" by a worker that died are stored as interrupted.

A worker stopped with SIGTERM ends its conversations itself (relay/lifespan.py); one that is killed or
crashes cannot, and its conversations would stay "active" for good. Every worker therefore looks, every
SWEEP_INTERVAL_SECONDS, for active conversations that no worker lists as live any more (their live-registry
entry expired, conversations/live_registry.py). One seen orphaned is a suspect; still orphaned on a sweep
at least RELAY_GRACE_SECONDS later (its owner's page did not reconnect it meanwhile) and still absent from
the registry read just before the write, it is closed as ended by "interrupted" at the time of its last
turn. The write touches only rows still active, so any number of workers may sweep at once.

Without Redis the registry is this process's own memory and the app is one process: at startup nothing
is live yet, so every active conversation is an orphan and is closed at once.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from channels.db import database_sync_to_async

from . import live_registry, selectors, services
from .relay.registry import live_conversations

logger = logging.getLogger(__name__)


def live_ids() -> set[str]:
    """Conversations live on any worker (the registry) or in this process (even before its heartbeat wrote them)."""
    listed = {entry.conversation_id for entry in live_registry.live_entries()}
    return listed | {c.conversation_id for c in live_conversations.all()}


class Sweeper:
    """Find and close orphaned conversations; remembers its suspects between sweeps."""

    def __init__(self, *, grace_s: float, live: Callable[[], Iterable[str]] = live_ids,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.grace_s = grace_s
        self._live = live
        self._clock = clock
        self._suspects: dict[str, float] = {}  # conversation id -> when it was first seen orphaned

    @property
    def suspects(self) -> list[str]:
        """Conversations seen orphaned and not closed yet."""
        return list(self._suspects)

    async def sweep(self, *, immediate: bool = False) -> list[str]:
        """One sweep; returns the ids it closed. `immediate`: close orphans without waiting for a second look."""
        active = await database_sync_to_async(selectors.active_conversation_ids)()
        if not active:
            self._suspects.clear()
            return []
        live = set(await asyncio.to_thread(self._live))
        now = self._clock()
        self._suspects = {cid: self._suspects.get(cid, now) for cid in active if cid not in live}
        due = [cid for cid, seen in self._suspects.items() if immediate or now - seen >= self.grace_s]
        if not due:
            return []
        live = set(await asyncio.to_thread(self._live))  # once more, right before writing
        due = [cid for cid in due if cid not in live]
        closed = await database_sync_to_async(services.conversations_interrupt)(conversation_ids=due)
        for cid in due:
            self._suspects.pop(cid, None)
        if closed:
            logger.warning("Closed %d conversation(s) left active by a worker that stopped without ending them "
                           "(stored as interrupted): %s", closed, ", ".join(due))
        return due


def grace_from_settings() -> float:
    """How long an orphan is left for its page to reconnect it: the relay's grace period."""
    from django.conf import settings

    return float(settings.RELAY_GRACE_SECONDS)


async def run_sweeps(interval_s: float, *, sweeper: Sweeper | None = None, immediate_first: bool = False) -> None:
    """Sweep every `interval_s` until cancelled; a database or Redis that is away skips a round, never stops it."""
    sweeper = sweeper or Sweeper(grace_s=grace_from_settings())
    immediate = immediate_first
    failing = False
    while True:
        try:
            await sweeper.sweep(immediate=immediate)
            immediate = False
            if failing:
                logger.info("The sweep for interrupted conversations works again")
            failing = False
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the database or Redis is away: nothing is known, nothing closed
            (logger.info if failing else logger.warning)(
                "The sweep for interrupted conversations was skipped: %s: %s", type(exc).__name__, exc)
            failing = True
        await asyncio.sleep(interval_s)


def start_from_settings() -> asyncio.Task[None] | None:
    """Start this process's sweep (ASGI lifespan startup), or None when SWEEP_INTERVAL_SECONDS is 0."""
    from django.conf import settings

    if not settings.SWEEP_INTERVAL_SECONDS:
        return None
    # Without Redis this process is the only one: nothing is live yet, every active conversation is an orphan.
    return asyncio.create_task(run_sweeps(settings.SWEEP_INTERVAL_SECONDS, immediate_first=not settings.REDIS_URL),
                               name="conversation-sweep")


async def sweep_once(*, wait_s: float) -> list[str]:
    """Sweep, wait `wait_s` for pages that are reconnecting, sweep again; returns the ids closed (the command)."""
    sweeper = Sweeper(grace_s=wait_s)
    closed = await sweeper.sweep(immediate=wait_s <= 0)
    if wait_s > 0 and sweeper.suspects:
        await asyncio.sleep(wait_s)
        closed += await sweeper.sweep()
    return closed

