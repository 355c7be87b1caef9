"""Import writes: all or nothing, new ids, and a race with the same import stores nothing twice."""
from __future__ import annotations

import pytest

from conversations import services_transfer
from conversations.models import Conversation, Turn, Usage
from conversations.transfer import format

from .transfer import document

pytestmark = pytest.mark.django_db


def test_an_import_creates_a_new_ended_conversation_with_the_exported_times(user):
    conversation, _ = format.parse_document(document())
    result = services_transfer.conversations_import(user=user, conversations=[conversation])
    stored = Conversation.objects.get(pk=result.created[0])
    assert stored.imported_from == conversation.original_id and str(stored.pk) != conversation.original_id
    assert stored.status == Conversation.Status.ENDED
    assert stored.started_at == conversation.started_at and stored.ended_at == conversation.ended_at
    assert [t.created_at for t in stored.turns.order_by("position")] == [t.started_at for t in conversation.turns]
    assert Usage.objects.get(conversation=stored).total_tokens == 38


def test_an_import_racing_the_same_import_stores_nothing(user, monkeypatch):
    from conversations import selectors

    conversation, _ = format.parse_document(document())
    services_transfer.conversations_import(user=user, conversations=[conversation])
    # As if the other import committed between this one's duplicate check and its insert.
    monkeypatch.setattr(selectors, "conversation_ids_imported", lambda **kwargs: set())
    second = format.parse_document({**document(), "conversation": {**document()["conversation"], "id": "new"}})[0]
    with pytest.raises(services_transfer.ImportRaced):
        services_transfer.conversations_import(user=user, conversations=[second, conversation])
    assert Conversation.objects.count() == 1 and Turn.objects.count() == 2
