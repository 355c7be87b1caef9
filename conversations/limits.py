"""Per-user limits: what they are, their time windows, where their counters live, and refusals in plain words.

No models here. Counters shared by every worker live in Redis (`LimitStore` with a Redis client);
without Redis (one process) the same rules run on the local-memory cache. The database's ledger
(usage costs, turn audio lengths) is the record: counters missing from the store are seeded from it.
"""
from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from limits import RateLimitItemPerHour
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

MICRO = Decimal("0.000001")  # costs are counted in millionths of a dollar, as they are stored
WARN_AT = 0.8  # share of a limit at which the page is warned, once per limit
# A live conversation's slot expires this long after its last heartbeat, so a worker that dies
# without ending its conversations does not keep their slots: they free themselves.
SLOT_TTL_S = 90
HEARTBEAT_S = 30.0


@dataclass(frozen=True)
class Limits:
    """One user's effective limits; None means unlimited."""

    max_concurrent: int | None = None
    new_per_hour: int | None = None
    audio_minutes_per_day: Decimal | None = None
    cost_per_day_usd: Decimal | None = None
    cost_per_month_usd: Decimal | None = None
    max_conversation_minutes: Decimal | None = None


LIMIT_FIELDS = tuple(f.name for f in fields(Limits))


def _unlimited_if_zero(value: Any) -> Any:
    return None if value is None or value == 0 else value


def site_limits(values: Mapping[str, Any]) -> Limits:
    """The site's defaults from settings values (0 means unlimited)."""
    return Limits(**{name: _unlimited_if_zero(_as_number(name, values.get(name))) for name in LIMIT_FIELDS})


def _as_number(name: str, value: Any) -> Any:
    if value is None:
        return None
    return int(value) if name in ("max_concurrent", "new_per_hour") else Decimal(str(value))


def resolve(site: Limits, groups: Sequence[Mapping[str, Any]], user: Mapping[str, Any] | None) -> Limits:
    """The most specific value wins: the user's own row, then their groups' rows, then the site's defaults.

    In a row, None means "inherit" and 0 "unlimited". When several of a user's groups set a limit,
    the most generous one applies (unlimited beats any number): groups grant, like Django's permissions.
    """
    resolved: dict[str, Any] = {}
    for name in LIMIT_FIELDS:
        own = (user or {}).get(name)
        if own is not None:
            resolved[name] = _unlimited_if_zero(_as_number(name, own))
            continue
        granted = [_as_number(name, g[name]) for g in groups if g.get(name) is not None]
        if granted:
            resolved[name] = None if any(v == 0 for v in granted) else max(granted)
        else:
            resolved[name] = getattr(site, name)
    return Limits(**resolved)


# --- Windows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A calendar window in the site's time zone: its key in the store and when it ends."""

    key: str
    start: datetime
    end: datetime


def day_window(now: datetime, tz: ZoneInfo) -> Window:
    """The local day `now` falls in."""
    local = now.astimezone(tz)
    start = datetime.combine(local.date(), datetime.min.time(), tzinfo=tz)
    end = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return Window(local.strftime("%Y-%m-%d"), start, end)


def month_window(now: datetime, tz: ZoneInfo) -> Window:
    """The local calendar month `now` falls in."""
    local = now.astimezone(tz)
    first = date(local.year, local.month, 1)
    following = date(local.year + (local.month == 12), local.month % 12 + 1, 1)
    return Window(local.strftime("%Y-%m"), datetime.combine(first, datetime.min.time(), tzinfo=tz),
                  datetime.combine(following, datetime.min.time(), tzinfo=tz))


def when_text(moment: datetime, now: datetime, tz: ZoneInfo) -> str:
    """When a limit resets, in plain words: "at 14:05" today, "tomorrow at 00:00", else the date."""
    local, today = moment.astimezone(tz), now.astimezone(tz).date()
    if local.date() == today:
        return f"at {local:%H:%M}"
    if local.date() == today + timedelta(days=1):
        return f"tomorrow at {local:%H:%M}"
    return f"on {local:%Y-%m-%d} at {local:%H:%M}"


# --- Totals and verdicts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """What a user has used in the current windows."""

    audio_ms_today: int = 0
    cost_today: Decimal = Decimal(0)
    cost_month: Decimal = Decimal(0)


