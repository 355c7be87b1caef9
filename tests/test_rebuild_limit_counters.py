"""The ledger is the record: the limit counters are rebuilt from stored usage costs and turn audio."""
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from django.core.management import call_command

from conversations.limits import Totals
from conversations.models import Conversation, Turn, Usage


@pytest.mark.django_db
def test_rebuild_writes_todays_audio_and_cost_from_the_database(user, settings):
    import asyncio

    from conversations.relay.quota import limit_store

    conversation = Conversation.objects.create(user=user, provider="simulator", deployment="d", dialect="ga")
    Turn.objects.create(conversation=conversation, item_id="a", role="assistant", position=0, audio_ms=1500)
    Turn.objects.create(conversation=conversation, item_id="u", role="user", position=1, audio_ms=500)
    Usage.objects.create(conversation=conversation, response_id="r", model="m", cost=Decimal("0.125"), priced=True)
    call_command("rebuild_limit_counters")

    async def read():
        store = limit_store()
        try:
            return await store.totals(user.pk, datetime.now(timezone.utc))
        finally:
            await store.close()

    assert asyncio.run(read()) == Totals(2000, Decimal("0.125"), Decimal("0.125"))
