"""A realtime simulator: a WebSocket server speaking Azure OpenAI's GA and preview dialects and OpenAI's."""

from .server import ABORT, RealtimeSimulator, SessionRecord

__all__ = ["ABORT", "RealtimeSimulator", "SessionRecord"]
