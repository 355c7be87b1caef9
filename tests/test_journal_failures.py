"""The journal when writes fail: a database that is away is waited out in order, a write that fails on its own is
set aside alone and named, and the end waits within a bound and then names every write it could not store."""
from __future__ import annotations

import asyncio
import logging
import random

import pytest
from django.db import IntegrityError, InterfaceError, OperationalError

from conversations.journal import Journal, retry_delay
from conversations.relay.effects import ConversationEnded, TurnAdded, TurnAudio, TurnText, describe

SECRET_WORDS = "my bank password is hunter2"


def ops(n: int, start: int = 0) -> list:
    return [TurnAdded(item_id=f"item_{i}", role="user", position=i, text=SECRET_WORDS) for i in range(start, start + n)]


class FakeDatabase:
    """An apply function that stores in a list, and fails as told: a few outages, or on one culprit write."""

    def __init__(self, *, down_for: int = 0, culprit: str = "", error: type[Exception] = IntegrityError) -> None:
        self.down_for, self.culprit, self.error = down_for, culprit, error
        self.stored: list = []
        self.calls: list[int] = []  # batch sizes, in order
        self.during_apply = None  # a callback run inside the first apply (to queue writes meanwhile)

    async def apply(self, conversation_id, batch) -> None:
        self.calls.append(len(batch))
        if self.during_apply is not None:
            callback, self.during_apply = self.during_apply, None
            callback()
        await asyncio.sleep(0)
        if self.down_for:
            self.down_for -= 1
            raise OperationalError("connection refused")
        if self.culprit and any(getattr(op, "item_id", "") == self.culprit for op in batch):
            raise self.error("value out of range for the position column")
        self.stored.extend(batch)


def fast_journal(db: FakeDatabase, **kwargs) -> Journal:
    journal = Journal("conv-1", apply=db.apply, retry_base_s=0.001, retry_max_s=0.01, **kwargs)
    journal.start()
    return journal


def error_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.asyncio
async def test_writes_put_while_the_database_is_down_are_all_stored_in_order_once_it_is_back():
    db = FakeDatabase(down_for=5)
    journal = fast_journal(db)
    first, later = ops(3), ops(4, start=3)
    for op in first:
        journal.put(op)
    await asyncio.sleep(0.005)  # the writer is retrying the first batch
    for op in later:
        journal.put(op)
    await journal.close(timeout=5)
    assert db.stored == first + later
    assert journal.retries == 5 and journal.not_stored == [] and journal.set_aside == []


@pytest.mark.asyncio
async def test_an_interface_error_is_waited_out_too():
    db = FakeDatabase(down_for=2)
    db_error = InterfaceError("connection already closed")

    async def apply(cid, batch):
        if db.down_for:
            db.down_for -= 1
            raise db_error
        db.stored.extend(batch)

    journal = Journal("conv-1", apply=apply, retry_base_s=0.001, retry_max_s=0.01)
    journal.start()
    journal.put(ops(1)[0])
    await journal.close(timeout=5)
    assert len(db.stored) == 1


def test_the_backoff_doubles_from_its_base_up_to_its_cap_with_jitter():
    random.seed(7)
    delays = [[retry_delay(n, 0.25, 4.0) for _ in range(200)] for n in range(1, 12)]
    assert all(0.125 <= d <= 0.25 for d in delays[0])
    assert all(0.25 <= d <= 0.5 for d in delays[1])
    for later in delays[5:]:  # 0.25 * 2**5 = 8 > 4: capped from the sixth try on
        assert all(2.0 <= d <= 4.0 for d in later)
        assert max(later) - min(later) > 1.0  # jittered, not all the same


@pytest.mark.asyncio
async def test_a_write_that_fails_on_its_own_is_set_aside_and_named_and_every_other_write_is_stored(caplog):
    db = FakeDatabase(culprit="item_2")
    journal = fast_journal(db)
    batch = ops(5)
    for op in batch:
        journal.put(op)
    await journal.close(timeout=5)
    assert db.stored == [op for op in batch if op.item_id != "item_2"]
    assert journal.set_aside == [batch[2]]
    [line] = error_lines(caplog)
    assert "conv-1" in line and "TurnAdded item=item_2" in line and "position=2" in line
    assert f"text={len(SECRET_WORDS)} chars" in line and "IntegrityError" in line
    assert SECRET_WORDS not in caplog.text


