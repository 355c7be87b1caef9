"""The simulator's WebSocket server: handshake routing and auth, knobs, and one session per connection."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedError
from websockets.http11 import Request, Response

from ..schema import SchemaError, validate_server_event
from .dialects import GA, PREVIEW
from .ids import new_id
from .session import Options, SimulatedSession, parse_frame

logger = logging.getLogger(__name__)

DEFAULT_DEPLOYMENTS = ("gpt-realtime", "gpt-4o-realtime-preview", "gpt-4o-mini-realtime-preview")
# Preview api-versions the simulator still serves; 2024-10-01-preview is retired on Azure.
PREVIEW_API_VERSIONS = ("2024-12-01-preview", "2025-04-01-preview")
AZURE_SESSION_S = 30 * 60
OPENAI_SESSION_S = 60 * 60
MAX_FRAME_BYTES = 32 * 2**20  # a 15 MiB append is about 20 MiB of base64 JSON


@dataclass(frozen=True)
class Route:
    """Where a handshake asked to go."""

    dialect: str
    deployment: str
    provider: str  # "azure" or "openai"


@dataclass
class SessionRecord:
    """What the simulator knows about one accepted connection, for tests and logs."""

    index: int
    dialect: str
    path: str
    headers: dict[str, str]
    deployment: str
    provider: str
    closed: bool = False
    events_sent: int = 0
    dropped: bool = False
    session: SimulatedSession | None = None


@dataclass(frozen=True)
class Rejection:
    """A refused handshake."""

    status: int
    path: str
    body: dict[str, Any] = field(default_factory=dict)


class _Refused(Exception):
    """Raised while routing a handshake that must be answered with an HTTP error."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def _azure_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _openai_error(code: str, message: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    }


