"""Delete recordings older than the retention period; the transcripts stay."""
from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from conversations import services


class Command(BaseCommand):
    help = ("Delete conversation recordings last added to more than RECORDING_RETENTION_DAYS days ago "
            "(or --days). Transcripts stay. Run it daily.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None,
                            help="Keep this many days instead of RECORDING_RETENTION_DAYS.")

    def handle(self, *args: Any, days: int | None = None, **options: Any) -> None:
        days = settings.RECORDING_RETENTION_DAYS if days is None else days
        if days < 0:
            raise CommandError("--days must be 0 (keep everything) or more.")
        if days == 0:
            self.stdout.write("Recordings are kept until deleted (RECORDING_RETENTION_DAYS is 0); nothing to do.")
            return
        cutoff = timezone.now() - datetime.timedelta(days=days)
        count = services.recordings_purge(older_than=cutoff)
        self.stdout.write(self.style.SUCCESS(
            f"Deleted the recordings of {count} conversation{'s' if count != 1 else ''} older than {days} days."))
