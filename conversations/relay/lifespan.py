"""The ASGI lifespan of the app: when the server stops, end the conversations this process holds.

uvicorn closes every WebSocket (1012) before it sends `lifespan.shutdown`, so by then each live
conversation is waiting out its grace period for a browser that will reconnect to another process.
Ending them here stores their last turns and finalises their recordings instead of losing them
with the process; the browser's reconnect continues the conversation from what was stored.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from .registry import live_conversations

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 20.0


async def end_all_live_conversations(timeout: float = SHUTDOWN_TIMEOUT_S) -> int:
    """End every live conversation of this process at once; returns how many there were."""
    live = live_conversations.all()
    if live:
        logger.info("Server stopping: ending %d live conversation(s)", len(live))
        done, pending = await asyncio.wait([asyncio.ensure_future(c.end(by="system")) for c in live], timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            logger.error("%d conversation(s) did not end within %ss of shutdown", len(pending), timeout)
    return len(live)


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer the server's startup and shutdown; shutdown ends the live conversations first."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await end_all_live_conversations()
            except Exception:  # noqa: BLE001 - the server stops whatever happens
                logger.exception("Ending the live conversations at shutdown failed")
            await send({"type": "lifespan.shutdown.complete"})
            return
