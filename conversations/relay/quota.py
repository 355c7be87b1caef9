"""Limits at the relay: admitting a conversation at Start, and counting what it uses while it runs."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache

from .. import selectors, selectors_limits
from ..limits import (
    HEARTBEAT_S,
    WARN_AT,
    Limits,
    LimitStore,
    Totals,
    Verdict,
    describe,
    levels,
    over_budget,
    store_for,
    too_long,
    too_many_live,
    too_many_new,
    usage_summary,
)
from ..outage import REDIS_DOWN, redis_outage
from ..pricing import Price, estimate
from .effects import TurnAudio, UsageRecorded

logger = logging.getLogger(__name__)


class LimitReached(Exception):
    """A conversation may not start: the verdict says which limit, in plain words, and when it resets."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.message)
        self.verdict = verdict


# While Redis is away new conversations are admitted on counters in this process's memory (README "When
# things fail"): one cache for the process, like a connection pool; the counters are seeded from the ledger.
_local_cache = LocMemCache("voiceapp-limits-while-redis-is-away", {})
# How often a conversation counting locally tries to move its counters back to Redis.
RECOVERY_PROBE_S = 5.0


def limit_store() -> LimitStore:
    """This process's limit store: Redis when REDIS_URL is set, else the local cache."""
    return store_for(prefix=settings.LIMIT_KEY_PREFIX, tz=ZoneInfo(settings.TIME_ZONE),
                     redis_url=settings.REDIS_URL, cache=cache)


def local_limit_store() -> LimitStore:
    """The store in this process's memory that stands in for Redis while it is away."""
    return store_for(prefix=settings.LIMIT_KEY_PREFIX, tz=ZoneInfo(settings.TIME_ZONE), redis_url="",
                     cache=_local_cache)


async def ledger_totals(user_id: Any, now: datetime) -> Totals:
    """The user's totals as the database's ledger has them (one aggregate query)."""
    return await database_sync_to_async(selectors_limits.ledger_totals)(user_id=user_id, now=now)


async def user_totals(store: LimitStore, user_id: Any, now: datetime) -> Totals:
    """The user's totals from the store, seeded from the ledger (one aggregate query) when it has none."""
    totals = await store.totals(user_id, now)
    if totals is None:
        await store.seed(user_id, await ledger_totals(user_id, now), now)
        totals = await store.totals(user_id, now)
    return totals or Totals()


async def admit(user: Any, *, new: bool) -> ConversationQuota:
    """Check a user's limits before a conversation starts (or continues); raise LimitReached to refuse it.

    With Redis away the same checks run on this process's own counters, freshly taken from the ledger:
    the conversation starts, and its counts move back to Redis when it returns.
    """
    store = limit_store()
    if store.redis is None:
        return await _admit(store, user, new=new)
    try:
        quota = await _admit(store, user, new=new)
    except REDIS_DOWN as exc:
        redis_outage.failed(exc, "admitting a conversation")
        local = local_limit_store()
        await local.reset(user.pk, await ledger_totals(user.pk, datetime.now(timezone.utc)), datetime.now(timezone.utc))
        quota = await _admit(local, user, new=new)
        quota.redis_store = store  # its probe starts with the conversation (start)
        return quota
    redis_outage.recovered()
    return quota


async def _admit(store: LimitStore, user: Any, *, new: bool) -> ConversationQuota:
    now = datetime.now(timezone.utc)
    limits = await database_sync_to_async(selectors_limits.limits_for_user)(user_id=user.pk)
    totals = await user_totals(store, user.pk, now)
    verdict = over_budget(limits, totals, now, store.tz)
    if verdict is not None:
        raise LimitReached(verdict)
    slot = uuid.uuid4().hex
    if await store.claim(user.pk, slot, limits.max_concurrent) is not None:
        raise LimitReached(too_many_live(limits))
    if new:
        resets_at = await store.hit_new(user.pk, limits.new_per_hour)
        if resets_at is not None:
            await store.release(user.pk, slot)
            raise LimitReached(too_many_new(limits, resets_at, now, store.tz))
    prices = await database_sync_to_async(selectors.price_list)()
    return ConversationQuota(store=store, user_id=user.pk, slot=slot, limits=limits, prices=prices, totals=totals)


