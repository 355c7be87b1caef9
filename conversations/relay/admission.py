"""The deployment's side of admission: a slot among its concurrent upstream sessions, held while a conversation runs.

One slot per live conversation, claimed before its first upstream session opens and freed when it ends.
A rollover briefly holds two sessions for that conversation on the one slot: the overlap lasts seconds, and
refusing a rollover would end a conversation that was already admitted.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from django.conf import settings

from ..capacity import Busy, DeploymentGate, rate_limits_wait
from ..limits import HEARTBEAT_S
from ..realtime.client import RealtimeTarget
from ..outage import REDIS_DOWN, redis_outage
from .quota import RECOVERY_PROBE_S, limit_store, local_limit_store

logger = logging.getLogger(__name__)


class DeploymentBusy(Exception):
    """The deployment is full or cooling down: the conversation may not open a session now."""

    def __init__(self, busy: Busy) -> None:
        super().__init__(busy.message)
        self.busy = busy


def deployment_gate(target: RealtimeTarget) -> DeploymentGate:
    """The gate of the deployment `target` opens sessions on, in this process's limit store."""
    return DeploymentGate(limit_store(), provider=target.provider, deployment=target.deployment)


async def admit_deployment(target: RealtimeTarget) -> DeploymentSlot:
    """Take a slot on the target's deployment; raise DeploymentBusy (nothing held) when it is full or cooling down.

    With Redis away the slot is taken among this process's own (the cap then holds per process), and moves
    to Redis when it returns.
    """
    gate, slot = deployment_gate(target), uuid.uuid4().hex
    redis_gate = None
    try:
        busy = await gate.claim(slot, settings.DEPLOYMENT_MAX_SESSIONS,
                                full_wait_s=settings.DEPLOYMENT_BUSY_RETRY_SECONDS)
    except REDIS_DOWN as exc:
        redis_outage.failed(exc, "admitting a conversation to the deployment")
        redis_gate, gate = gate, DeploymentGate(local_limit_store(), provider=target.provider,
                                                deployment=target.deployment)
        busy = await gate.claim(slot, settings.DEPLOYMENT_MAX_SESSIONS,
                                full_wait_s=settings.DEPLOYMENT_BUSY_RETRY_SECONDS)
    if busy is not None:
        logger.info("Deployment %s/%s refused a conversation: %s, retry in %ss", target.provider, target.deployment,
                    busy.reason, busy.retry_after_s)
        raise DeploymentBusy(busy)
    held = DeploymentSlot(gate, slot)
    held.redis_gate = redis_gate
    return held


class DeploymentSlot:
    """One conversation's slot: kept alive by a heartbeat, freed at the end; reports the service's "slow down"."""

    def __init__(self, gate: DeploymentGate, slot: str) -> None:
        self.gate, self.slot = gate, slot
        self.redis_gate: DeploymentGate | None = None  # where the slot goes back to while it is held locally
        self._heartbeat: asyncio.Task[None] | None = None
        self._reports: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        """Start the heartbeat that keeps the slot while the conversation lives."""
        self._heartbeat = asyncio.ensure_future(self._beat())

    def throttled(self, seconds: float) -> None:
        """The service refused a session with 429: hold admission shut for its retry-after (in the background)."""
        self._report(seconds)

    def rate_limits(self, event: dict[str, Any]) -> None:
        """A `rate_limits.updated`: when requests or tokens are nearly used up, slow admission until they reset."""
        entries = event.get("rate_limits")
        wait = rate_limits_wait(entries) if isinstance(entries, list) else None
        if wait is not None:
            self._report(wait)

    async def close(self) -> None:
        """Free the slot (the conversation ended); a report still on its way is finished first."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*self._reports, return_exceptions=True), 5.0)
        try:
            await self.gate.release(self.slot)
        except REDIS_DOWN as exc:  # the slot expires by itself
            redis_outage.failed(exc, "freeing a deployment slot")
        except Exception:  # noqa: BLE001 - the slot expires by itself
            logger.warning("Could not free a deployment slot; it expires on its own", exc_info=True)

    def _report(self, seconds: float) -> None:
        task = asyncio.ensure_future(self._cool(seconds))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def _cool(self, seconds: float) -> None:
        try:
            await self.gate.cool_down(seconds)
            logger.warning("Deployment %s is cooling down for %.0fs: the service is over its rate limits",
                           self.gate.live_key.rsplit(":", 1)[0], seconds)
        except Exception:  # noqa: BLE001 - Redis away: admission goes on unslowed, the service still says 429
            logger.warning("Could not record the deployment's cool-down", exc_info=True)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(RECOVERY_PROBE_S if self.redis_gate is not None else HEARTBEAT_S)
            if self.redis_gate is not None:
                try:
                    await self.redis_gate.refresh(self.slot)  # back in Redis: the slot counts for every worker again
                except REDIS_DOWN as exc:
                    redis_outage.failed(exc, "re-registering a deployment slot")
                    continue
                redis_outage.recovered()
                local, self.gate, self.redis_gate = self.gate, self.redis_gate, None
                with contextlib.suppress(Exception):
                    await local.release(self.slot)
                continue
            try:
                await self.gate.refresh(self.slot)
            except REDIS_DOWN as exc:  # the slot expires in Redis; the next beat tries again
                redis_outage.failed(exc, "refreshing a deployment slot")
            except Exception:  # noqa: BLE001 - try again at the next beat
                logger.warning("Could not refresh a deployment slot", exc_info=True)
