"""Writes for a conversation that was deleted are dropped quietly: nothing is re-created, nothing is logged as an error."""
from __future__ import annotations

import asyncio
import logging

import pytest

from conversations import services
from conversations.journal import Journal
from conversations.models import Conversation, Turn, Usage
from conversations.realtime.protocol import Usage as UsageCounts
from conversations.relay.effects import (
    ConversationEnded,
    SessionOpened,
    TurnAdded,
    TurnAudio,
    TurnOutcome,
    TurnRecorded,
    TurnText,
    UsageRecorded,
)

EVERY_WRITE = [
    TurnAdded(item_id="item_1", role="user", position=0, text="Hello"),
    TurnText(item_id="item_1", text="Hello there"),
    TurnAdded(item_id="item_2", role="assistant", position=1, response_id="resp_1"),
    TurnAudio(item_id="item_2", audio_ms=900, interrupted=True, generated_ms=1500),
    TurnOutcome(item_id="item_2", status="incomplete", reason="max_output_tokens"),
    TurnRecorded(item_id="item_2", recording_ms=1200),
    UsageRecorded(response_id="resp_1", model="gpt-realtime", status="completed", usage=UsageCounts(total_tokens=9)),
    SessionOpened(upstream_session_id="sess_1"),
    ConversationEnded(failed=True, error="gone"),
]


@pytest.fixture
def deleted_id(user):
    conversation = Conversation.objects.create(user=user, provider="simulator", deployment="d", dialect="ga")
    services.conversation_delete(conversation=Conversation.objects.get(pk=conversation.pk))
    return conversation.pk


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.django_db(transaction=True)
def test_every_kind_of_write_for_a_deleted_conversation_recreates_nothing_and_logs_no_error(deleted_id, caplog):
    services.journal_apply(conversation_id=deleted_id, ops=EVERY_WRITE)
    for op in EVERY_WRITE:  # one by one too, as the journal's fallback applies them
        services.journal_apply(conversation_id=deleted_id, ops=[op])
    assert not Conversation.objects.filter(pk=deleted_id).exists()
    assert not Turn.objects.filter(conversation_id=deleted_id).exists()
    assert not Usage.objects.filter(conversation_id=deleted_id).exists()
    assert _errors(caplog) == []


@pytest.mark.django_db(transaction=True)
def test_ending_a_conversation_that_is_gone_is_harmless(deleted_id):
    services.conversation_end(conversation_id=deleted_id, failed=True, error="gone")
    services.conversation_continue(conversation_id=deleted_id, settings={})
    services.conversation_set_session(conversation_id=deleted_id, upstream_session_id="sess_2")
    assert not Conversation.objects.filter(pk=deleted_id).exists()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_abandoned_journal_writes_nothing_queued_or_later_and_still_closes_at_once(user):
    from channels.db import database_sync_to_async

    conversation = await database_sync_to_async(Conversation.objects.create)(
        user=user, provider="simulator", deployment="d", dialect="ga")
    journal = Journal(conversation.pk)
    journal.start()
    journal.put(EVERY_WRITE[0])
    journal.abandon()  # before the writer got to it
    journal.put(EVERY_WRITE[2])
    await asyncio.wait_for(journal.close(), 2.0)
    assert not await database_sync_to_async(Turn.objects.filter(conversation=conversation).exists)()