@pytest.mark.asyncio
async def test_a_bug_in_one_write_never_stops_the_writes_that_come_after_it(caplog):
    db = FakeDatabase(culprit="item_0", error=TypeError)
    journal = fast_journal(db)
    journal.put(ops(1)[0])
    await asyncio.sleep(0.02)
    for op in ops(3, start=1):
        journal.put(op)
    journal.put(ConversationEnded())
    await journal.close(timeout=5)
    assert [getattr(op, "item_id", "end") for op in db.stored] == ["item_1", "item_2", "item_3", "end"]
    assert len(error_lines(caplog)) == 1


@pytest.mark.asyncio
async def test_an_outage_that_starts_during_the_one_by_one_retry_keeps_the_rest_in_order():
    db = FakeDatabase(culprit="item_0")
    calls = 0

    async def apply(cid, batch):
        nonlocal calls
        calls += 1
        if calls in (3, 4):  # the whole batch fails, item_0 is set aside, then the database goes away twice
            raise OperationalError("server closed the connection unexpectedly")
        await db.apply(cid, batch)

    journal = Journal("conv-1", apply=apply, retry_base_s=0.001, retry_max_s=0.01)
    journal.start()
    for op in ops(4):
        journal.put(op)
    await journal.close(timeout=5)
    assert [op.item_id for op in db.stored] == ["item_1", "item_2", "item_3"]
    assert [op.item_id for op in journal.set_aside] == ["item_0"]


@pytest.mark.asyncio
async def test_the_end_waits_for_a_database_that_comes_back_within_the_bound():
    db = FakeDatabase(down_for=3)
    journal = Journal("conv-1", apply=db.apply, retry_base_s=0.05, retry_max_s=0.1)
    journal.start()
    for op in ops(2):
        journal.put(op)
    journal.put(ConversationEnded())
    await journal.close(timeout=5)
    assert len(db.stored) == 3 and journal.not_stored == []


@pytest.mark.asyncio
async def test_the_end_gives_up_after_its_bound_and_names_each_write_not_stored_without_its_words(caplog):
    db = FakeDatabase(down_for=10**6)
    journal = fast_journal(db)
    queued = [*ops(2), TurnText(item_id="item_0", text=SECRET_WORDS), TurnAudio(item_id="item_1", audio_ms=1200),
              ConversationEnded(ended_by="user")]
    for op in queued:
        journal.put(op)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await journal.close(timeout=0.3)
    assert loop.time() - started < 2.0
    assert journal.not_stored == queued
    lines = error_lines(caplog)
    assert "5 writes not stored" in lines[0] and "conv-1" in lines[0]
    assert lines[1:] == [f"Conversation conv-1: not stored: {describe(op)}" for op in queued]
    assert f"TurnText item=item_0 text={len(SECRET_WORDS)} chars" in lines[3]
    assert SECRET_WORDS not in caplog.text


@pytest.mark.asyncio
async def test_writes_queued_while_the_end_flushes_are_stored_too():
    db = FakeDatabase()
    journal = Journal("conv-1", apply=db.apply)
    journal.start()
    late = TurnText(item_id="item_0", text="late transcript")
    db.during_apply = lambda: journal.put(late)  # arrives while the final batch is being written
    journal.put(ops(1)[0])
    journal.put(ConversationEnded())
    await journal.close(timeout=5)
    assert db.stored[-1] == late and len(db.stored) == 3


@pytest.mark.asyncio
async def test_a_write_put_after_the_end_is_named_as_not_stored(caplog):
    db = FakeDatabase()
    journal = fast_journal(db)
    await journal.close(timeout=1)
    journal.put(TurnText(item_id="item_9", text=SECRET_WORDS))
    assert db.stored == [] and len(journal.not_stored) == 1
    assert "came after the journal closed" in error_lines(caplog)[0] and "item=item_9" in error_lines(caplog)[0]
    assert SECRET_WORDS not in caplog.text


