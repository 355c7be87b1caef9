"""The simulator's WebSocket server: handshake routing and auth, knobs, and one session per connection."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import random
import time
import typing
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from openai.types.realtime.audio_transcription import AudioTranscription
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedError
from websockets.http11 import Request, Response

from ..schema import SchemaError, validate_server_event
from .dialects import GA, PREVIEW
from .ids import new_id
from .session import RESPONSE_OUTCOMES, Options, SimulatedSession, parse_frame

logger = logging.getLogger(__name__)

DEFAULT_DEPLOYMENTS = ("gpt-realtime", "gpt-4o-realtime-preview", "gpt-4o-mini-realtime-preview")
# Preview api-versions the simulator still serves; 2024-10-01-preview is retired on Azure.
PREVIEW_API_VERSIONS = ("2024-12-01-preview", "2025-04-01-preview")
# Transcription deployments that exist by default on the Azure routes (named after their models).
DEFAULT_TRANSCRIPTION_DEPLOYMENTS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
# On the OpenAI route the name is a model: the ones the openai package knows.
OPENAI_TRANSCRIPTION_MODELS = frozenset(
    name
    for arg in typing.get_args(AudioTranscription.model_fields["model"].annotation)
    for name in typing.get_args(arg)
)
AZURE_SESSION_S = 30 * 60
OPENAI_SESSION_S = 60 * 60
MAX_FRAME_BYTES = 32 * 2**20  # a 15 MiB append is about 20 MiB of base64 JSON
# refuse_next(ABORT) accepts the TCP connection and aborts it with no HTTP answer: the client sees 1006.
ABORT = 1006
# Bodies like the service's for the statuses tests refuse handshakes with.
_REFUSAL_MESSAGES = {
    429: (
        "429",
        "Requests to the Realtime operation have exceeded the rate limit of your current pricing "
        "tier. Please retry after {n} second{s}.",
    ),
    500: ("InternalServerError", "The server had an error while processing your request."),
    503: (
        "ServiceUnavailable",
        "The service is temporarily unable to process your request. Please try again later.",
    ),
}


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
    connection: ServerConnection | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Rejection:
    """A refused handshake."""

    status: int
    path: str
    body: dict[str, Any] = field(default_factory=dict)


class _Refused(Exception):
    """Raised while routing a handshake that must be answered with an HTTP error."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _azure_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _refusal(status: int, retry_after_s: int | None = None) -> _Refused:
    """A deliberate refusal (reject_status, refuse_next) with the service's body for that status.

    Azure's 429 names the wait in its message and in a `retry-after` header (seconds).
    """
    code, message = _REFUSAL_MESSAGES.get(status, (str(status), "Simulated rejection."))
    if status != 429:
        return _Refused(status, _azure_error(code, message))
    n = 1 if retry_after_s is None else retry_after_s
    return _Refused(status, _azure_error(code, message.format(n=n, s="" if n == 1 else "s")),
                    {"retry-after": str(n)})


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
        transcription_deployments: Iterable[str] | None = DEFAULT_TRANSCRIPTION_DEPLOYMENTS,
        transcription_failures: int = 0,
        reject_session_update_param: str | None = None,
        only_first_sessions: int | None = None,
        drop_mean_s: float | None = None,
        seed: int | None = None,
        keep_events: bool = True,
    ) -> None:
        if drop_mean_s is not None and drop_mean_s <= 0:
            raise ValueError("drop_mean_s must be above 0 (or None: no random drops)")
        if not 10 <= delta_ms <= 1000:
            raise ValueError("delta_ms must be between 10 and 1000 (the service uses 100-250)")
        self.api_key = api_key
        # A mapping names the model behind each deployment; a plain list means name == model.
        self.deployments: dict[str, str] = (
            dict(deployments)
            if isinstance(deployments, Mapping)
            else {name: name for name in deployments}
        )
        # Only a mapping says which model runs behind a deployment; a plain list names realtime ones.
        self.non_realtime_deployments = (
            frozenset(name for name, model in deployments.items() if "realtime" not in model)
            if isinstance(deployments, Mapping)
            else frozenset()
        )
        self.session_expiry_s = session_expiry_s
        self.reject_status = reject_status
        self.drop_after_events = drop_after_events
        # The first N sessions get session_expiry_s and drop_after_events; later ones live, so a
        # relay's reconnection can be seen to work. None: every session.
        self.only_first_sessions = only_first_sessions
        # Network drops at random moments, as a flaky path to the service has them: each session is
        # aborted after an exponentially distributed lifetime with this mean (seeded, so a run repeats).
        self.drop_mean_s = drop_mean_s
        self._random = random.Random(seed)
        # A long-running simulator (a soak) must not keep every client event it ever received.
        self.keep_events = keep_events
        self.strict = strict
        self.preview_api_versions = frozenset(preview_api_versions)
        self.transcription_deployments = (
            None if transcription_deployments is None else frozenset(transcription_deployments)
        )
        self.options = Options(
            delta_ms=delta_ms,
            realtime_pacing=realtime_pacing,
            response_delay_s=response_delay_s,
            transcription_delay_s=transcription_delay_s,
            transcription_failures=transcription_failures,
            reject_session_update_param=reject_session_update_param,
        )
        self.received: list[dict[str, Any]] = []
        self.sessions: list[SessionRecord] = []
        self.rejected: list[Rejection] = []
        self.validation_errors: list[tuple[str, SchemaError]] = []
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop serving; for other threads
        self._refusals: deque[tuple[int, int | None]] = deque()  # (status, retry-after seconds)
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
        self.loop = asyncio.get_running_loop()

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

    # --- failures on demand ------------------------------------------------------------------
    # The coroutines run on the simulator's loop. From another thread (a browser test):
    #     asyncio.run_coroutine_threadsafe(sim.expire_sessions(), sim.loop).result(15)
    # (a caller whose own loop runs the client awaits asyncio.wrap_future(...) instead, since a
    # close waits for the client's close frame). Each returns how many live sessions it reached;
    # `index` picks one session by its record's index.

    def next_responses(self, outcomes: Iterable[str]) -> None:
        """Queue how the next responses end: "completed", "failed", "incomplete:max_output_tokens" or "incomplete:content_filter"."""
        queued = list(outcomes)
        unknown = [outcome for outcome in queued if outcome not in RESPONSE_OUTCOMES]
        if unknown:
            raise ValueError(f"unknown response outcomes {unknown}; use {sorted(RESPONSE_OUTCOMES)}")
        self.options.response_outcomes.extend(queued)  # one atomic extend: safe from any thread

    def next_replies(self, texts: Iterable[str]) -> None:
        """Queue what the next responses say, one per response in creation order, instead of the derived reply."""
        queued = list(texts)
        if not all(isinstance(text, str) and text.strip() for text in queued):
            raise ValueError("a scripted reply must be non-empty text")
        self.options.reply_texts.extend(queued)  # one atomic extend: safe from any thread

    def next_heard(self, texts: Iterable[str]) -> None:
        """Queue what the next committed user audio items say, across sessions (else their length).

        Each becomes that item's transcript and what the simulated model hears (with transcription
        off too), so a spoken turn can name a tool's purpose: `sim.next_heard(["What time is it?"])`.
        """
        queued = list(texts)
        if not all(isinstance(text, str) and text.strip() for text in queued):
            raise ValueError("a scripted transcript must be non-empty text")
        self.options.heard_texts.extend(queued)  # one atomic extend: safe from any thread

    def refuse_next(self, status: int, n: int = 1, *, retry_after_s: int | None = None) -> None:
        """Refuse the next `n` handshakes with HTTP `status`, or with ABORT (1006) drop them unanswered.

        A 429 says to retry after `retry_after_s` seconds (1 unless given), in its body and header.
        """
        self._refusals.extend([(status, retry_after_s)] * n)

    async def inject_server_error(self, index: int | None = None, message: str | None = None) -> int:
        """Send the service's mid-session `server_error` (code null); the sessions stay open."""
        records = self._live(index)
        for record in records:
            assert record.session is not None
            try:
                await record.session.send_server_error(message)
            except ConnectionClosed:
                pass
        return len(records)

    async def expire_sessions(self, index: int | None = None) -> int:
        """End sessions now as the service does at its maximum duration: `session_expired`, then close 1001."""
        records = self._live(index)
        await asyncio.gather(*(self._expire_now(record) for record in records))
        return len(records)

    async def drop_sessions(self, index: int | None = None) -> int:
        """Abort sessions' TCP connections now, with no close frame, as a network failure does."""
        records = self._live(index)
        for record in records:
            self._abort(record)
        await asyncio.sleep(0)  # let the handlers see the lost connections
        return len(records)

    async def close_sessions(self, code: int = 1011, reason: str = "", index: int | None = None) -> int:
        """Close sessions now with a WebSocket close code, e.g. 1011 (server error) or 1001 (going away)."""
        connections = [record.connection for record in self._live(index)]
        await asyncio.gather(*(c.close(code, reason) for c in connections if c is not None))
        return len(connections)

    def history(self, index: int = -1) -> list[tuple[str, str, str]]:
        """Session `index`'s conversation as (role, kind, text) tuples; kind is "audio" or "text"."""
        session = self.sessions[index].session
        assert session is not None
        return session.history()

    def _live(self, index: int | None) -> list[SessionRecord]:
        """The open sessions, or the one at `index` if it is open."""
        records = self.sessions if index is None else [self.sessions[index]]
        return [
            r
            for r in records
            if not r.closed and r.connection is not None and r.session is not None
        ]

    def _faulty(self, record: SessionRecord) -> bool:
        """Whether the timed ending knobs apply to this session (see only_first_sessions)."""
        return self.only_first_sessions is None or record.index < self.only_first_sessions

    # --- handshake ---------------------------------------------------------------------------

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """Route and authenticate the handshake, answering errors with the service's JSON bodies."""
        try:
            if self._refusals:
                status, retry_after_s = self._refusals.popleft()
                if status == ABORT:
                    return await self._abort_handshake(connection, request)
                raise _refusal(status, retry_after_s)
            if self.reject_status is not None:
                raise _refusal(self.reject_status)
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
            self._check_realtime_model(route)
        except _Refused as refusal:
            self.rejected.append(Rejection(refusal.status, request.path, refusal.body))
            response = connection.respond(refusal.status, json.dumps(refusal.body) + "\n")
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "application/json"
            for name, value in refusal.headers.items():
                response.headers[name] = value
            return response
        self._routes[connection] = route
        return None

    async def _abort_handshake(self, connection: ServerConnection, request: Request) -> Response:
        """Drop the TCP connection instead of answering, as a network failure mid-handshake does."""
        self.rejected.append(Rejection(ABORT, request.path))
        connection.transport.abort()
        await asyncio.sleep(0)  # websockets writes no response once it has seen the connection lost
        return connection.respond(503, "")

    def _check_realtime_model(self, route: Route) -> None:
        """Azure refuses a deployment of a model that has no realtime operation with 400."""
        model = self.deployments[route.deployment]
        if route.provider == "azure" and route.deployment in self.non_realtime_deployments:
            raise _Refused(
                400,
                _azure_error(
                    "OperationNotSupported",
                    f"The realtime operation does not work with the specified model, {model}. Please "
                    "choose different model and try again. You can learn more about which models can "
                    "be used with each operation here: https://go.microsoft.com/fwlink/?linkid=2197993.",
                ),
            )

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
            connection=connection,
        )
        self.sessions.append(record)
        timed_expiry = self.session_expiry_s is not None and self._faulty(record)
        lifetime = self.session_expiry_s if timed_expiry else self._maximum_s(record)
        assert lifetime is not None

        async def send(event: dict[str, Any]) -> None:
            await self._send(connection, record, event)

        session = SimulatedSession(
            dialect=route.dialect,
            model=self.deployments[route.deployment],
            send=send,
            options=self.options,
            expires_at=int(time.time() + lifetime + 0.999),
            transcription_models=(
                OPENAI_TRANSCRIPTION_MODELS
                if route.provider == "openai"
                else self.transcription_deployments
            ),
        )
        record.session = session
        expiry = asyncio.ensure_future(self._expire(record, lifetime)) if timed_expiry else None
        drop = (
            asyncio.ensure_future(self._drop_later(record, self._random.expovariate(1 / self.drop_mean_s)))
            if self.drop_mean_s is not None and self._faulty(record)
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
            for timer in (expiry, drop):
                if timer is not None:
                    timer.cancel()
            await session.close()

    @staticmethod
    def _maximum_s(record: SessionRecord) -> int:
        """The service's maximum session length: 30 minutes on Azure, 60 on OpenAI."""
        return OPENAI_SESSION_S if record.provider == "openai" else AZURE_SESSION_S

    async def _expire(self, record: SessionRecord, after_s: float) -> None:
        """The session_expiry_s knob: expire the session when its time is up."""
        await asyncio.sleep(after_s)
        logger.warning("Fault injected: session %d expired after %gs (session_expiry_s)", record.index, after_s)
        await self._expire_now(record)

    async def _drop_later(self, record: SessionRecord, after_s: float) -> None:
        """The drop_mean_s knob: abort the session's connection after `after_s` seconds."""
        await asyncio.sleep(after_s)
        if not record.closed and record.connection is not None:
            logger.warning("Fault injected: session %d dropped after %.1fs (drop_mean_s)", record.index, after_s)
            self._abort(record)

    async def _expire_now(self, record: SessionRecord) -> None:
        """The service's end of a session: `session_expired` naming its maximum, then close 1001."""
        assert record.session is not None and record.connection is not None
        minutes = self._maximum_s(record) // 60
        try:
            await record.session.send_error(
                "session_expired", f"Your session hit the maximum duration of {minutes} minutes."
            )
            await record.connection.close(1001, "session expired")
        except ConnectionClosed:
            pass

    def _abort(self, record: SessionRecord) -> None:
        """Abort the TCP connection with no close frame, as a network failure would."""
        assert record.connection is not None
        record.dropped = True
        record.connection.transport.abort()

    def _record(self, event: dict[str, Any], record: SessionRecord) -> None:
        """Keep a copy of each client event, with audio replaced by its decoded size."""
        if not self.keep_events:
            return
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
        if (
            self.drop_after_events is not None
            and record.events_sent >= self.drop_after_events
            and self._faulty(record)
        ):
            self._abort(record)
            raise ConnectionClosedError(None, None)
