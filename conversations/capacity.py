"""Protecting the deployment: a cap on its concurrent upstream sessions, and a cool-down when the service says "slow down".

No models and no Django. The counters share the per-user limits' store (`limits.LimitStore`): its Redis
client when there is one (every worker sees the same slots and cool-down), else its cache (one process).
Slots are a sorted set scored by expiry, as the per-user live slots are, so a crashed worker's slots free
themselves within `SLOT_TTL_S`.
"""
from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .limits import SLOT_TTL_S, LimitStore

# A rate_limits.updated entry with less than this share of its limit left counts as "near 0".
LOW_REMAINING_SHARE = 0.02
# However long the service asks for, admission is never held shut longer than this by one report.
MAX_COOL_DOWN_S = 300.0

# Atomically: refuse while cooling down (returns -2 and until when), drop expired slots, refuse past the
# cap (returns how many are held and the earliest expiry), else take the slot (returns -1).
_CLAIM = """
local now = tonumber(ARGV[1])
local cooling = tonumber(redis.call('GET', KEYS[2]) or '0')
if cooling > now then return {-2, tostring(cooling)} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[4])
if limit > 0 and not redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  local n = redis.call('ZCARD', KEYS[1])
  if n >= limit then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {n, first[2]}
  end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {-1, '0'}
"""

# Push the cool-down's end later, never earlier: two workers reporting at once keep the longer wait.
_COOL = """
local ends = tonumber(ARGV[1])
if ends > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
end
return redis.call('GET', KEYS[1])
"""


@dataclass(frozen=True)
class Busy:
    """A refusal: the deployment is full ("full") or cooling down ("cooling"); try again in `retry_after_s`."""

    reason: str
    retry_after_s: int

    @property
    def message(self) -> str:
        """Plain words for the page."""
        return f"The voice service is busy right now; try again in {self.retry_after_s} s."

    def browser_message(self) -> dict[str, Any]:
        """The fatal `error` the page gets before the socket closes with 4503."""
        return {"type": "error", "code": "busy", "reason": self.reason, "message": self.message,
                "retry_after_s": self.retry_after_s, "fatal": True}


def full_wait(base_s: float, rng: random.Random | None = None) -> int:
    """How long to wait when every slot is held: nobody knows when a conversation ends, so a backoff with jitter.

    ±25% so that pages refused together do not all come back in the same second.
    """
    factor = (rng or random).uniform(0.75, 1.25)
    return max(1, round(base_s * factor))


def cooling_wait(until: float, now: float) -> int:
    """Whole seconds left of a cool-down (at least 1)."""
    # Less a millisecond: Redis's Lua prints the stored end with 14 significant digits, a few tens of
    # microseconds off, which must not turn 12 s into 13.
    return max(1, math.ceil(until - now - 0.001))


def rate_limits_wait(rate_limits: Iterable[Any]) -> float | None:
    """How long to slow admission after a `rate_limits.updated`: the reset of any requests/tokens limit near 0."""
    waits = []
    for entry in rate_limits:
        if not isinstance(entry, dict) or entry.get("name") not in ("requests", "tokens"):
            continue
        limit, remaining, reset = entry.get("limit"), entry.get("remaining"), entry.get("reset_seconds")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (limit, remaining, reset)):
            continue
        if limit > 0 and remaining <= limit * LOW_REMAINING_SHARE:
            waits.append(max(1.0, float(reset)))
    return max(waits) if waits else None


class DeploymentGate:
    """The shared slots and cool-down of one provider's deployment, in the limits' store."""

    def __init__(self, store: LimitStore, *, provider: str, deployment: str) -> None:
        self.store = store
        base = f"{store.prefix}deployment:{provider}:{deployment}:"
        self.live_key, self.cool_key = base + "live", base + "cooldown"
        if store.redis is not None:
            self._claim = store.redis.register_script(_CLAIM)
            self._cool = store.redis.register_script(_COOL)
        else:
            self._lock = _local_lock(store)

    async def claim(self, slot: str, limit: int, *, full_wait_s: float) -> Busy | None:
        """Take a slot for an upstream session; a Busy (nothing taken) while cooling down or when `limit` are held."""
        now = time.time()
        if self.store.redis is not None:
            n, score = await self._claim(keys=[self.live_key, self.cool_key],
                                         args=[now, now + SLOT_TTL_S, slot, limit, SLOT_TTL_S * 2])
            n = int(n)
            if n == -2:
                return Busy("cooling", cooling_wait(float(score), now))
            return None if n < 0 else Busy("full", full_wait(full_wait_s))
        cache = self.store.cache
        with self._lock:
            cooling = cache.get(self.cool_key) or 0.0
            if cooling > now:
                return Busy("cooling", cooling_wait(cooling, now))
            slots = {s: t for s, t in (cache.get(self.live_key) or {}).items() if t > now}
            if limit and slot not in slots and len(slots) >= limit:
                return Busy("full", full_wait(full_wait_s))
            slots[slot] = now + SLOT_TTL_S
            cache.set(self.live_key, slots, timeout=SLOT_TTL_S * 2)
        return None

    async def refresh(self, slot: str) -> None:
        """Keep a slot from expiring (its holder is alive), whatever the cool-down says."""
        now = time.time()
        if self.store.redis is not None:
            async with self.store.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(self.live_key, {slot: now + SLOT_TTL_S})
                pipe.expire(self.live_key, SLOT_TTL_S * 2)
                await pipe.execute()
            return
        with self._lock:
            slots = {s: t for s, t in (self.store.cache.get(self.live_key) or {}).items() if t > now}
            slots[slot] = now + SLOT_TTL_S
            self.store.cache.set(self.live_key, slots, timeout=SLOT_TTL_S * 2)

    async def release(self, slot: str) -> None:
        """Free a slot as its conversation stops using the service."""
        if self.store.redis is not None:
            await self.store.redis.zrem(self.live_key, slot)
            return
        with self._lock:
            slots = self.store.cache.get(self.live_key) or {}
            slots.pop(slot, None)
            self.store.cache.set(self.live_key, slots, timeout=SLOT_TTL_S * 2)

    async def held(self) -> int:
        """How many slots are held now (expired ones not counted)."""
        now = time.time()
        if self.store.redis is not None:
            return int(await self.store.redis.zcount(self.live_key, f"({now}", "+inf"))
        return sum(1 for t in (self.store.cache.get(self.live_key) or {}).values() if t > now)

    async def cool_down(self, seconds: float) -> float:
        """Refuse new conversations for `seconds` from now (capped), unless a longer cool-down runs; returns its end."""
        until = time.time() + min(max(seconds, 0.0), MAX_COOL_DOWN_S)
        if self.store.redis is not None:
            return float(await self._cool(keys=[self.cool_key], args=[until, math.ceil(until) + 1]))
        with self._lock:
            current = self.store.cache.get(self.cool_key) or 0.0
            if until > current:
                self.store.cache.set(self.cool_key, until, timeout=math.ceil(until - time.time()) + 1)
                current = until
        return current

    async def cooling_until(self) -> float | None:
        """When the current cool-down ends, or None."""
        if self.store.redis is not None:
            value = await self.store.redis.get(self.cool_key)
        else:
            value = self.store.cache.get(self.cool_key)
        until = float(value) if value is not None else 0.0
        return until if until > time.time() else None


_locks: dict[int, threading.Lock] = {}


def _local_lock(store: LimitStore) -> threading.Lock:
    """One lock per cache-backed store: its read-modify-write of the slots must not interleave across threads."""
    return _locks.setdefault(id(store.cache), threading.Lock())
