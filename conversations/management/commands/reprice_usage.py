"""Recompute the stored cost of past usage at today's prices, after correcting a wrong price."""
from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversations import services


def _day(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a day; write it like 2025-10-06.") from None


class Command(BaseCommand):
    help = ("Recompute the stored cost of the usage recorded from --from to --to (days, inclusive, in TIME_ZONE) "
            "at the prices now in the admin, and print every change. Usage otherwise keeps the cost of its day.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="start", required=True, help="The first day, e.g. 2025-10-06.")
        parser.add_argument("--to", dest="end", default=None, help="The last day (default: no end).")
        parser.add_argument("--model", default="", help="Only usage of this model name, as the usage rows show it.")
        parser.add_argument("--dry-run", action="store_true", help="Print what would change and change nothing.")

    def handle(self, *args: Any, start: str, end: str | None, model: str, dry_run: bool, **options: Any) -> None:
        first, last = _day(start), _day(end) if end else None
        if last is not None and last < first:
            raise CommandError("--to is before --from.")
        seen, changes = services.usage_reprice(start=first, end=last, model=model, dry_run=dry_run)
        for change in changes:
            old = f"{change.old_cost:.6f}" if change.old_priced else "no price"
            new = f"{change.new_cost:.6f} ({change.new_price})" if change.new_price else "no price"
            self.stdout.write(f"{change.response_id} of conversation {change.conversation_id}, model "
                              f"{change.model or '(none)'}: {old} → {new}")
        before = sum(c.old_cost for c in changes)
        after = sum(c.new_cost for c in changes)
        verb = "Would change" if dry_run else "Changed"
        self.stdout.write(self.style.SUCCESS(
            f"{verb} {len(changes)} of {seen} usage rows: {before:.6f} → {after:.6f} USD in all."))
