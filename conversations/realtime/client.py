"""A WebSocket client for realtime endpoints: Azure OpenAI (GA and preview), OpenAI and the simulator.

No Django imports: everything it needs comes in as arguments, so it can be tested and reused alone.
"""
from __future__ import annotations

import asyncio
import binascii
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

logger = logging.getLogger(__name__)

GA = "ga"
PREVIEW = "preview"
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
# Azure accepts up to 15 MiB per event; a response can carry large audio deltas.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

TokenProvider = Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class RealtimeTarget:
    """Where and how to open an upstream realtime session."""

    provider: str  # "azure", "openai" or "simulator"
    dialect: str  # GA or PREVIEW
    url: str  # full ws:// or wss:// URL with its query
    deployment: str
    api_key: str = field(default="", repr=False)
    # "api-key" (Azure key header) or "bearer" (OpenAI key, or an Entra ID token when api_key is empty).
    auth: str = "api-key"


class UpstreamError(Exception):
    """The upstream realtime session could not be opened or ended abnormally."""

    def __init__(self, message: str, *, status: int | None = None, detail: str = "",
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.retry_after_s = retry_after_s  # a 429's wait, when the service named one


class UpstreamRejected(UpstreamError):
    """The service answered the handshake with an HTTP error (401, 404, 429…)."""


class UpstreamUnavailable(UpstreamError):
    """The service could not be reached in time, or the connection dropped."""


_RETRY_AFTER_TEXT = re.compile(r"retry after (\d+(?:\.\d+)?) second", re.IGNORECASE)


def retry_after(header: str | None, body: str) -> float | None:
    """The wait a 429 names: its `retry-after` header (seconds), else "retry after N seconds" in its message."""
    if header:
        try:
            seconds = float(header.strip())
        except ValueError:
            seconds = -1.0  # an HTTP date: Azure sends seconds; fall back to the message
        if seconds >= 0:
            return seconds
    match = _RETRY_AFTER_TEXT.search(body or "")
    return float(match.group(1)) if match else None


def _ws_base(endpoint: str) -> tuple[str, str]:
    """Return (scheme, netloc) for an http(s)/ws(s) endpoint, mapping http→ws and https→wss."""
    parts = urlsplit(endpoint.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"Not an endpoint URL: {endpoint!r}")
    return scheme, parts.netloc


def azure_dialect(api_version: str) -> str:
    """The dialect an Azure api-version selects: preview only for a `-preview` version.

    A dateless GA version such as `2025-08-28` is not a reason to speak the legacy preview protocol;
    the GA v1 path takes no api-version at all, so such a value is ignored (and `manage.py check` says so).
    """
    return PREVIEW if api_version.strip().lower().endswith("-preview") else GA


def azure_target(
    *,
    endpoint: str,
    deployment: str,
    api_version: str = "",
    api_key: str = "",
    provider: str = "azure",
) -> RealtimeTarget:
    """Build the Azure target: the GA v1 path by default, the preview path for a `-preview` api-version."""
    scheme, netloc = _ws_base(endpoint)
    api_version = api_version.strip()
    if azure_dialect(api_version) == PREVIEW:
        query = urlencode({"api-version": api_version, "deployment": deployment})
        url, dialect = f"{scheme}://{netloc}/openai/realtime?{query}", PREVIEW
    else:
        # The GA path takes no api-version: the service rejects one.
        url, dialect = f"{scheme}://{netloc}/openai/v1/realtime?{urlencode({'model': deployment})}", GA
    return RealtimeTarget(
        provider=provider,
        dialect=dialect,
        url=url,
        deployment=deployment,
        api_key=api_key,
        auth="api-key" if api_key else "bearer",
    )


def openai_target(*, api_key: str, model: str, base_url: str = "https://api.openai.com/") -> RealtimeTarget:
    """Build the OpenAI target, which always speaks the GA dialect."""
    scheme, netloc = _ws_base(base_url)
    return RealtimeTarget(
        provider="openai",
        dialect=GA,
        url=f"{scheme}://{netloc}/v1/realtime?{urlencode({'model': model})}",
        deployment=model,
        api_key=api_key,
        auth="bearer",
    )


async def auth_headers(target: RealtimeTarget, token_provider: TokenProvider | None = None) -> dict[str, str]:
    """Return the handshake headers that authenticate to the target."""
    if target.api_key:
        if target.auth == "api-key":
            return {"api-key": target.api_key}
        return {"Authorization": f"Bearer {target.api_key}"}
    if token_provider is None:
        raise UpstreamError("No API key and no token provider are configured for the realtime service.")
    try:
        token = await token_provider()
    except Exception as exc:  # noqa: BLE001 - azure-identity raises several types; all mean "no token"
        # Reported like a refused key: the fix is the same (credentials or role assignment).
        raise UpstreamRejected("Could not get a Microsoft Entra ID token", status=401, detail=repr(exc)) from exc
    return {"Authorization": f"Bearer {token}"}


class EntraTokenProvider:
    """Fetch and cache Microsoft Entra ID tokens for Azure OpenAI with azure-identity's async credential."""

    # Refresh a little early so a token never expires during a handshake.
    REFRESH_MARGIN_S = 300

    def __init__(self, credential: Any | None = None, scope: str = ENTRA_SCOPE) -> None:
        self._credential = credential
        self._scope = scope
        self._token = ""
        self._expires_on = 0.0
        self._lock = asyncio.Lock()

    async def __call__(self) -> str:
        """Return a valid bearer token, fetching a new one only when the cached one is about to expire."""
        async with self._lock:
            if self._token and time.time() < self._expires_on - self.REFRESH_MARGIN_S:
                return self._token
            if self._credential is None:
                # Imported lazily: key-based deployments never need azure-identity at runtime.
                from azure.identity.aio import DefaultAzureCredential

                self._credential = DefaultAzureCredential()
            access = await self._credential.get_token(self._scope)
            self._token, self._expires_on = access.token, float(access.expires_on)
            return self._token


class RealtimeConnection:
    """One open upstream realtime session: send events, iterate over parsed server events, close."""

    def __init__(self, ws: ClientConnection, target: RealtimeTarget) -> None:
        self._ws = ws
        self.target = target

    @classmethod
    async def open(
        cls,
        target: RealtimeTarget,
        *,
        token_provider: TokenProvider | None = None,
        timeout: float = 10.0,
    ) -> RealtimeConnection:
        """Open a session, turning handshake failures into UpstreamRejected or UpstreamUnavailable."""
        headers = await auth_headers(target, token_provider)
        try:
            ws = await connect(
                target.url,
                additional_headers=headers,
                open_timeout=timeout,
                max_size=MAX_MESSAGE_BYTES,
                # Audio is base64 already: deflating it costs CPU on the hot path for little gain.
                compression=None,
                user_agent_header="voiceapp-relay",
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            body = exc.response.body.decode("utf-8", "replace")[:500] if exc.response.body else ""
            wait = retry_after(exc.response.headers.get("retry-after"), body) if status == 429 else None
            raise UpstreamRejected(f"Handshake refused with HTTP {status}", status=status, detail=body,
                                   retry_after_s=wait) from exc
        except InvalidURI as exc:
            raise UpstreamError(f"Invalid realtime URL: {exc}") from exc
        except (OSError, TimeoutError, asyncio.TimeoutError) as exc:
            raise UpstreamUnavailable(f"Could not reach the realtime service: {exc!r}") from exc
        logger.info("Upstream %s session opened (%s dialect)", target.provider, target.dialect)
        return cls(ws, target)

    async def send(self, event: dict[str, Any]) -> None:
        """Send one client event."""
        await self._send_text(json.dumps(event, separators=(",", ":")))

    async def send_audio(self, pcm: bytes) -> None:
        """Append PCM16 audio to the input buffer, building the JSON by hand because base64 needs no escaping."""
        # binascii directly: base64.b64encode is a Python wrapper around it, one call layer more per frame.
        await self._send_text(
            '{"type":"input_audio_buffer.append","audio":"' + binascii.b2a_base64(pcm, newline=False).decode("ascii") + '"}'
        )

    async def _send_text(self, text: str) -> None:
        try:
            await self._ws.send(text)
        except ConnectionClosed as exc:
            raise UpstreamUnavailable("The realtime service closed the session.") from exc

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Yield parsed server events until the session ends; an abnormal end raises UpstreamUnavailable."""
        try:
            async for message in self._ws:
                try:
                    event = json.loads(message)
                except ValueError:
                    logger.warning("Ignoring a non-JSON message from upstream")
                    continue
                if isinstance(event, dict):
                    yield event
        except ConnectionClosed as exc:
            raise UpstreamUnavailable(
                "The realtime service dropped the session.", status=getattr(exc.rcvd, "code", None)
            ) from exc


    async def close(self) -> None:
        """Close the session cleanly; safe to call twice."""
        await self._ws.close()

    def abort(self) -> None:
        """Drop the connection without the closing handshake (one that did not finish in time)."""
        transport = getattr(self._ws, "transport", None)
        if transport is not None:
            transport.abort()
