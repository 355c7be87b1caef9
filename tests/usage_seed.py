"""A seeded ledger for the usage tests: users, conversations, turns and usage rows at chosen local times.

The site runs in Europe/Madrid (UTC+1 in early March) so that some rows fall on another day in UTC.
Every value written is kept in `Seed` too, so a test can add them up itself, without the ORM.
"""
from __future__ import annotations

import dataclasses
import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from conversations.models import Conversation, Turn, Usage

ZONE = "Europe/Madrid"
FIRST, LAST = datetime.date(2026, 3, 1), datetime.date(2026, 3, 7)
TOKEN_KINDS = ("input_text_tokens", "input_audio_tokens", "input_cached_text_tokens", "input_cached_audio_tokens",
               "output_text_tokens", "output_audio_tokens")


def local(day: int, hour: int, minute: int = 0, second: int = 0, *, month: int = 3) -> datetime.datetime:
    """An aware datetime at this wall-clock time in the site's zone."""
    return datetime.datetime(2026, month, day, hour, minute, second, tzinfo=ZoneInfo(ZONE))


@dataclasses.dataclass
class Seed:
    """What was written: (user, local time, fields) per turn, usage row and conversation start."""

    users: dict[str, Any] = dataclasses.field(default_factory=dict)
    conversations: list[tuple[str, datetime.datetime]] = dataclasses.field(default_factory=list)
    turns: list[tuple[str, datetime.datetime, str, int]] = dataclasses.field(default_factory=list)
    usage: list[tuple[str, datetime.datetime, dict[str, Any]]] = dataclasses.field(default_factory=list)
    by_title: dict[str, Conversation] = dataclasses.field(default_factory=dict)

    def conversation(self, username: str, started: datetime.datetime, title: str) -> Conversation:
        conversation = Conversation.objects.create(
            user=self.users[username], provider="azure", deployment="gpt-realtime", dialect="ga", title=title,
            status=Conversation.Status.ENDED)
        Conversation.objects.filter(pk=conversation.pk).update(started_at=started, ended_at=started)
        self.conversations.append((username, started))
        self.by_title[title] = conversation
        return conversation

    def turn(self, conversation: Conversation, role: str, audio_ms: int, when: datetime.datetime) -> None:
        position = Turn.objects.filter(conversation=conversation).count()
        turn = Turn.objects.create(conversation=conversation, role=role, position=position, item_id=f"item_{position}",
                                   response_id=f"resp_{position}" if role == "assistant" else "", text=f"{role} {position}",
                                   audio_ms=audio_ms)
        Turn.objects.filter(pk=turn.pk).update(created_at=when)
        self.turns.append((conversation.user.username, when, role, audio_ms))

    def response(self, conversation: Conversation, when: datetime.datetime, *, cost: str, priced: bool = True,
                 estimated: bool = False, **tokens: int) -> None:
        counts = {kind: tokens.get(kind, 0) for kind in TOKEN_KINDS}
        counts["input_cached_tokens"] = counts["input_cached_text_tokens"] + counts["input_cached_audio_tokens"]
        counts["input_tokens"] = counts["input_text_tokens"] + counts["input_audio_tokens"]
        counts["output_tokens"] = counts["output_text_tokens"] + counts["output_audio_tokens"]
        counts["total_tokens"] = counts["input_tokens"] + counts["output_tokens"]
        fields = {**counts, "cost": Decimal(cost), "priced": priced, "estimated": estimated}
        row = Usage.objects.create(conversation=conversation, response_id=f"resp_{len(self.usage)}",
                                   model="gpt-realtime" if priced else "voice-unknown", status="completed", **fields)
        Usage.objects.filter(pk=row.pk).update(created_at=when)
        self.usage.append((conversation.user.username, when, fields))

    def in_range(self, when: datetime.datetime, first: datetime.date = FIRST, last: datetime.date = LAST) -> bool:
        return first <= when.astimezone(ZoneInfo(ZONE)).date() <= last


def seed(django_user_model) -> Seed:
    """Three users with conversations inside the first week of March 2026, and some just outside it."""
    s = Seed()
    for name, staff in (("ada", False), ("bob", False), ("dee", False), ("boss", True)):
        s.users[name] = django_user_model.objects.create_user(username=name, password="pw-" + name, is_staff=staff)

    # ada: a conversation on the 2nd, continued late on the 4th; its answer ends after midnight (the 5th
    # here, still the 4th in UTC), and that usage was estimated.
    a = s.conversation("ada", local(2, 10), "Planning a trip")
    s.turn(a, "user", 30_000, local(2, 10))
    s.turn(a, "assistant", 45_000, local(2, 10, 1))
    s.response(a, local(2, 10, 1), cost="0.150000", input_text_tokens=100, input_audio_tokens=1000,
               input_cached_text_tokens=20, input_cached_audio_tokens=300, output_text_tokens=50,
               output_audio_tokens=2000)
    s.turn(a, "user", 12_345, local(4, 23, 30))
    s.turn(a, "assistant", 20_000, local(5, 0, 10))
    s.response(a, local(5, 0, 10), cost="0.033333", estimated=True, input_text_tokens=10, input_audio_tokens=500,
               output_audio_tokens=800)
    # ada again on the 6th, with a model that has no price.
    b = s.conversation("ada", local(6, 9), "Unknown model")
    s.turn(b, "user", 5_000, local(6, 9))
    s.turn(b, "assistant", 7_000, local(6, 9, 0, 30))
    s.response(b, local(6, 9, 0, 30), cost="0", priced=False, input_text_tokens=200, output_text_tokens=300)
    # bob: half an hour into the 1st here, still the 28th of February in UTC.
    c = s.conversation("bob", local(1, 0, 30), "Night owl")
    s.turn(c, "user", 60_000, local(1, 0, 30))
    s.turn(c, "assistant", 61_000, local(1, 0, 31))
    s.response(c, local(1, 0, 31), cost="1.234567", input_text_tokens=7, input_audio_tokens=900,
               input_cached_audio_tokens=100, output_audio_tokens=1500)
    # dee: before the range, and one that starts on its last day but is answered after it.
    d = s.conversation("dee", local(28, 23, 30, month=2), "Too early")
    s.turn(d, "user", 1_000, local(28, 23, 59, 59, month=2))
    s.response(d, local(28, 23, 59, 59, month=2), cost="9.000000", input_text_tokens=9_999)
    e = s.conversation("dee", local(7, 23, 50), "Just in time")
    s.turn(e, "user", 2_000, local(8, 0, 0))
    s.response(e, local(8, 0, 5), cost="7.000000", output_text_tokens=7_777)
    return s
