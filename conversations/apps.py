"""App configuration for conversations."""
from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    """Spoken conversations with realtime models: relay, persistence, history."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "conversations"

    def ready(self) -> None:
        """Register system checks and signal handlers."""
        from . import checks, signals  # noqa: F401
        from .tools import checks as tool_checks  # noqa: F401
