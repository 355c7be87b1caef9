"""The meter hears of a conversation's last reply even when the conversation ends right after it."""
import asyncio

import pytest

from conversations.limits import Limits
from conversations.realtime.protocol import Usage
from conversations.relay.effects import UsageRecorded
from conversations.relay.quota import ConversationQuota

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def test_the_last_replys_usage_reaches_the_page_when_the_conversation_ends_at_once(limit_store):
    # Found by the limits browser test: a limit reached by a reply ends the conversation as the reply finishes,
    # and the end closed the counting before the reply's `usage` went out, so the meter missed it.
    sent: list[dict] = []

    async def warn(message: dict) -> None:
        sent.append(message)

    async def stop(verdict) -> None:
        pass

    quota = ConversationQuota(store=limit_store, user_id="quota-last-reply", slot="s1", limits=Limits(), prices=())
    quota.start(deployment="gpt-realtime", warn=warn, stop=stop)
    quota.count(UsageRecorded("resp_1", "gpt-realtime", "completed", Usage(output_tokens=10, total_tokens=10)))
    await asyncio.wait_for(quota.close(), 10)
    assert [m["type"] for m in sent] == ["usage"]