class RealtimeSimulator:
    """A realtime endpoint speaking Azure OpenAI's GA and preview dialects and OpenAI's."""

    def __init__(
        self,
        api_key: str | None = "sim-key",
        deployments: Iterable[str] | Mapping[str, str] = DEFAULT_DEPLOYMENTS,
        session_expiry_s: float | None = None,
        reject_status: int | None = None,
        drop_after_events: int | None = None,
        response_delay_s: float = 0.0,
        delta_ms: int = 200,
        realtime_pacing: bool = True,
        strict: bool = False,
        *,
        transcription_delay_s: float = 0.15,
        preview_api_versions: Iterable[str] = PREVIEW_API_VERSIONS,
    ) -> None:
        if not 10 <= delta_ms <= 1000:
            raise ValueError("delta_ms must be between 10 and 1000 (the service uses 100-250)")
        self.api_key = api_key
        # A mapping names the model behind each deployment; a plain list means name == model.
        self.deployments: dict[str, str] = (
            dict(deployments)
            if isinstance(deployments, Mapping)
            else {name: name for name in deployments}
        )
        self.session_expiry_s = session_expiry_s
        self.reject_status = reject_status
        self.drop_after_events = drop_after_events
        self.strict = strict
        self.preview_api_versions = frozenset(preview_api_versions)
        self.options = Options(
            delta_ms=delta_ms,
            realtime_pacing=realtime_pacing,
            response_delay_s=response_delay_s,
            transcription_delay_s=transcription_delay_s,
        )
        self.received: list[dict[str, Any]] = []
        self.sessions: list[SessionRecord] = []
        self.rejected: list[Rejection] = []
        self.validation_errors: list[tuple[str, SchemaError]] = []
        self._routes: dict[ServerConnection, Route] = {}
        self._server: Server | None = None
        self._host = "127.0.0.1"
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on host:port (port 0 picks a free one)."""
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._process_request,
            max_size=MAX_FRAME_BYTES,
        )
        self._host = host
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        """The endpoint to configure as AZURE_OPENAI_ENDPOINT."""
        return f"http://{self._host}:{self.port}"

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        assert self._server is not None, "call start() first"
        await self._server.serve_forever()

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- handshake ---------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Route and authenticate the handshake, answering errors with the service's JSON bodies."""
        try:
            if self.reject_status is not None:
                raise _Refused(
                    self.reject_status,
                    _azure_error(str(self.reject_status), "Simulated rejection."),
                )
            route = self._route(request)
            self._authenticate(request, route)
            if route.deployment not in self.deployments:
                if route.provider == "openai":
                    raise _Refused(
                        404,
                        _openai_error(
                            "model_not_found",
                            f"The model '{route.deployment}' does not exist or you do not have access to it.",
                        ),
                    )
                raise _Refused(
                    404,
                    _azure_error(
                        "DeploymentNotFound",
                        "The API deployment for this resource does not exist. If you created the deployment "
                        "within the last 5 minutes, please wait a moment and try again.",
                    ),
                )
        except _Refused as refusal:
            self.rejected.append(Rejection(refusal.status, request.path, refusal.body))
            response = connection.respond(refusal.status, json.dumps(refusal.body) + "\n")
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "application/json"
            return response
        self._routes[connection] = route
        return None

    def _route(self, request: Request) -> Route:
        """Map the path and query to a dialect and deployment."""
        parts = urlsplit(request.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        path = parts.path.rstrip("/")
        if path == "/openai/v1/realtime":
            if "api-version" in query:
                raise _Refused(
                    400,
                    _azure_error(
                        "BadRequest",
                        "api-version query parameter is not allowed when using /v1 path",
                    ),
                )
            return Route(GA, self._required(query, "model"), "azure")
        if path == "/openai/realtime":
            version = query.get("api-version")
            if not version:
                raise _Refused(
                    400,
                    _azure_error("BadRequest", "Missing required query parameter 'api-version'."),
                )
            if version not in self.preview_api_versions:
                raise _Refused(
                    400, _azure_error("BadRequest", f"API version not supported: {version}")
                )
            return Route(PREVIEW, self._required(query, "deployment"), "azure")
        if path == "/v1/realtime":
            return Route(GA, self._required(query, "model"), "openai")
        raise _Refused(404, _azure_error("404", "Resource not found"))

    @staticmethod
    def _required(query: dict[str, str], name: str) -> str:
        if not query.get(name):
            raise _Refused(
                400, _azure_error("BadRequest", f"Missing required query parameter '{name}'.")
            )
        return query[name]

    def _authenticate(self, request: Request, route: Route) -> None:
        """Accept `api-key: KEY` or `Authorization: Bearer KEY`; a None api_key accepts anything."""
        if self.api_key is None:
            return
        offered = request.headers.get("api-key")
        authorization = request.headers.get("Authorization", "")
        if offered is None and authorization.lower().startswith("bearer "):
            offered = authorization[7:].strip()
        if offered == self.api_key:
            return
        if route.provider == "openai":
            raise _Refused(401, _openai_error("invalid_api_key", "Incorrect API key provided."))
        raise _Refused(
            401,
            _azure_error(
                "401",
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
                "valid key for an active subscription and use a correct regional API endpoint for your resource.",
            ),
        )

    # --- connections -------------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        """Run one session until the client leaves, a knob ends it, or the server stops."""
        route = self._routes.pop(connection)
        request = connection.request
        assert request is not None
        record = SessionRecord(
            index=len(self.sessions),
            dialect=route.dialect,
            path=request.path,
            headers={name.lower(): value for name, value in request.headers.raw_items()},
            deployment=route.deployment,
            provider=route.provider,
        )
        self.sessions.append(record)
        lifetime = self.session_expiry_s or (
            OPENAI_SESSION_S if route.provider == "openai" else AZURE_SESSION_S
        )

        async def send(event: dict[str, Any]) -> None:
            await self._send(connection, record, event)

        session = SimulatedSession(
            dialect=route.dialect,
            model=self.deployments[route.deployment],
            send=send,
            options=self.options,
            expires_at=int(time.time() + lifetime + 0.999),
        )
        record.session = session
        expiry = (
            asyncio.ensure_future(self._expire(connection, session))
            if self.session_expiry_s
            else None
        )
        try:
            await session.start()
            async for message in connection:
                event, problem = parse_frame(message)
                if event is None:
                    await session.send_invalid_json(problem)
                    continue
                self._record(event, record)
                await session.receive(event)
        except ConnectionClosed:
            pass
        finally:
            record.closed = True
            if expiry is not None:
                expiry.cancel()
            await session.close()

    async def _expire(self, connection: ServerConnection, session: SimulatedSession) -> None:
        """The session_expiry_s knob: the service's `session_expired` error, then a close."""
        assert self.session_expiry_s is not None
        await asyncio.sleep(self.session_expiry_s)
        try:
            minutes = self.session_expiry_s / 60
            await session.send_error(
                "session_expired", f"Your session hit the maximum duration of {minutes:g} minutes."
            )
            await connection.close(1000, "session expired")
        except ConnectionClosed:
            pass

    def _record(self, event: dict[str, Any], record: SessionRecord) -> None:
        """Keep a copy of each client event, with audio replaced by its decoded size."""
        copy = dict(event)
        if copy.get("type") == "input_audio_buffer.append" and isinstance(copy.get("audio"), str):
            try:
                size = len(base64.b64decode(copy["audio"], validate=True))
            except (binascii.Error, ValueError):
                size = len(copy["audio"])
            copy["audio"] = {"bytes": size}
        copy["_session"] = record.index
        copy["_dialect"] = record.dialect
        self.received.append(copy)

    async def _send(
        self, connection: ServerConnection, record: SessionRecord, event: dict[str, Any]
    ) -> None:
        """Serialise one server event, validating it in strict mode and honouring drop_after_events."""
        if record.dropped:
            raise ConnectionClosedError(None, None)
        event = {"type": event["type"], "event_id": new_id("event"), **event}
        if self.strict:
            try:
                validate_server_event(event, record.dialect)
            except SchemaError as exc:
                self.validation_errors.append((event["type"], exc))
                logger.error("simulator emitted an invalid %s event: %r", event["type"], exc)
        await connection.send(json.dumps(event))
        record.events_sent += 1
        if self.drop_after_events is not None and record.events_sent >= self.drop_after_events:
            # Abort the TCP connection with no close frame, as a network failure would.
            record.dropped = True
            connection.transport.abort()
            raise ConnectionClosedError(None, None)
