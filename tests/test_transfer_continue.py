"""An imported conversation continues on the talk socket like any other: the new session hears the imported turns."""
from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from conversations import services_transfer
from conversations.models import Conversation, Turn
from conversations.realtime.simulator import RealtimeSimulator
from conversations.transfer import format

from .relay import Transcript, collect, communicator, point_at
from .transfer import document

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("end_live_conversations"),
]


@database_sync_to_async
def _import(user) -> str:
    doc = document()
    doc["turns"][0]["text"] = "My name is Ada"
    doc["turns"][1]["text"] = "Nice to meet you, Ada."
    conversation, errors = format.parse_document(doc)
    assert errors == []
    return str(services_transfer.conversations_import(user=user, conversations=[conversation]).created[0])


@database_sync_to_async
def _turns(conversation_id) -> list[Turn]:
    return list(Turn.objects.filter(conversation_id=conversation_id).order_by("position"))


async def test_an_imported_conversation_continues_with_the_model_seeded_by_its_turns(settings, user, cookie):
    conversation_id = await _import(user)
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=False) as sim:
        point_at(settings, sim)
        comm = communicator(cookie, path=f"/ws/talk/?conversation={conversation_id}")
        await comm.connect()
        seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
        assert seen.of_type("ready")[0]["continued"]
        assert [i["text"] for i in seen.of_type("history")[0]["items"]][:2] == ["My name is Ada", "Nice to meet you, Ada."]
        await comm.send_to(text_data='{"type":"text","text":"What is my name"}')
        seen = await collect(comm, seen, lambda s: any(m["status"] == "completed" for m in s.of_type("response_done")))
        await comm.disconnect()
        assert sim.validation_errors == []

    created = [e["item"] for e in sim.received if e["type"] == "conversation.item.create"]
    assert [i["content"][0]["text"] for i in created][:2] == ["My name is Ada", "Nice to meet you, Ada."]
    assert created[0]["id"].startswith("imp_")
    turns = await _turns(conversation_id)
    assert [(t.position, t.role) for t in turns] == [(0, "user"), (1, "assistant"), (2, "user"), (3, "assistant")]
    assert turns[2].text == "What is my name"
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=conversation_id)
    assert conversation.status == Conversation.Status.ENDED
