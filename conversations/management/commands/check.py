"""Django's `check`, followed by the realtime target the app will use, so a newcomer sees where it will connect."""
from __future__ import annotations

from typing import Any

from django.core.management.commands.check import Command as DjangoCheckCommand

from conversations.upstream import describe_target


class Command(DjangoCheckCommand):
    """`manage.py check` as Django's, then one line about the realtime target."""

    def handle(self, *app_labels: Any, **options: Any) -> None:
        """Name the target first, so it is shown even when a check fails."""
        try:
            self.stdout.write(describe_target())
        except ValueError as exc:  # a malformed endpoint: the checks below explain what is wrong
            self.stdout.write(f"Realtime: cannot build the target ({exc}).")
        super().handle(*app_labels, **options)
