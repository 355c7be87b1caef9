"""Serve the realtime simulator on its own, for pointing AZURE_OPENAI_ENDPOINT at it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from conversations.realtime.simulator import RealtimeSimulator
from conversations.realtime.simulator.server import DEFAULT_DEPLOYMENTS

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    """python manage.py realtime_simulator --host 127.0.0.1 --port 8765 --api-key KEY [--deployment NAME ...]"""

    help = "Serve a simulated Azure OpenAI / OpenAI realtime endpoint (GA and preview dialects)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument(
            "--api-key", default=None, help="Required credential; omit to accept any."
        )
        parser.add_argument(
            "--deployment",
            action="append",
            dest="deployments",
            help="Deployment name (repeatable).",
        )
        parser.add_argument(
            "--response-delay", type=float, default=0.0, help="Seconds before each response starts."
        )
        parser.add_argument(
            "--session-expiry", type=float, default=None, help="End sessions after N seconds."
        )
        parser.add_argument(
            "--no-pacing", action="store_true", help="Stream audio as fast as possible."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        simulator = RealtimeSimulator(
            api_key=options["api_key"],
            deployments=tuple(options["deployments"] or DEFAULT_DEPLOYMENTS),
            response_delay_s=options["response_delay"],
            session_expiry_s=options["session_expiry"],
            realtime_pacing=not options["no_pacing"],
        )
        try:
            asyncio.run(self._serve(simulator, options["host"], options["port"]))
        except KeyboardInterrupt:
            pass

    async def _serve(self, simulator: RealtimeSimulator, host: str, port: int) -> None:
        await simulator.start(host=host, port=port)
        self.stdout.write(
            f"Realtime simulator listening. Set AZURE_OPENAI_ENDPOINT={simulator.url} "
            f"(deployments: {', '.join(simulator.deployments)})"
        )
        try:
            await simulator.serve_forever()
        finally:
            await simulator.stop()