class ConversationQuota:
    """One live conversation's share of its owner's limits: counts its audio and cost, warns at 80%, stops at 100%.

    Every count goes to the store in a task of its own, so the relay never waits on Redis; what a reply
    costs is computed here from the price rows read once at Start, the same way the ledger computes it.
    """

    def __init__(self, *, store: LimitStore, user_id: Any, slot: str, limits: Limits, prices: Sequence[Price],
                 totals: Totals | None = None) -> None:
        self.store, self.user_id, self.slot, self.limits, self.prices = store, user_id, slot, limits, prices
        # The Redis store while this conversation counts in this process's memory (Redis is away), else None.
        self.redis_store: LimitStore | None = None
        self.totals = totals or Totals()  # the owner's latest totals, for `ready` and the meter
        # Counts go to the store one at a time, in the order they were made, so the totals reported
        # after a reply include every count made before it (asyncio.Lock wakes waiters in order).
        self._counting = asyncio.Lock()
        self.deployment = ""
        self.warned: set[str] = set()
        self.reached: Verdict | None = None
        self._audio: dict[str, int] = {}  # ms counted per item: a later, shorter length (a cut) takes some back
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: list[asyncio.TimerHandle] = []
        self._warn: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        self._stop: Callable[[Verdict], Awaitable[None]] | None = None
        self._closed = False

    def start(self, *, deployment: str, warn: Callable[[dict[str, Any]], Awaitable[None]],
              stop: Callable[[Verdict], Awaitable[None]]) -> None:
        """Start the heartbeat that keeps the slot and the longest-conversation timers.

        `warn` sends a message to the page: the warnings, and the `usage` message after each reply.
        """
        self.deployment, self._warn, self._stop = deployment, warn, stop
        self._spawn(self._heartbeat())
        if self.redis_store is not None:
            self._spawn(self._probe())
        minutes = self.limits.max_conversation_minutes
        if minutes is not None:
            loop, seconds = asyncio.get_running_loop(), float(minutes) * 60
            self._timers = [
                loop.call_later(seconds * WARN_AT, lambda: self._spawn(self._warn_once(too_long(self.limits, reached=False)))),
                loop.call_later(seconds, lambda: self._spawn(self._reach(too_long(self.limits, reached=True)))),
            ]

    def count(self, effect: UsageRecorded | TurnAudio) -> None:
        """Count what one effect used, in the background."""
        if isinstance(effect, TurnAudio):
            delta = effect.audio_ms - self._audio.get(effect.item_id, 0)
            self._audio[effect.item_id] = effect.audio_ms
            if delta:
                self._spawn(self._add(audio_ms=delta))
            return
        cost = estimate(effect.usage, model=effect.model, deployment=self.deployment, prices=self.prices,
                        deployment_models=settings.REALTIME_DEPLOYMENT_MODELS).usd
        # A reply's usage comes once, at its end: counted (even when free) and then reported to the meter.
        self._spawn(self._add(cost=cost or Decimal(0), report=True))

    def summary(self) -> dict[str, Any]:
        """The owner's use today and this month against their limits (the `usage` message without its type)."""
        return usage_summary(self.limits, self.totals, datetime.now(timezone.utc), self.store.tz)

    async def close(self) -> None:
        """Stop counting and free the slot (the conversation ended)."""
        self._closed = True
        for timer in self._timers:
            timer.cancel()
        current = asyncio.current_task()
        pending = [t for t in self._tasks if t is not current]
        for task in pending:
            if task.get_name() == "limits-heartbeat":
                task.cancel()
        # Counts already on their way are finished: the counters must match the ledger.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 5.0)
        try:
            await self.store.release(self.user_id, self.slot)
        except REDIS_DOWN as exc:  # the slot expires by itself
            redis_outage.failed(exc, "freeing a live slot")
        except Exception:  # noqa: BLE001 - the slot expires by itself
            logger.warning("Could not free the live slot of user %s; it expires on its own", self.user_id,
                           exc_info=True)

    async def _add(self, *, audio_ms: int = 0, cost: Decimal = Decimal(0), report: bool = False) -> None:
        try:
            async with self._counting:
                try:
                    totals = await self.store.add(self.user_id, audio_ms=audio_ms, cost=cost,
                                                  now=datetime.now(timezone.utc))
                except REDIS_DOWN as exc:
                    # Count on in this process (the ledger has it anyway): the limits still hold during the outage.
                    redis_outage.failed(exc, "counting usage")
                    await self._count_locally()
                    totals = await self.store.add(self.user_id, audio_ms=audio_ms, cost=cost,
                                                  now=datetime.now(timezone.utc))
        except Exception:  # noqa: BLE001 - the ledger still has it, a rebuild restores the counters
            logger.warning("Could not count usage of user %s towards their limits", self.user_id, exc_info=True)
            return
        self.totals = totals
        if report and self._warn is not None:
            # Also while closing: the conversation's end waits for this count before its farewell, so the meter
            # shows the last reply (which may be the one that reached the limit) before the page is told why.
            await self._warn({"type": "usage", **self.summary()})
        if self._closed:
            return
        now = datetime.now(timezone.utc)
        for limit, share in levels(self.limits, totals).items():
            if share >= 1.0:
                await self._reach(describe(limit, self.limits, now, self.store.tz, reached=True))
                return
            if share >= WARN_AT:
                await self._warn_once(describe(limit, self.limits, now, self.store.tz, reached=False))

    async def _warn_once(self, verdict: Verdict) -> None:
        if verdict.limit in self.warned or self._warn is None or self.reached is not None:
            return
        self.warned.add(verdict.limit)
        await self._warn(verdict.browser_message("limit_warning", reached=False))

    async def _reach(self, verdict: Verdict) -> None:
        if self.reached is not None or self._stop is None or self._closed:
            return
        self.reached = verdict
        await self._stop(verdict)

    async def _count_locally(self) -> None:
        """Move this conversation's counting into this process (Redis is away), from the ledger's totals."""
        if self.redis_store is not None:
            return  # already counting locally
        local, now = local_limit_store(), datetime.now(timezone.utc)
        await local.reset(self.user_id, await ledger_totals(self.user_id, now), now)
        await local.claim(self.user_id, self.slot, None)
        self.redis_store, self.store = self.store, local
        self._spawn(self._probe())

    async def back_to_redis(self) -> bool:
        """Try to move counting back to Redis: its slot re-registered, its counters rebuilt from the ledger."""
        redis_store = self.redis_store
        if redis_store is None:
            return True
        now = datetime.now(timezone.utc)
        try:
            await redis_store.claim(self.user_id, self.slot, None)  # re-registers the slot, whatever the limit
            await redis_store.reset(self.user_id, await ledger_totals(self.user_id, now), now)
        except REDIS_DOWN as exc:
            redis_outage.failed(exc, "re-registering a live slot")
            return False
        redis_outage.recovered()
        local, self.store, self.redis_store = self.store, redis_store, None
        with contextlib.suppress(Exception):
            await local.release(self.user_id, self.slot)
        logger.info("Limits of user %s are counted in Redis again", self.user_id)
        return True

    async def _probe(self) -> None:
        """Every RECOVERY_PROBE_S, try to move counting back to Redis, until it worked (or the conversation ended)."""
        while not self._closed:
            await asyncio.sleep(RECOVERY_PROBE_S)
            if self._closed or await self.back_to_redis():
                return

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            if self.redis_store is not None:
                continue  # counting locally: the probe moves the slot back to Redis
            try:
                await self.store.refresh(self.user_id, self.slot)
            except REDIS_DOWN as exc:
                redis_outage.failed(exc, "refreshing a live slot")
                with contextlib.suppress(Exception):
                    async with self._counting:
                        await self._count_locally()
            except Exception:  # noqa: BLE001 - try again at the next beat
                logger.warning("Could not refresh a live slot of user %s", self.user_id, exc_info=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        if getattr(coro, "__name__", "") in ("_heartbeat", "_probe"):  # cancelled, not awaited, at the end
            task.set_name("limits-heartbeat")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
