"""Close conversations left "active" by a worker that died, as the servers' periodic sweep does."""
from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversations import sweep


class Command(BaseCommand):
    help = ("Store conversations that no worker holds any more (their worker was killed or crashed) as ended, "
            "interrupted, at the time of their last turn. Waits the relay's grace period for pages that are "
            "reconnecting, unless --now.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--now", action="store_true", help="Do not wait the grace period before closing orphans.")
        parser.add_argument("--no-server-running", action="store_true",
                            help="Without REDIS_URL: confirm no server is running, so every active conversation is an orphan.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.REDIS_URL and not options["no_server_running"]:
            # Without Redis only the server process knows what it holds (and sweeps at its own startup).
            raise CommandError("Without REDIS_URL this command cannot see the conversations a running server holds. "
                               "Stop the server and pass --no-server-running, or let the server sweep at its startup.")
        wait_s = 0.0 if options["now"] or not settings.REDIS_URL else sweep.grace_from_settings()
        closed = asyncio.run(sweep.sweep_once(wait_s=wait_s))
        self.stdout.write(f"Closed {len(closed)} interrupted conversation(s)." + (f" {', '.join(closed)}" if closed else ""))
