"""Reaching live conversations in whichever worker process holds them: their channel-layer groups and "end" messages.

A live conversation joins two groups for as long as it runs, attached to a browser or not (grace period):
one of its own and one of its owner's. A delete, or staff ending it, sends to one of them; the process
that holds the conversation receives it, whichever that is. No models here: services call this after
their writes commit. Listing live conversations is conversations/live_registry.py's job (groups cannot be listed).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from .outage import REDIS_DOWN, redis_outage

logger = logging.getLogger(__name__)

CONVERSATION_DELETED = "conversation.deleted"
# Staff ended it (End on /staff/live/), or suspended its user: it ends gracefully and is stored as ended by staff.
CONVERSATION_END_BY_STAFF = "conversation.end_by_staff"
# Another worker is continuing the conversation (its browser reconnected there): the holder stores it and lets go.
CONVERSATION_TAKEOVER = "conversation.takeover"
# A channel layer that is away (Redis down) is tried again this long after.
RETRY_S = 2.0
# A live conversation joins its groups again this often: a Redis that restarted (even between two calls,
# so nobody saw an error) has lost them, and only one receiver per process sees the layer fail.
REJOIN_S = 30.0


def conversation_group(conversation_id: Any) -> str:
    """The group of one live conversation."""
    return f"conversation.{conversation_id}"


def owner_group(user_id: Any) -> str:
    """The group of every live conversation of one user."""
    return f"owner.{user_id}"


def announce_deleted(*, conversation_id: Any = None, user_id: Any = None) -> None:
    """Tell one live conversation (by id), or all of a user's, that it was deleted; a layer outage is only logged."""
    # The rows are gone either way; a relay not told ends at its grace period or Stop.
    _announce({"type": CONVERSATION_DELETED}, "they were deleted", conversation_id=conversation_id, user_id=user_id)


def announce_end_by_staff(*, by: str, conversation_id: Any = None, user_id: Any = None) -> bool:
    """Tell one live conversation (by id), or all of a user's, that staff member `by` ended it; False if the layer failed."""
    return _announce({"type": CONVERSATION_END_BY_STAFF, "by": by[:150]}, "staff ended them",
                     conversation_id=conversation_id, user_id=user_id)


async def ask_holder_to_let_go(conversation_id: Any) -> bool:
    """Ask the worker that holds a conversation live to store it and let go of it; False if the layer failed."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        await layer.group_send(conversation_group(conversation_id), {"type": CONVERSATION_TAKEOVER})
    except Exception:  # noqa: BLE001 - the caller goes on from what is stored
        logger.warning("Could not ask the worker holding conversation %s to let go of it", conversation_id,
                       exc_info=True)
        return False
    return True


def _announce(message: dict[str, Any], news: str, *, conversation_id: Any, user_id: Any) -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    group = conversation_group(conversation_id) if conversation_id is not None else owner_group(user_id)
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # noqa: BLE001 - callers go on (their writes are done); the log says what was not delivered
        logger.exception("Could not tell live conversations in %s that %s", group, news)
        return False
    return True


class Inbox:
    """A live conversation's address on the channel layer: joins its groups, hands a delete to `on_deleted`,
    staff ending it to `on_end_by_staff` (with the staff member's name) and another worker continuing it to
    `on_taken_over`."""

    def __init__(
        self,
        *,
        conversation_id: Any,
        owner_id: Any,
        on_deleted: Callable[[], Awaitable[None]],
        on_end_by_staff: Callable[[str], Awaitable[None]] | None = None,
        on_taken_over: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.groups = [conversation_group(conversation_id)]
        if owner_id is not None:
            self.groups.append(owner_group(owner_id))
        self.on_deleted = on_deleted
        self.on_end_by_staff = on_end_by_staff
        self.on_taken_over = on_taken_over
        self._layer: Any = None
        self._channel = ""
        self._joined: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._rejoin: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Join the groups and listen, in a task of its own: nothing on the audio path waits for the layer."""
        self._layer = get_channel_layer()
        if self._layer is not None:
            self._task = asyncio.create_task(self._run(), name=f"inbox-{self.groups[0]}")
            self._rejoin = asyncio.create_task(self._keep_joined(), name=f"inbox-rejoin-{self.groups[0]}")

    async def _keep_joined(self) -> None:
        """Join the groups again every REJOIN_S (joining twice changes nothing), so a restarted Redis has them back."""
        while True:
            await asyncio.sleep(REJOIN_S)
            if not self._channel:
                continue
            try:
                for group in self.groups:
                    await self._layer.group_add(group, self._channel)
            except REDIS_DOWN as exc:
                redis_outage.failed(exc, f"joining {self.groups[0]} again")
            except Exception:  # noqa: BLE001 - the next round tries again
                logger.warning("Could not join %s again", self.groups[0], exc_info=True)

    async def _run(self) -> None:
        layer = self._layer
        while True:
            try:
                if not self._channel:
                    self._channel = await layer.new_channel()
                for group in self.groups:
                    if group not in self._joined:
                        await layer.group_add(group, self._channel)
                        self._joined.append(group)
                message = await layer.receive(self._channel)
            except asyncio.CancelledError:
                raise
            except REDIS_DOWN as exc:  # Redis away: the conversation carries on, and is reachable once it is back
                redis_outage.failed(exc, f"listening for messages to {self.groups[0]}")
                # A Redis that restarted lost the groups: join them again (joining twice changes nothing).
                self._joined = []
                await asyncio.sleep(RETRY_S)
                continue
            except Exception:  # noqa: BLE001 - whatever it is, the conversation carries on
                logger.warning("Channel layer unavailable for %s; retrying in %ss", self.groups[0], RETRY_S, exc_info=True)
                self._joined = []
                await asyncio.sleep(RETRY_S)
                continue
            if redis_outage.down:
                redis_outage.recovered()
            if message.get("type") == CONVERSATION_DELETED:
                await self.on_deleted()
                return
            if message.get("type") == CONVERSATION_END_BY_STAFF and self.on_end_by_staff is not None:
                await self.on_end_by_staff(str(message.get("by", "")))
                return
            if message.get("type") == CONVERSATION_TAKEOVER and self.on_taken_over is not None:
                await self.on_taken_over()
                return

    async def close(self) -> None:
        """Stop listening and leave the groups (called as the conversation ends, maybe from `on_deleted` itself)."""
        rejoin, self._rejoin = self._rejoin, None
        if rejoin is not None:
            rejoin.cancel()
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        joined, self._joined = self._joined, []
        for group in joined:
            try:
                await self._layer.group_discard(group, self._channel)
            except Exception:  # noqa: BLE001 - Redis away: the group entry expires on its own
                logger.warning("Could not leave %s", group, exc_info=True)
