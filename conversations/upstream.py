"""Choose the upstream realtime target from settings, starting the built-in simulator when none is set."""
from __future__ import annotations

import asyncio
import logging
import secrets
from functools import lru_cache

from django.conf import settings

from .realtime import options
from .realtime.client import (
    GA,
    EntraTokenProvider,
    RealtimeTarget,
    TokenProvider,
    azure_dialect,
    azure_target,
    openai_target,
)

logger = logging.getLogger(__name__)


class _EmbeddedSimulator:
    """The in-process simulator used when no endpoint is configured, one per event loop."""

    def __init__(self) -> None:
        self.key = secrets.token_urlsafe(24)
        self._sim = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    async def url(self) -> str:
        """Start the simulator on a loopback port the first time, and return its URL."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A new loop (tests, a restarted server): the old server died with its loop.
            self._sim, self._loop, self._lock = None, loop, asyncio.Lock()
        assert self._lock is not None
        async with self._lock:
            if self._sim is None:
                from .realtime.simulator import RealtimeSimulator

                # The simulator refuses transcription deployments it does not have, as Azure does.
                sim = RealtimeSimulator(
                    api_key=self.key,
                    deployments=(settings.AZURE_OPENAI_DEPLOYMENT,),
                    transcription_deployments=transcription_models(),
                )
                await sim.start(host="127.0.0.1", port=0)
                logger.info("No realtime endpoint configured: serving the built-in simulator at %s", sim.url)
                self._sim = sim
            return self._sim.url


# Process-wide, like a connection pool: it holds no per-conversation state.
_embedded = _EmbeddedSimulator()


async def resolve_target() -> RealtimeTarget:
    """Return the configured target: Azure, OpenAI, or the built-in simulator."""
    if settings.REALTIME_SIMULATED:
        return azure_target(
            endpoint=await _embedded.url(),
            deployment=settings.AZURE_OPENAI_DEPLOYMENT,
            api_version=settings.AZURE_OPENAI_API_VERSION,
            api_key=_embedded.key,
            provider="simulator",
        )
    if settings.AZURE_OPENAI_ENDPOINT:
        return azure_target(
            endpoint=settings.AZURE_OPENAI_ENDPOINT,
            deployment=settings.AZURE_OPENAI_DEPLOYMENT,
            api_version=settings.AZURE_OPENAI_API_VERSION,
            api_key=settings.AZURE_OPENAI_API_KEY,
        )
    return openai_target(
        api_key=settings.OPENAI_API_KEY, model=settings.OPENAI_REALTIME_MODEL, base_url=settings.OPENAI_BASE_URL
    )


@lru_cache(maxsize=1)
def entra_token_provider() -> EntraTokenProvider:
    """One cached Entra ID token provider per process, so tokens are reused across conversations."""
    return EntraTokenProvider()


def token_provider_for(target: RealtimeTarget) -> TokenProvider | None:
    """Keyless Azure targets authenticate with an Entra ID token; the others carry a key."""
    if target.provider == "azure" and not target.api_key:
        return entra_token_provider()
    return None


def configured_dialect() -> str:
    """The dialect conversations will speak: preview only for an Azure (or simulated) `-preview` api-version."""
    if settings.REALTIME_SIMULATED or settings.AZURE_OPENAI_ENDPOINT:
        return azure_dialect(settings.AZURE_OPENAI_API_VERSION)
    return GA


# The transcription deployment the built-in simulator offers when none is configured, so a fresh
# `make run` transcribes both sides.
SIMULATOR_TRANSCRIPTION_DEPLOYMENT = "whisper-1"


def transcription_models() -> tuple[str, ...]:
    """What users may choose for transcription: OpenAI's models, or on Azure the one configured deployment."""
    deployment = settings.AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT.strip()
    if settings.REALTIME_SIMULATED:
        return (deployment or SIMULATOR_TRANSCRIPTION_DEPLOYMENT,)
    if settings.AZURE_OPENAI_ENDPOINT:
        return (deployment,) if deployment else ()
    return options.TRANSCRIPTION_MODELS


def describe_target() -> str:
    """One line naming the realtime service conversations will use, its dialect and auth (never a key)."""
    dialect = configured_dialect()
    models = transcription_models()
    if settings.REALTIME_SIMULATED:
        where = "the built-in simulator (no AZURE_OPENAI_ENDPOINT or OPENAI_API_KEY set)"
        auth = "a key generated at start"
        deployment = settings.AZURE_OPENAI_DEPLOYMENT
    elif settings.AZURE_OPENAI_ENDPOINT:
        target = azure_target(
            endpoint=settings.AZURE_OPENAI_ENDPOINT,
            deployment=settings.AZURE_OPENAI_DEPLOYMENT,
            api_version=settings.AZURE_OPENAI_API_VERSION,
            api_key=settings.AZURE_OPENAI_API_KEY,
        )
        where = f"Azure OpenAI at {target.url}"
        auth = "api-key header" if settings.AZURE_OPENAI_API_KEY else "Microsoft Entra ID (DefaultAzureCredential)"
        deployment = target.deployment
    else:
        target = openai_target(
            api_key=settings.OPENAI_API_KEY, model=settings.OPENAI_REALTIME_MODEL, base_url=settings.OPENAI_BASE_URL
        )
        where, auth, deployment = f"OpenAI at {target.url}", "OPENAI_API_KEY", target.deployment
    transcription = ", ".join(models) if models else "off (set AZURE_OPENAI_TRANSCRIPTION_DEPLOYMENT)"
    return (
        f"Realtime: {where}; deployment/model {deployment}, {dialect.upper()} dialect, auth {auth}; "
        f"user transcription: {transcription}."
    )
