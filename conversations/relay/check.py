"""The pre-flight check page's socket: round trips, and whether the voice service accepts us."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from ..realtime import protocol
from ..realtime.client import RealtimeConnection, UpstreamError, UpstreamUnavailable
from ..realtime.protocol import BrowserMessageError
from ..upstream import resolve_target, token_provider_for
from .consumer import refuse_anonymous
from .failures import upstream_failure

logger = logging.getLogger(__name__)

# Each check opens a real upstream session: bound it, and limit how often one socket may ask,
# so the check page cannot be used to hammer the service (or run up its connection quota).
UPSTREAM_CHECK_LIMIT = 5
UPSTREAM_CHECK_WINDOW_S = 60.0
# After the handshake, how long to wait for the service's first event (session.created).
FIRST_EVENT_TIMEOUT_S = 5.0


class CheckConsumer(AsyncWebsocketConsumer):
    """The pre-flight check's socket: answers pings, and `upstream_check` by opening and closing a session."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.check_task: asyncio.Task[None] | None = None
        self.check_times: deque[float] = deque()

    async def connect(self) -> None:
        """Accept logged-in users only, like the talk socket."""
        if await refuse_anonymous(self) is not None:
            await self.accept()

    async def disconnect(self, code: int) -> None:
        """Abandon a check in progress: nobody is left to tell."""
        if self.check_task is not None:
            self.check_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.check_task

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Answer `ping` with `pong` and `upstream_check` with its result; anything else gets a plain error."""
        try:
            command = protocol.parse_browser_message(text_data or "")
        except BrowserMessageError as exc:
            await self._send(protocol.error_message(exc.code, str(exc)))
            return
        if command.type == "upstream_check":
            await self._start_upstream_check()
        elif command.type == "ping":
            await self._send({"type": "pong", "t": command.t})
        else:
            await self._send(protocol.error_message("unknown_type", "This socket only answers pings and upstream checks."))

    async def _start_upstream_check(self) -> None:
        """Run one check in the background (pings stay answered), one at a time and a few a minute."""
        if self.check_task is not None and not self.check_task.done():
            await self._send_result(False, "check_running", "A check of the voice service is already running.")
            return
        now = time.monotonic()
        while self.check_times and now - self.check_times[0] > UPSTREAM_CHECK_WINDOW_S:
            self.check_times.popleft()
        if len(self.check_times) >= UPSTREAM_CHECK_LIMIT:
            await self._send_result(False, "rate_limited", "The voice service was checked several times just now. Wait a minute, then try again.")
            return
        self.check_times.append(now)
        self.check_task = asyncio.create_task(self._upstream_check(), name="upstream-check")

    async def _upstream_check(self) -> None:
        """Open an upstream session with the configured target, wait for its first event, close it, report."""
        from django.conf import settings  # read at call time so tests can override it

        user = self.scope["user"]
        timeout = float(settings.REALTIME_CONNECT_TIMEOUT)
        deployment = ""
        try:
            target = await resolve_target()
            deployment = target.deployment
            # The overall bound covers a token fetch that hangs, not just the handshake.
            async with asyncio.timeout(timeout + FIRST_EVENT_TIMEOUT_S + 1):
                connection = await RealtimeConnection.open(
                    target, token_provider=token_provider_for(target), timeout=timeout
                )
                try:
                    problem = await _first_event_problem(connection)
                finally:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(connection.close(), 2.0)
        except UpstreamError as exc:
            failure = upstream_failure(exc, deployment, staff=user.is_staff)
            logger.info("Upstream check failed: %s %s", exc, exc.detail)
            await self._send_result(False, failure.code, failure.message)
            return
        except TimeoutError:
            failure = upstream_failure(UpstreamUnavailable("The upstream check timed out."), deployment, staff=user.is_staff)
            await self._send_result(False, failure.code, failure.message)
            return
        except Exception:  # noqa: BLE001 - the user gets plain words, the log gets the trace
            logger.exception("Upstream check crashed")
            await self._send_result(False, "internal_error", "The check could not be run. Please try again.")
            return
        if problem:
            await self._send_result(False, "upstream_error", problem)
        else:
            await self._send_result(True, "ok", "The voice service accepted the connection.")

    async def _send_result(self, ok: bool, code: str, message: str) -> None:
        await self._send({"type": "upstream_check", "ok": ok, "code": code, "message": message})

    async def _send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):  # the page may have gone meanwhile
            await self.send(text_data=protocol.dumps(message))


async def _first_event_problem(connection: RealtimeConnection) -> str:
    """Wait for the service's first event: "" when it is session.created, else what went wrong, in plain words."""
    events = connection.events()
    try:
        event = await asyncio.wait_for(anext(events), FIRST_EVENT_TIMEOUT_S)
    except StopAsyncIteration:
        raise UpstreamUnavailable("The realtime service closed the session at once.") from None
    except TimeoutError:
        raise UpstreamUnavailable("The realtime service sent nothing after the handshake.") from None
    finally:
        with contextlib.suppress(Exception):
            await events.aclose()
    if event.get("type") == "error":
        return "The voice service accepted the connection but then reported a problem. Please try again in a minute."
    return ""
