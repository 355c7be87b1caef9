"""The estimated cost shows where tokens do: on the conversation page, in the admin, and prices are edited there."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation

from conversations import selectors, services
from conversations.models import ModelPrice, Usage

from .history import stored
from .test_pricing import KNOWN
from .test_usage_cost import list_prices  # noqa: F401 (a fixture, used by name)

pytestmark = pytest.mark.django_db


def answered(user, *models: str):
    """A conversation with one answer per model name, each recorded (and costed) as the relay records it."""
    lines = []
    for _ in models:
        lines += [("user", "How much?"), ("assistant", "Not much.")]
    conversation = stored(user, lines)
    for index, model in enumerate(models):
        services.usage_record(conversation_id=conversation.pk, response_id=f"resp_{2 * index + 1}", model=model,
                              status="completed", usage=KNOWN)
    return conversation


def page(client, user, conversation) -> str:
    client.force_login(user)
    body = client.get(reverse("conversations:conversation", args=[conversation.pk])).content.decode()
    return re.sub(r"\s+", " ", body)


def test_the_conversation_page_shows_the_estimated_cost_in_all_and_of_each_answer(list_prices, client, user):
    conversation = answered(user, "gpt-realtime", "gpt-realtime-mini")
    body = page(client, user, conversation)
    # 0.201280 + 0.062112 dollars in all; each answer's next to its tokens.
    assert '<span class="cost">$0.2634</span> <span class="hint">(estimate from list prices)</span>' in body
    assert '8300 tokens · <span class="cost">$0.2013</span>' in body
    assert '8300 tokens · <span class="cost">$0.0621</span>' in body


def test_answers_without_a_price_are_left_out_of_the_cost_and_said_so(list_prices, client, user):
    body = page(client, user, answered(user, "gpt-realtime", "voice-prod-unknown"))
    assert '$0.2013</span> <span class="hint">(estimate from list prices; some answers have no price)' in body
    assert body.count('class="cost"') == 2  # the total and the priced answer

    body = page(client, user, answered(user, "voice-prod-unknown"))
    assert '<span class="cost">no price</span>' in body and "$" not in body.split("history-facts")[1][:400]


def test_a_dollar_or_more_shows_cents(list_prices, user):
    from conversations.templatetags.history import usd

    assert (usd(Decimal("12.345678")), usd(Decimal("0.000049")), usd(None)) == ("$12.35", "$0.0000", "")
    conversation = answered(user, *["gpt-4o-realtime-preview"] * 4)
    # 800×5 + 200×2.50 + 2000×40 + 3000×2.50 + 300×20 + 2000×80 = 258000 per million, four times.
    transcript = selectors.transcript_of(conversation=conversation)
    assert (transcript.cost, usd(transcript.cost)) == (Decimal("1.032000"), "$1.03")


def test_the_admin_shows_each_usage_rows_cost_or_no_price(list_prices, admin_client, user):
    conversation = answered(user, "gpt-realtime", "voice-prod-unknown")
    body = admin_client.get(reverse("admin:conversations_usage_changelist")).content.decode()
    assert "0.201280" in body and "no price" in body
    body = admin_client.get(reverse("admin:conversations_conversation_change", args=[conversation.pk])).content.decode()
    assert "0.201280" in body and "no price" in body


def test_staff_find_and_edit_prices_in_the_admin_and_new_usage_takes_the_new_price(list_prices, admin_client, user):
    body = admin_client.get(reverse("admin:conversations_modelprice_changelist") + "?q=mini").content.decode()
    assert "gpt-realtime-mini" in body and "gpt-4o-mini-realtime-preview" in body
    assert ">gpt-4o-realtime-preview<" not in body
    price = ModelPrice.objects.get(model="gpt-realtime")
    form = {f: getattr(price, f) for f in selectors.PRICE_FIELDS} | {
        "model": "gpt-realtime", "source": "Azure price sheet, East US 2", "as_of": "2025-11-01", "audio_output": "80"}
    response = admin_client.post(reverse("admin:conversations_modelprice_change", args=[price.pk]), form)
    assert response.status_code == 302
    conversation = answered(user, "gpt-realtime")
    assert Usage.objects.get(conversation=conversation).cost == Decimal("0.233280")


def test_a_negative_price_is_refused_in_the_admin(list_prices, admin_client):
    price = ModelPrice.objects.get(model="gpt-realtime")
    form = {f: getattr(price, f) for f in selectors.PRICE_FIELDS} | {
        "model": "gpt-realtime", "source": "", "as_of": "2025-11-01", "text_input": "-1"}
    response = admin_client.post(reverse("admin:conversations_modelprice_change", args=[price.pk]), form)
    assert response.status_code == 200 and "greater than or equal to 0" in response.content.decode()


def test_a_reply_with_no_usage_yet_shows_no_cost(client, user):
    conversation = stored(user, [("user", "Hello"), ("assistant", "Hi")])
    body = page(client, user, conversation)
    assert 'class="cost"' not in body


def test_the_cost_is_written_the_way_the_pages_language_writes_money(list_prices, client, user):
    conversation = answered(user, "gpt-realtime")
    client.force_login(user)
    url = reverse("conversations:conversation", args=[conversation.pk])
    with translation.override("en"):  # the request activates German for this thread; don't leave it on
        body = client.get(url, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "0,2013 $" in body and "(geschätzt nach Listenpreisen)" in body
