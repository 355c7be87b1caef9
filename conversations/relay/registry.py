"""The live conversations of this process, so a browser that reconnects finds the one it left."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .conversation import LiveConversation


class LiveRegistry:
    """Conversation id → live conversation; each conversation's state lives on its own object."""

    def __init__(self) -> None:
        self._live: dict[str, LiveConversation] = {}

    def get(self, conversation_id: str) -> LiveConversation | None:
        """The live conversation with this id, if it is live in this process and not ending."""
        live = self._live.get(conversation_id)
        return None if live is None or live.ended else live

    def ending(self, conversation_id: str) -> LiveConversation | None:
        """The conversation with this id if it is ending in this process (storing its last writes)."""
        live = self._live.get(conversation_id)
        return live if live is not None and live.ended else None

    def add(self, conversation_id: str, live: LiveConversation) -> None:
        """Register a conversation that has started."""
        self._live[conversation_id] = live

    def remove(self, conversation_id: str, live: LiveConversation) -> None:
        """Forget a conversation that ended (only if it is still the one registered)."""
        if self._live.get(conversation_id) is live:
            del self._live[conversation_id]

    def all(self) -> list[LiveConversation]:
        """Every live conversation, for shutdown and tests."""
        return list(self._live.values())


# Process-wide, like a connection pool: it only maps ids to objects that hold their own state.
live_conversations = LiveRegistry()
