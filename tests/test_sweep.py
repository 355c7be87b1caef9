"""The sweep: conversations a dead worker left "active" are closed as interrupted at their last turn's time;
live ones, ones whose page reconnects within the grace period and ended ones are left alone."""
from __future__ import annotations

import asyncio
import datetime

import pytest
from channels.db import database_sync_to_async
from django.core.management import CommandError, call_command
from django.utils import timezone

from conversations import services, sweep
from conversations.models import Conversation, Turn

pytestmark = pytest.mark.django_db(transaction=True)


def conversation(user, *, turns: int = 2, status: str = "active") -> Conversation:
    """A conversation with turns stored a minute apart, an hour ago."""
    c = Conversation.objects.create(user=user, provider="simulator", deployment="d", dialect="ga", status=status)
    start = timezone.now() - datetime.timedelta(hours=1)
    Conversation.objects.filter(pk=c.pk).update(started_at=start)
    for i in range(turns):
        t = Turn.objects.create(conversation=c, role="user" if i % 2 == 0 else "assistant", position=i,
                                item_id=f"item_{i}", text=f"line {i}")
        Turn.objects.filter(pk=t.pk).update(created_at=start + datetime.timedelta(minutes=i + 1))
    if status != "active":
        Conversation.objects.filter(pk=c.pk).update(ended_at=timezone.now(), ended_by="user")
    return Conversation.objects.get(pk=c.pk)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.asyncio
async def test_an_orphan_is_closed_as_interrupted_at_its_last_turn_once_it_stayed_orphaned_for_the_grace_period(user):
    orphan = await database_sync_to_async(conversation)(user, turns=3)
    live = await database_sync_to_async(conversation)(user)
    ended = await database_sync_to_async(conversation)(user, status="ended")
    clock = Clock()
    sweeper = sweep.Sweeper(grace_s=20, live=lambda: {str(live.pk)}, clock=clock)

    assert await sweeper.sweep() == []  # first seen: a suspect, its page may be reconnecting it
    assert sweeper.suspects == [str(orphan.pk)]
    clock.now += 19
    assert await sweeper.sweep() == []
    clock.now += 1
    assert await sweeper.sweep() == [str(orphan.pk)]

    @database_sync_to_async
    def reread():
        return [Conversation.objects.get(pk=c.pk) for c in (orphan, live, ended)]

    orphan_now, live_now, ended_now = await reread()
    last_turn = await database_sync_to_async(lambda: Turn.objects.filter(conversation=orphan).latest("created_at"))()
    assert (orphan_now.status, orphan_now.ended_by, orphan_now.ended_at) == ("ended", "interrupted", last_turn.created_at)
    assert (live_now.status, live_now.ended_at, live_now.ended_by) == ("active", None, "")
    assert (ended_now.status, ended_now.ended_by, ended_now.ended_at) == ("ended", "user", ended.ended_at)


@pytest.mark.asyncio
async def test_a_conversation_whose_page_reconnects_it_within_the_grace_period_is_left_alone(user):
    c = await database_sync_to_async(conversation)(user)
    clock, listed = Clock(), set()
    sweeper = sweep.Sweeper(grace_s=20, live=lambda: listed, clock=clock)
    await sweeper.sweep()
    listed.add(str(c.pk))  # continued on another worker
    clock.now += 30
    assert await sweeper.sweep() == [] and sweeper.suspects == []
    assert (await database_sync_to_async(Conversation.objects.get)(pk=c.pk)).status == "active"


@pytest.mark.asyncio
async def test_one_that_goes_live_between_the_look_and_the_write_is_left_alone(user):
    c = await database_sync_to_async(conversation)(user)
    looks = iter([set(), {str(c.pk)}])  # the registry read right before the write lists it
    sweeper = sweep.Sweeper(grace_s=0, live=lambda: next(looks))
    assert await sweeper.sweep(immediate=True) == []
    assert (await database_sync_to_async(Conversation.objects.get)(pk=c.pk)).status == "active"


def test_closing_is_idempotent_across_workers_and_never_touches_a_row_no_longer_active(user):
    c = conversation(user, turns=0)
    assert services.conversations_interrupt(conversation_ids=[str(c.pk)]) == 1
    assert services.conversations_interrupt(conversation_ids=[str(c.pk)]) == 0  # another worker's sweep
    stored = Conversation.objects.get(pk=c.pk)
    assert stored.ended_at == stored.started_at and stored.ended_by == "interrupted"  # nothing said: its start
    services.conversation_continue(conversation_id=c.pk, settings={})  # the owner continues it later: live again
    stored = Conversation.objects.get(pk=c.pk)
    assert (stored.status, stored.ended_at, stored.ended_by) == ("active", None, "")


@pytest.mark.asyncio
async def test_without_redis_the_startup_sweep_closes_every_active_conversation_not_live_here(user, settings):
    settings.REDIS_URL = ""
    settings.SWEEP_INTERVAL_SECONDS = 60
    c = await database_sync_to_async(conversation)(user)
    task = sweep.start_from_settings()
    try:
        for _ in range(100):
            if (await database_sync_to_async(Conversation.objects.get)(pk=c.pk)).ended_by:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    stored = await database_sync_to_async(Conversation.objects.get)(pk=c.pk)
    assert (stored.status, stored.ended_by) == ("ended", "interrupted")


@pytest.mark.asyncio
async def test_a_sweep_that_cannot_read_the_registry_closes_nothing_and_the_next_round_goes_on(user, caplog):
    c = await database_sync_to_async(conversation)(user)
    calls = 0

    def registry():
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("Redis is away")
        return set()

    task = asyncio.create_task(sweep.run_sweeps(0.01, sweeper=sweep.Sweeper(grace_s=0, live=registry)))
    try:
        for _ in range(200):
            if (await database_sync_to_async(Conversation.objects.get)(pk=c.pk)).ended_by:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
    assert "sweep for interrupted conversations was skipped: ConnectionError" in caplog.text
    assert (await database_sync_to_async(Conversation.objects.get)(pk=c.pk)).ended_by == "interrupted"


def test_the_command_refuses_without_redis_unless_told_no_server_runs(user, settings):
    settings.REDIS_URL = ""
    c = conversation(user)
    with pytest.raises(CommandError, match="--no-server-running"):
        call_command("sweep_conversations")
    assert Conversation.objects.get(pk=c.pk).status == "active"
    call_command("sweep_conversations", "--no-server-running")
    assert Conversation.objects.get(pk=c.pk).ended_by == "interrupted"


def test_history_shows_an_interrupted_conversation_as_interrupted(client, user):
    c = conversation(user)
    services.conversations_interrupt(conversation_ids=[str(c.pk)])
    client.force_login(user)
    assert ">interrupted</span>" in client.get("/history/").content.decode()
    page = client.get(f"/history/{c.pk}/").content.decode()
    assert "interrupted: the server stopped unexpectedly" in page
