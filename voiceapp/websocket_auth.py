"""Log-in for WebSockets: Channels' cookie and auth middleware around a session middleware that stays out of the way.

Channels' own SessionMiddleware wraps `send` so it can save the session and set its cookie on HTTP
responses. A WebSocket never sends either, yet every message the socket sends then passes through
that wrapper, which also reads the session's state each time; on the relay's hot path (25 audio
frames a second per conversation) it cost about 7% of the worker's CPU (`make bench --profile`).
This middleware gives the scope the same session object and passes `send` through untouched.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

from channels.auth import AuthMiddleware
from channels.sessions import CookieMiddleware
from django.conf import settings


class WebSocketSessionMiddleware:
    """Put the login session named by the cookie in `scope["session"]`, loaded lazily, without wrapping `send`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.session_store = import_module(settings.SESSION_ENGINE).SessionStore

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("WebSocketSessionMiddleware only serves WebSocket connections.")
        # The store reads the database on first use, which AuthMiddleware does off the event loop.
        session = self.session_store(scope["cookies"].get(settings.SESSION_COOKIE_NAME))
        return await self.inner(dict(scope, session=session), receive, send)


def WebSocketAuthMiddlewareStack(inner: Any) -> Any:  # noqa: N802 - named like Channels' AuthMiddlewareStack
    """Channels' AuthMiddlewareStack for WebSockets: cookies, the login session, then `scope["user"]`."""
    return CookieMiddleware(WebSocketSessionMiddleware(AuthMiddleware(inner)))
