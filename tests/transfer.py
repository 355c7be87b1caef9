"""Export documents for the transfer tests."""
from __future__ import annotations

from typing import Any

from conversations.transfer import format


def document(**changes: Any) -> dict[str, Any]:
    """A valid export document of a two-turn conversation."""
    doc = {
        "format": format.FORMAT,
        "version": format.VERSION,
        "exported_at": "2026-11-25T10:00:00+00:00",
        "conversation": {
            "id": "0b7c4c1e-5c1a-4f7a-9a55-2f4c1b7de001", "title": "Apricots", "started_at": "2026-11-24T09:00:00+00:00",
            "ended_at": "2026-11-24T09:05:00+00:00", "status": "ended", "provider": "azure",
            "deployment": "gpt-realtime", "dialect": "ga", "error": "",
        },
        "settings": {"voice": "alloy"},
        "turns": [
            {"role": "user", "position": 0, "text": "Remember apricot", "started_at": "2026-11-24T09:00:05+00:00",
             "interrupted": False, "audio_ms": 1200, "status": "", "status_reason": "", "response_id": ""},
            {"role": "assistant", "position": 1, "text": "I will.", "started_at": "2026-11-24T09:00:07+00:00",
             "interrupted": True, "audio_ms": 700, "status": "", "status_reason": "", "response_id": "resp_1"},
        ],
        "usage": [
            {"response_id": "resp_1", "model": "gpt-realtime", "status": "completed", "input_text_tokens": 5,
             "input_audio_tokens": 10, "input_cached_tokens": 0, "output_text_tokens": 3, "output_audio_tokens": 20,
             "input_tokens": 15, "output_tokens": 23, "total_tokens": 38, "estimated": False,
             "created_at": "2026-11-24T09:00:09+00:00"},
        ],
    }
    doc.update(changes)
    return doc