@dataclass(frozen=True)
class Verdict:
    """One limit reached (or nearly): which, plain words, and when it resets (None: when something ends)."""

    limit: str
    message: str
    resets_at: datetime | None = None

    def browser_message(self, kind: str, **extra: Any) -> dict[str, Any]:
        """The message the page gets: `error` (fatal) for a refusal, `limit_warning` for a warning."""
        message: dict[str, Any] = {"type": kind, "code": "limit_reached" if kind == "error" else "limit_warning",
                                   "limit": self.limit, "message": self.message,
                                   "resets_at": self.resets_at.isoformat() if self.resets_at else None}
        if kind == "error":
            message["fatal"] = True
        message.update(extra)
        return message


def _minutes(value: Decimal) -> str:
    return f"{Decimal(value).normalize():f}"  # 30, 0.05, 12.5: no trailing zeros


def levels(limits: Limits, totals: Totals) -> dict[str, float]:
    """Each windowed limit's share used (1.0 = reached); limits that are unlimited are left out."""
    out: dict[str, float] = {}
    if limits.audio_minutes_per_day is not None:
        out["audio_per_day"] = totals.audio_ms_today / float(limits.audio_minutes_per_day * 60_000)
    if limits.cost_per_day_usd is not None:
        out["cost_per_day"] = float(totals.cost_today / limits.cost_per_day_usd)
    if limits.cost_per_month_usd is not None:
        out["cost_per_month"] = float(totals.cost_month / limits.cost_per_month_usd)
    return out


def describe(limit: str, limits: Limits, now: datetime, tz: ZoneInfo, *, reached: bool) -> Verdict:
    """Plain words for a windowed limit reached (or at 80%), with when it resets."""
    day, month = day_window(now, tz), month_window(now, tz)
    if limit == "audio_per_day":
        what, resets = f"daily audio limit ({_minutes(limits.audio_minutes_per_day)} minutes)", day.end
    elif limit == "cost_per_day":
        what, resets = f"daily cost limit (${limits.cost_per_day_usd:.2f})", day.end
    else:
        what, resets = f"monthly cost limit (${limits.cost_per_month_usd:.2f})", month.end
    if reached:
        return Verdict(limit, f"You have reached your {what}; it resets {when_text(resets, now, tz)}.", resets)
    return Verdict(limit, f"You have used {int(WARN_AT * 100)}% of your {what}; it resets {when_text(resets, now, tz)}.",
                   resets)