@pytest.mark.asyncio
async def test_a_large_backlog_goes_in_several_batches_in_order():
    db = FakeDatabase(down_for=1)
    journal = fast_journal(db, batch_max=50)
    backlog = ops(120)
    for op in backlog:
        journal.put(op)
    await journal.close(timeout=5)
    assert db.stored == backlog and max(db.calls) <= 50


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_write_the_database_refuses_is_set_aside_and_the_rest_of_the_conversation_is_stored(user, caplog):
    from channels.db import database_sync_to_async

    from conversations.models import Conversation, Turn

    conversation = await database_sync_to_async(Conversation.objects.create)(
        user=user, provider="simulator", deployment="d", dialect="ga")
    journal = Journal(conversation.pk)
    journal.start()
    journal.put(TurnAdded(item_id="item_a", role="user", position=0, text="Hello"))
    journal.put(TurnAdded(item_id="item_bad", role="assistant", position=-1))  # a negative place: a check constraint
    journal.put(TurnAdded(item_id="item_b", role="assistant", position=1))
    journal.put(TurnText(item_id="item_b", text="Hi there"))
    journal.put(ConversationEnded())
    await journal.close(timeout=10)

    @database_sync_to_async
    def stored():
        return (list(Turn.objects.filter(conversation=conversation).order_by("position").values_list("item_id", "text")),
                Conversation.objects.get(pk=conversation.pk).status)

    turns, status = await stored()
    assert turns == [("item_a", "Hello"), ("item_b", "Hi there")] and status == "ended"
    assert [op.item_id for op in journal.set_aside] == ["item_bad"]
    [line] = error_lines(caplog)
    assert str(conversation.pk) in line and "TurnAdded item=item_bad" in line and "IntegrityError" in line


@pytest.mark.asyncio
async def test_an_end_cut_short_names_each_write_still_queued(caplog):
    db = FakeDatabase(down_for=10**6)
    journal = fast_journal(db)
    queued = [*ops(2), ConversationEnded()]
    for op in queued:
        journal.put(op)
    await asyncio.sleep(0.01)
    journal.give_up("the server stopped before they could be stored")
    await asyncio.sleep(0)
    assert journal.not_stored == queued
    lines = error_lines(caplog)
    assert "3 writes not stored: the server stopped before they could be stored" in lines[0]
    assert lines[1:] == [f"Conversation conv-1: not stored: {describe(op)}" for op in queued]
    await journal.close(timeout=1)  # already reported: nothing more
    assert len(error_lines(caplog)) == 4


@pytest.mark.asyncio
async def test_a_shutdown_that_runs_out_of_time_cuts_the_endings_short(monkeypatch):
    from conversations.relay import lifespan
    from conversations.relay.registry import LiveRegistry

    class Stuck:
        """A conversation whose end waits on a database that never answers."""

        def __init__(self) -> None:
            self.ending = asyncio.ensure_future(asyncio.sleep(3600))
            self.conversation_id = "stuck"

        async def end(self, by: str = "user") -> None:
            await asyncio.shield(self.ending)

        def cut_short(self):
            self.ending.cancel()
            return self.ending

    registry = LiveRegistry()
    stuck = Stuck()
    registry.add("stuck", stuck)
    monkeypatch.setattr(lifespan, "live_conversations", registry)
    assert await lifespan.end_all_live_conversations(timeout=0.1) == 1
    assert stuck.ending.cancelled()


def test_the_shutdown_allows_for_the_journals_bound(settings):
    from conversations.relay.lifespan import shutdown_timeout
    from voiceapp.serve import OPTIONS

    settings.JOURNAL_CLOSE_TIMEOUT_SECONDS = 7
    assert shutdown_timeout() == 17
    # uvicorn cuts requests first, then the app ends its conversations: by default both within a 30 s stop
    # grace period (docker-compose.yml's stop_grace_period, Kubernetes' default).
    settings.JOURNAL_CLOSE_TIMEOUT_SECONDS = 10.0
    assert OPTIONS["timeout_graceful_shutdown"] + shutdown_timeout() <= 30
