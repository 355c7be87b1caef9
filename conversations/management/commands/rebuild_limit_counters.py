"""Rebuild the limit counters (today's audio and cost, this month's cost) from the database's ledger."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from django.core.management.base import BaseCommand

from conversations import selectors_limits
from conversations.relay.quota import limit_store


class Command(BaseCommand):
    help = "Recompute every user's limit counters for today and this month from stored usage and turns."

    def handle(self, *args: Any, **options: Any) -> None:
        now = datetime.now(timezone.utc)
        # The ledger is read first (synchronously), then written to the store in one event loop.
        users = selectors_limits.users_with_usage(now=now)
        totals = {user_id: selectors_limits.ledger_totals(user_id=user_id, now=now) for user_id in users}

        async def write() -> None:
            store = limit_store()
            try:
                for user_id, user_totals in totals.items():
                    await store.reset(user_id, user_totals, now)
            finally:
                await store.close()

        asyncio.run(write())
        self.stdout.write(f"Rebuilt the limit counters of {len(totals)} user(s).")
