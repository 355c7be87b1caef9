"""Which conversations are live right now, across every worker process: a registry with expiring entries.

Channel-layer groups cannot be listed, so each process also writes an entry for every live conversation
it holds. One heartbeat task per process rewrites them all every few seconds with a time-to-live; an
entry whose worker stops refreshing it (a crash, a kill -9) drops out once that passes. Nothing here
touches the audio path: the relay only adds and removes entries in memory, the heartbeat writes.

With Redis (REDIS_URL) the entries are one hash (field `worker|conversation` → JSON) and one sorted set
(same field → expiry time), pruned on read: hundreds are listed with two commands (a prune script, HVALS). Without Redis the
app is one process, and the list is this process's own entries. No models here.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from .outage import REDIS_DOWN, redis_outage

logger = logging.getLogger(__name__)

# Drops entries whose expiry passed from both structures at once, so no half-entry is ever listed.
_PRUNE = """
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for i = 1, #stale, 500 do
  local batch = {unpack(stale, i, math.min(i + 499, #stale))}
  redis.call('ZREM', KEYS[1], unpack(batch))
  redis.call('HDEL', KEYS[2], unpack(batch))
end
return #stale
"""


def new_worker_id() -> str:
    """An id for this worker process that no other process, here or on another host, shares: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class LiveEntry:
    """One live conversation as the staff list shows it."""

    conversation_id: str
    user_id: int | None
    username: str
    started: float  # epoch seconds: when it went live in its worker
    worker: str
    deployment: str

    @property
    def field(self) -> str:
        """Its key in the registry: a conversation briefly held by two workers (a reconnect) is listed twice, truthfully."""
        return f"{self.worker}|{self.conversation_id}"


class LiveStore(Protocol):
    """Where the entries are kept: written by heartbeats (async), read by the staff pages (sync)."""

    async def write(self, *, put: list[LiveEntry], remove: list[LiveEntry]) -> None: ...
    def entries(self) -> list[LiveEntry]: ...


class RedisLiveStore:
    """Entries in Redis with an expiry each: a hash of entries and a sorted set of expiry times."""

    def __init__(self, url: str, *, prefix: str, ttl_s: float) -> None:
        self.url = url
        self.ttl_s = ttl_s
        self.expiry_key = f"{prefix}:expiry"
        self.entries_key = f"{prefix}:entries"
        self._sync: Any = None
        # redis.asyncio connections belong to the event loop that opened them: one client per loop.
        self._async: tuple[asyncio.AbstractEventLoop, Any] | None = None

    def _async_client(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            import redis.asyncio

            self._async = (loop, redis.asyncio.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5))
        return self._async[1]

    def _sync_client(self) -> Any:
        if self._sync is None:
            import redis

            self._sync = redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
        return self._sync

    async def write(self, *, put: list[LiveEntry], remove: list[LiveEntry]) -> None:
        """Add or refresh `put` (expiring ttl_s from now) and delete `remove`, in one round trip."""
        if not put and not remove:
            return
        expires = time.time() + self.ttl_s
        async with self._async_client().pipeline(transaction=True) as pipe:
            if remove:
                pipe.zrem(self.expiry_key, *(e.field for e in remove))
                pipe.hdel(self.entries_key, *(e.field for e in remove))
            if put:
                pipe.hset(self.entries_key, mapping={e.field: json.dumps(asdict(e)) for e in put})
                pipe.zadd(self.expiry_key, {e.field: expires for e in put})
            await pipe.execute()

    def entries(self) -> list[LiveEntry]:
        """Every entry not expired, oldest first; expired ones are deleted on the way."""
        client = self._sync_client()
        client.eval(_PRUNE, 2, self.expiry_key, self.entries_key, time.time())
        raw = client.hvals(self.entries_key)
        return sorted((LiveEntry(**json.loads(value)) for value in raw), key=lambda e: e.started)

    def close(self) -> None:
        """Close the synchronous client (tests; the app keeps one for its life)."""
        if self._sync is not None:
            self._sync.close()
            self._sync = None


class LocalLiveStore:
    """No Redis: one process serves everything, so the list is this process's entries (the heartbeat's own)."""

    def __init__(self) -> None:
        self._entries: dict[str, LiveEntry] = {}

    async def write(self, *, put: list[LiveEntry], remove: list[LiveEntry]) -> None:
        """Keep `put`, forget `remove`."""
        for entry in remove:
            self._entries.pop(entry.field, None)
        for entry in put:
            self._entries[entry.field] = entry

    def entries(self) -> list[LiveEntry]:
        """Every entry, oldest first."""
        return sorted(list(self._entries.values()), key=lambda e: e.started)


class Heartbeat:
    """This process's entries and the one task that writes them: at once when they change, all of them every refresh_s."""

    def __init__(self, store: LiveStore, *, worker: str, refresh_s: float) -> None:
        self.store = store
        self.worker = worker
        self.refresh_s = refresh_s
        self._live: dict[str, LiveEntry] = {}
        self._added: dict[str, LiveEntry] = {}
        self._removed: dict[str, LiveEntry] = {}
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def add(self, *, conversation_id: str, user_id: int | None, username: str, deployment: str) -> LiveEntry:
        """List a conversation that went live in this process (no I/O: the heartbeat task writes it)."""
        entry = LiveEntry(conversation_id=str(conversation_id), user_id=user_id, username=username,
                          started=time.time(), worker=self.worker, deployment=deployment)
        self._live[entry.field] = self._added[entry.field] = entry
        self._removed.pop(entry.field, None)
        self._poke()
        return entry

    def remove(self, entry: LiveEntry) -> None:
        """Take a conversation that ended off the list (no I/O: the heartbeat task deletes it)."""
        if self._live.get(entry.field) is entry:
            del self._live[entry.field]
            self._added.pop(entry.field, None)
            self._removed[entry.field] = entry
            self._poke()

    def _poke(self) -> None:
        if self._stopped:
            return
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            # One task per process (and per event loop: tests run several loops one after another).
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run(), name="live-registry-heartbeat")
        assert self._wake is not None
        self._wake.set()

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        refresh_all = True
        while not self._stopped:
            put = list(self._live.values()) if refresh_all else list(self._added.values())
            remove = list(self._removed.values())
            self._added.clear()
            self._removed.clear()
            failed = False
            try:
                await self.store.write(put=put, remove=remove)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away: conversations carry on; the next beat writes them all
                if isinstance(exc, REDIS_DOWN):
                    redis_outage.failed(exc, "updating the live-conversation registry")
                else:
                    logger.warning("Could not update the live-conversation registry: %r", exc)
                failed = True
                for entry in remove:
                    if entry.field not in self._live:
                        self._removed.setdefault(entry.field, entry)
            if not failed and refresh_all and put:
                redis_outage.recovered()  # every live conversation of this process is listed again
            if not self._live and not self._removed:
                return  # nothing left to keep alive; the next add starts a new task
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), self.refresh_s)
                refresh_all = failed
            except TimeoutError:
                refresh_all = True

    async def stop(self) -> None:
        """Stop refreshing for good (what a crashed worker does): its entries expire with their time-to-live."""
        self._stopped = True
        task, self._task = self._task, None
        while task is not None and not task.done():
            # redis-py can swallow a cancellation that lands while it connects: cancel until the task is done.
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        if task is not None and not task.cancelled():
            with contextlib.suppress(Exception):
                task.result()


_heartbeat: Heartbeat | None = None


def store_from_settings() -> LiveStore:
    """The registry the settings name: Redis when REDIS_URL is set, else this process's memory."""
    from django.conf import settings

    if settings.REDIS_URL:
        return RedisLiveStore(settings.REDIS_URL, prefix=settings.LIVE_REGISTRY_KEY_PREFIX,
                              ttl_s=settings.LIVE_REGISTRY_TTL_SECONDS)
    return LocalLiveStore()


def heartbeat() -> Heartbeat:
    """This process's heartbeat, made on first use from the settings."""
    global _heartbeat
    if _heartbeat is None:
        from django.conf import settings

        _heartbeat = Heartbeat(store_from_settings(), worker=new_worker_id(),
                               refresh_s=settings.LIVE_REGISTRY_REFRESH_SECONDS)
    return _heartbeat


def live_entries() -> list[LiveEntry]:
    """Every live conversation of every worker (of this process alone without Redis)."""
    return heartbeat().store.entries()