def usage_summary(limits: Limits, totals: Totals, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """Today's and this month's use against the windowed limits, as the talk page's meter shows it.

    Costs are decimal strings to the millionth, as stored; a limit of None is unlimited.
    """
    day, month = day_window(now, tz), month_window(now, tz)

    def usd(value: Decimal | None) -> str | None:
        return None if value is None else f"{Decimal(value):.6f}"

    return {
        "today": {"audio_minutes": round(totals.audio_ms_today / 60_000, 3), "cost_usd": usd(totals.cost_today)},
        "month": {"cost_usd": usd(totals.cost_month)},
        "limits": {
            "audio_minutes_per_day": None if limits.audio_minutes_per_day is None
            else float(limits.audio_minutes_per_day),
            "cost_per_day_usd": usd(limits.cost_per_day_usd),
            "cost_per_month_usd": usd(limits.cost_per_month_usd),
        },
        "resets_at": {"day": day.end.isoformat(), "month": month.end.isoformat()},
    }


def over_budget(limits: Limits, totals: Totals, now: datetime, tz: ZoneInfo) -> Verdict | None:
    """The first windowed limit already reached, for refusing a start; None when all have room."""
    for limit, share in levels(limits, totals).items():
        if share >= 1.0:
            return describe(limit, limits, now, tz, reached=True)
    return None


def too_many_live(limits: Limits) -> Verdict:
    """Refusal: the user has as many live conversations as allowed."""
    n = limits.max_concurrent
    return Verdict("concurrent", f"You already have {n} conversation{'s' if n != 1 else ''} going, the most allowed "
                   "at once. End one (or close its tab and wait a moment) to start another.")


def too_many_new(limits: Limits, resets_at: datetime, now: datetime, tz: ZoneInfo) -> Verdict:
    """Refusal: the user started as many conversations in the last hour as allowed."""
    n = limits.new_per_hour
    return Verdict("new_per_hour", f"You have started {n} conversation{'s' if n != 1 else ''} in the last hour, the "
                   f"most allowed; you can start another {when_text(resets_at, now, tz)}.", resets_at)


def too_long(limits: Limits, *, reached: bool) -> Verdict:
    """The longest-conversation limit, reached or at 80%."""
    what = f"the longest a conversation may run ({_minutes(limits.max_conversation_minutes)} minutes)"
    if reached:
        return Verdict("conversation_minutes", f"This conversation reached {what}. It is saved: press Start to "
                       "continue it.")
    return Verdict("conversation_minutes", f"This conversation has run for {int(WARN_AT * 100)}% of {what}.")


# --- The store -------------------------------------------------------------------------------------

# Claim a live-conversation slot atomically: drop expired slots, refuse past the limit, else add.
_CLAIM = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local limit = tonumber(ARGV[4])
if limit > 0 and not redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  local n = redis.call('ZCARD', KEYS[1])
  if n >= limit then return n end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return -1
"""


class LimitStore:
    """Counters per user: live slots, new conversations per hour, audio and cost per day and month."""

    def __init__(self, *, prefix: str, tz: ZoneInfo, redis_url: str = "", cache: Any = None) -> None:
        self.prefix, self.tz = prefix, tz
        self.redis: Any = None
        self.cache = cache
        if redis_url:
            import redis.asyncio as aioredis

            # A burst of conversations waits briefly for a connection instead of failing past the pool's size.
            self.redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
                redis_url, max_connections=50, timeout=10))
            self._claim = self.redis.register_script(_CLAIM)
            rate_storage: Any = RedisStorage(f"async+{redis_url}", implementation="redispy",
                                             key_prefix=f"{prefix}rate")
        else:
            # One process: its windows in its memory, like its cache and channel layer.
            rate_storage = MemoryStorage()
            self._slots_lock = threading.Lock()
        self.rate = MovingWindowRateLimiter(rate_storage)

    def _keys(self, user_id: Any, now: datetime) -> tuple[tuple[str, Window], ...]:
        day, month = day_window(now, self.tz), month_window(now, self.tz)
        base = f"{self.prefix}{user_id}:"
        return ((base + f"audio:{day.key}", day), (base + f"cost:{day.key}", day), (base + f"cost:{month.key}", month))

    # Totals: read, seeded from the ledger on a miss, added to as a conversation uses them.

    async def totals(self, user_id: Any, now: datetime) -> Totals | None:
        """This user's totals in the current windows; None when the store does not have them (seed them)."""
        keys = [k for k, _ in self._keys(user_id, now)]
        if self.redis is not None:
            values = await self.redis.mget(keys)
        else:
            found = self.cache.get_many(keys)
            values = [found.get(k) for k in keys]
        if any(v is None for v in values):
            return None
        return _totals(*(int(v) for v in values))

    async def seed(self, user_id: Any, totals: Totals, now: datetime) -> None:
        """Store totals computed from the ledger, unless a counter is already there (another worker seeded it)."""
        values = (totals.audio_ms_today, _micro(totals.cost_today), _micro(totals.cost_month))
        for (key, window), value in zip(self._keys(user_id, now), values, strict=True):
            if self.redis is not None:
                await self.redis.set(key, value, nx=True, exat=int(window.end.timestamp()) + 1)
            else:
                self.cache.add(key, value, timeout=_seconds_until(window.end))

    async def add(self, user_id: Any, *, audio_ms: int = 0, cost: Decimal = Decimal(0), now: datetime) -> Totals:
        """Add what a conversation used (atomically, whichever worker does it) and return the new totals."""
        deltas = (audio_ms, _micro(cost), _micro(cost))
        keys = self._keys(user_id, now)
        if self.redis is not None:
            async with self.redis.pipeline(transaction=True) as pipe:
                for (key, window), delta in zip(keys, deltas, strict=True):
                    pipe.incrby(key, delta)
                    pipe.expireat(key, int(window.end.timestamp()) + 1)
                results = await pipe.execute()
            return _totals(*results[0::2])
        values = []
        for (key, window), delta in zip(keys, deltas, strict=True):
            self.cache.add(key, 0, timeout=_seconds_until(window.end))
            values.append(self.cache.incr(key, delta))
        return _totals(*values)

    async def reset(self, user_id: Any, totals: Totals, now: datetime) -> None:
        """Overwrite a user's counters with totals from the ledger (`rebuild_limit_counters`)."""
        values = (totals.audio_ms_today, _micro(totals.cost_today), _micro(totals.cost_month))
        for (key, window), value in zip(self._keys(user_id, now), values, strict=True):
            if self.redis is not None:
                await self.redis.set(key, value, exat=int(window.end.timestamp()) + 1)
            else:
                self.cache.set(key, value, timeout=_seconds_until(window.end))

    # Live slots: a sorted set of slot ids scored by when they expire, refreshed by a heartbeat.

    async def claim(self, user_id: Any, slot: str, limit: int | None) -> int | None:
        """Take a live-conversation slot; None when taken, else how many are in use (the limit is reached)."""
        key, now = f"{self.prefix}{user_id}:live", time.time()
        if self.redis is not None:
            n = await self._claim(keys=[key], args=[now, now + SLOT_TTL_S, slot, limit or 0, SLOT_TTL_S * 2])
            return None if n < 0 else int(n)
        with self._slots_lock:
            slots = {s: t for s, t in (self.cache.get(key) or {}).items() if t > now}
            if limit and slot not in slots and len(slots) >= limit:
                return len(slots)
            slots[slot] = now + SLOT_TTL_S
            self.cache.set(key, slots, timeout=SLOT_TTL_S * 2)
        return None

    async def refresh(self, user_id: Any, slot: str) -> None:
        """Keep a live conversation's slot from expiring."""
        await self.claim(user_id, slot, None)

    async def release(self, user_id: Any, slot: str) -> None:
        """Free a slot as its conversation ends."""
        key = f"{self.prefix}{user_id}:live"
        if self.redis is not None:
            await self.redis.zrem(key, slot)
            return
        with self._slots_lock:
            slots = self.cache.get(key) or {}
            slots.pop(slot, None)
            self.cache.set(key, slots, timeout=SLOT_TTL_S * 2)

    # New conversations per hour: the `limits` library's moving window.

    async def hit_new(self, user_id: Any, per_hour: int | None) -> datetime | None:
        """Count a new conversation; returns when the window has room again if it is full (nothing counted)."""
        if not per_hour:
            return None
        item = RateLimitItemPerHour(per_hour)
        if await self.rate.hit(item, "new", str(user_id)):
            return None
        stats = await self.rate.get_window_stats(item, "new", str(user_id))
        return datetime.fromtimestamp(stats.reset_time, tz=self.tz).replace(second=0, microsecond=0) + timedelta(minutes=1)

    async def forget(self, user_id: Any) -> None:
        """Delete every counter of a user (tests, and a staff reset)."""
        if self.redis is not None:
            keys = [k for pattern in (f"{self.prefix}{user_id}:*", f"{self.prefix}rate:LIMITER/new/{user_id}/*")
                    async for k in self.redis.scan_iter(match=pattern)]
            if keys:
                await self.redis.delete(*keys)
        else:
            await self.rate.storage.reset()

    async def close(self) -> None:
        """Close the Redis connections."""
        if self.redis is not None:
            await self.redis.aclose()


def _micro(usd: Decimal) -> int:
    return int((usd / MICRO).to_integral_value())


def _totals(audio_ms: Any, cost_today: Any, cost_month: Any) -> Totals:
    return Totals(int(audio_ms), int(cost_today) * MICRO, int(cost_month) * MICRO)


def _seconds_until(moment: datetime) -> int:
    return max(1, int(moment.timestamp() - time.time()) + 1)


# Redis clients belong to the event loop that opened them: one store per loop (tests run many loops).
_stores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, LimitStore]] = weakref.WeakKeyDictionary()


def store_for(*, prefix: str, tz: ZoneInfo, redis_url: str, cache: Any) -> LimitStore:
    """The store for this event loop and key prefix."""
    per_loop = _stores.setdefault(asyncio.get_running_loop(), {})
    key = f"{redis_url}|{prefix}"
    if key not in per_loop:
        per_loop[key] = LimitStore(prefix=prefix, tz=tz, redis_url=redis_url, cache=cache)
    return per_loop[key]
