"""Serve the realtime simulator on its own, for pointing AZURE_OPENAI_ENDPOINT at it."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from conversations.realtime.simulator import RealtimeSimulator
from conversations.realtime.simulator.server import DEFAULT_DEPLOYMENTS


class Command(BaseCommand):
    """python manage.py realtime_simulator --host 127.0.0.1 --port 8765 [--key KEY] [--deployment NAME ...]"""

    help = "Serve a simulated Azure OpenAI / OpenAI realtime endpoint (GA and preview dialects)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765, help="0 picks a free port.")
        parser.add_argument(
            "--key",
            "--api-key",
            dest="api_key",
            default=None,
            help="The key clients must send; a random one is made and printed when omitted.",
        )
        parser.add_argument(
            "--deployment",
            action="append",
            dest="deployments",
            help="Realtime deployment name (repeatable); the first is the one to configure.",
        )
        parser.add_argument(
            "--transcription-deployment",
            action="append",
            dest="transcription_deployments",
            help="Transcription deployment name (repeatable); default whisper-1, gpt-4o-transcribe, "
            "gpt-4o-mini-transcribe.",
        )
        parser.add_argument(
            "--response-delay", type=float, default=0.0, help="Seconds before each response starts."
        )
        parser.add_argument(
            "--session-expiry", type=float, default=None, help="End sessions after N seconds."
        )
        parser.add_argument(
            "--drop-mean",
            type=float,
            default=None,
            help="Abort each session's connection at a random moment, N seconds after it opened on "
            "average (exponentially distributed), as a flaky network does.",
        )
        parser.add_argument(
            "--seed", type=int, default=None, help="Seed for --drop-mean's random moments."
        )
        parser.add_argument(
            "--no-pacing", action="store_true", help="Stream audio as fast as possible."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # A simulator that accepted any key would hide a relay that forgets to send one.
        api_key = options["api_key"] or secrets.token_urlsafe(18)
        extra: dict[str, Any] = {}
        if options["transcription_deployments"]:
            extra["transcription_deployments"] = options["transcription_deployments"]
        simulator = RealtimeSimulator(
            api_key=api_key,
            deployments=tuple(options["deployments"] or DEFAULT_DEPLOYMENTS),
            response_delay_s=options["response_delay"],
            session_expiry_s=options["session_expiry"],
            realtime_pacing=not options["no_pacing"],
            drop_mean_s=options["drop_mean"],
            seed=options["seed"],
            # Nobody reads the received events of a standalone simulator: keeping them would grow forever.
            keep_events=False,
            **extra,
        )
        try:
            asyncio.run(self._serve(simulator, options["host"], options["port"]))
        except KeyboardInterrupt:
            pass

    async def _serve(self, simulator: RealtimeSimulator, host: str, port: int) -> None:
        await simulator.start(host=host, port=port)
        deployments = list(simulator.deployments)
        self.stdout.write(
            f"Realtime simulator listening on {simulator.url}. Configure the app with:\n"
            f"  AZURE_OPENAI_ENDPOINT={simulator.url}/\n"
            f"  AZURE_OPENAI_API_KEY={simulator.api_key}\n"
            f"  AZURE_OPENAI_DEPLOYMENT={deployments[0]}\n"
            f"(deployments: {', '.join(deployments)}; GA path /openai/v1/realtime, preview path "
            "/openai/realtime, OpenAI path /v1/realtime)"
        )
        self.stdout.flush()  # a parent process reads these lines through a pipe
        try:
            await simulator.serve_forever()
        finally:
            await simulator.stop()
