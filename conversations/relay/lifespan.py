"""The ASGI lifespan of the app: the sweep for interrupted conversations runs while the server does, and
when the server stops it ends the conversations this process holds.

uvicorn closes every WebSocket (1012) before it sends `lifespan.shutdown`, so by then each live
conversation is waiting out its grace period for a browser that will reconnect to another process.
Ending them here stores their last turns and finalises their recordings instead of losing them
with the process; the browser's reconnect continues the conversation from what was stored.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from .. import sweep
from .registry import live_conversations

logger = logging.getLogger(__name__)

# Ending a conversation waits for its journal (JOURNAL_CLOSE_TIMEOUT_SECONDS) after settling a running
# reply, closing upstream and storing the recording's last chunk: this much more is allowed for those.
SHUTDOWN_MARGIN_S = 10.0


def shutdown_timeout() -> float:
    """How long the shutdown waits for the live conversations to end: the journal's bound plus the margin."""
    from django.conf import settings

    return float(settings.JOURNAL_CLOSE_TIMEOUT_SECONDS) + SHUTDOWN_MARGIN_S


async def end_all_live_conversations(timeout: float | None = None) -> int:
    """End every live conversation of this process at once; returns how many there were."""
    timeout = shutdown_timeout() if timeout is None else timeout
    live = live_conversations.all()
    if live:
        logger.info("Server stopping: ending %d live conversation(s)", len(live))
        ending = {asyncio.ensure_future(c.end(by="system")): c for c in live}
        done, pending = await asyncio.wait(ending, timeout=timeout)
        if pending:
            logger.error("%d conversation(s) did not end within %ss of shutdown", len(pending), timeout)
            # Cut them short: each journal then names, one line per write, what it could not store.
            cut = [f for f in (ending[task].cut_short() for task in pending) if f is not None]
            for task in pending:
                task.cancel()
            if cut:
                await asyncio.wait(cut, timeout=1.0)
    return len(live)


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer the server's startup (start the sweep) and shutdown (stop it, end the live conversations)."""
    sweeping: asyncio.Task[None] | None = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                sweeping = sweep.start_from_settings()
            except Exception:  # noqa: BLE001 - the app serves without the sweep rather than not at all
                logger.exception("Could not start the sweep for interrupted conversations")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if sweeping is not None:
                sweeping.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sweeping
            try:
                await end_all_live_conversations()
            except Exception:  # noqa: BLE001 - the server stops whatever happens
                logger.exception("Ending the live conversations at shutdown failed")
            await send({"type": "lifespan.shutdown.complete"})
            return
