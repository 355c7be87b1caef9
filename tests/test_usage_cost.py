"""Every usage row is costed from the price table as it is written, and keeps that cost until repriced on purpose."""
from __future__ import annotations

import datetime
import importlib
import io
import logging
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.utils import timezone, translation

from conversations import services
from conversations.models import Conversation, ModelPrice, Usage
from conversations.realtime.protocol import Usage as UsageCounts
from conversations.relay.effects import UsageRecorded

from .test_pricing import KNOWN

pytestmark = pytest.mark.django_db
seed = importlib.import_module("conversations.migrations.0008_model_prices_and_usage_cost")


@pytest.fixture
def list_prices() -> None:
    """The seeded list prices, also after a transactional test emptied the table."""
    seed.seed_list_prices(apps, None)


@pytest.fixture
def conversation(user) -> Conversation:
    return services.conversation_start(user=user, provider="azure", deployment="gpt-realtime", dialect="ga",
                                       settings={})


def record(conversation: Conversation, response_id: str = "resp_1", *, model: str = "gpt-realtime-2025-08-28",
           usage: UsageCounts = KNOWN) -> Usage:
    services.usage_record(conversation_id=conversation.pk, response_id=response_id, model=model, status="completed",
                          usage=usage)
    return Usage.objects.get(conversation=conversation, response_id=response_id)


def test_the_migration_seeds_the_four_realtime_models_with_their_source_and_date():
    rows = {p.model: p for p in ModelPrice.objects.all()}
    assert set(rows) >= {"gpt-realtime", "gpt-realtime-mini", "gpt-4o-realtime-preview", "gpt-4o-mini-realtime-preview"}
    fields = ("text_input", "cached_text_input", "text_output", "audio_input", "cached_audio_input", "audio_output")
    assert [getattr(rows["gpt-realtime"], f) for f in fields] == [Decimal(v) for v in ("4", "0.4", "16", "32", "0.4", "64")]
    assert [getattr(rows["gpt-realtime-mini"], f) for f in fields] == [
        Decimal(v) for v in ("0.6", "0.06", "2.4", "10", "0.3", "20")]
    assert [getattr(rows["gpt-4o-realtime-preview"], f) for f in fields] == [
        Decimal(v) for v in ("5", "2.5", "20", "40", "2.5", "80")]
    assert [getattr(rows["gpt-4o-mini-realtime-preview"], f) for f in fields] == [
        Decimal(v) for v in ("0.6", "0.3", "2.4", "10", "0.3", "20")]
    for row in rows.values():
        assert row.source.startswith("https://openai.com/api/pricing/") and "Azure" in row.source
        assert row.as_of == datetime.date(2025, 10, 6)


def test_a_known_usage_row_costs_what_the_price_table_says(list_prices, conversation):
    usage = record(conversation)
    # 800×4 + 200×0.40 + 2000×32 + 3000×0.40 + 300×16 + 2000×64 = 201280 USD per million tokens.
    assert usage.cost == Decimal("0.201280")
    assert usage.priced and usage.price.model == "gpt-realtime"
    assert (usage.input_cached_text_tokens, usage.input_cached_audio_tokens) == (200, 3000)


def test_the_relays_usage_write_is_costed(list_prices, conversation):
    op = UsageRecorded("resp_9", "gpt-realtime-mini-2025-10-06", "completed", KNOWN)
    services.journal_apply(conversation_id=conversation.pk, ops=[op])
    usage = Usage.objects.get(response_id="resp_9")
    assert (usage.cost, usage.price.model) == (Decimal("0.062112"), "gpt-realtime-mini")


def test_the_cost_is_kept_when_the_price_is_edited_later(list_prices, conversation):
    before = record(conversation, "resp_1")
    ModelPrice.objects.filter(model="gpt-realtime").update(audio_output=Decimal(80))
    after = record(conversation, "resp_2")
    assert Usage.objects.get(pk=before.pk).cost == Decimal("0.201280")
    assert after.cost == Decimal("0.233280")  # 2000 audio tokens out at 80 instead of 64


def test_the_price_lookup_costs_one_small_query(list_prices, conversation, django_assert_num_queries):
    # The price table, then the insert in its savepoint.
    with django_assert_num_queries(4):
        services.usage_record(conversation_id=conversation.pk, response_id="r", model="gpt-realtime",
                              status="completed", usage=KNOWN)


def test_a_deployment_name_is_priced_as_the_model_it_is_mapped_to(list_prices, conversation, settings):
    settings.REALTIME_DEPLOYMENT_MODELS = {"my-voice": "gpt-realtime-mini"}
    usage = record(conversation, model="my-voice")
    assert (usage.model, usage.price.model, usage.cost) == ("my-voice", "gpt-realtime-mini", Decimal("0.062112"))


def test_usage_without_a_model_name_is_priced_by_the_conversations_deployment(list_prices, user):
    conversation = services.conversation_start(user=user, provider="azure", deployment="gpt-4o-realtime-preview",
                                               dialect="preview", settings={})
    usage = record(conversation, model="")
    assert usage.priced and usage.price.model == "gpt-4o-realtime-preview"


def test_an_unknown_model_is_stored_with_no_price_and_logged_once(list_prices, conversation, caplog, monkeypatch):
    from conversations import selectors

    monkeypatch.setattr(selectors, "_unpriced_logged", set())  # once per process: other tests may have logged it
    with caplog.at_level(logging.WARNING, logger="conversations.selectors"):
        first = record(conversation, "resp_1", model="voice-prod-unknown")
        record(conversation, "resp_2", model="voice-prod-unknown")
    assert (first.cost, first.priced, first.price) == (Decimal(0), False, None)
    assert [r.getMessage() for r in caplog.records].count(
        "No price for the model 'voice-prod-unknown': its usage is stored with no cost. Add the model in the "
        "admin's model prices, or name the model this deployment runs in REALTIME_DEPLOYMENT_MODELS.") == 1


def test_deleting_a_price_keeps_the_cost_of_the_usage_it_priced(list_prices, conversation):
    usage = record(conversation)
    ModelPrice.objects.filter(model="gpt-realtime").delete()
    usage.refresh_from_db()
    assert (usage.cost, usage.priced, usage.price) == (Decimal("0.201280"), True, None)


def reprice(*args: str) -> str:
    out = io.StringIO()
    call_command("reprice_usage", *args, stdout=out)
    return out.getvalue()


def test_reprice_usage_recomputes_the_chosen_days_at_todays_prices_and_says_what_changed(list_prices, conversation):
    old = record(conversation, "resp_old")
    Usage.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(days=10))
    recent = record(conversation, "resp_new")
    mini = record(conversation, "resp_mini", model="gpt-realtime-mini")
    ModelPrice.objects.filter(model="gpt-realtime").update(audio_output=Decimal(80))
    today = timezone.localdate().isoformat()

    dry = reprice("--from", today, "--dry-run")
    assert f"resp_new of conversation {conversation.pk}, model gpt-realtime-2025-08-28: 0.201280 → 0.233280 " \
           "(gpt-realtime)" in dry
    assert "Would change 1 of 3 usage rows" not in dry and "Would change 1 of 2 usage rows" in dry
    assert Usage.objects.get(pk=recent.pk).cost == Decimal("0.201280")

    out = reprice("--from", today, "--to", today, "--model", "gpt-realtime-2025-08-28")
    assert "Changed 1 of 1 usage rows: 0.201280 → 0.233280 USD in all." in out
    assert Usage.objects.get(pk=recent.pk).cost == Decimal("0.233280")
    assert Usage.objects.get(pk=old.pk).cost == Decimal("0.201280")  # outside the days chosen
    assert Usage.objects.get(pk=mini.pk).cost == mini.cost
    assert "Changed 0 of 2 usage rows" in reprice("--from", today)  # nothing left to change


def test_reprice_usage_prices_rows_recorded_before_there_were_prices(list_prices, conversation):
    usage = record(conversation)
    Usage.objects.filter(pk=usage.pk).update(cost=0, priced=False, price=None)
    out = reprice("--from", "2000-01-01")
    assert "no price → 0.201280 (gpt-realtime)" in out
    usage.refresh_from_db()
    assert (usage.cost, usage.priced, usage.price.model) == (Decimal("0.201280"), True, "gpt-realtime")


def test_reprice_usage_refuses_days_it_cannot_read():
    with pytest.raises(CommandError, match="'yesterday' is not a day"):
        reprice("--from", "yesterday")
    with pytest.raises(CommandError, match="--to is before --from"):
        reprice("--from", "2025-10-06", "--to", "2025-10-01")


def test_an_export_carries_each_priced_rows_cost_and_the_cached_split(list_prices, conversation):
    from conversations import selectors
    from conversations.transfer import format

    record(conversation, "resp_1")
    record(conversation, "resp_2", model="voice-prod-unknown")
    document = selectors.conversation_export(conversation=conversation, exported_at=timezone.now())
    priced, unpriced = document["usage"]
    assert priced["cost_usd"] == "0.201280"
    assert (priced["input_cached_text_tokens"], priced["input_cached_audio_tokens"]) == (200, 3000)
    assert "cost_usd" not in unpriced  # no price is not a price of nothing
    imported, errors = format.parse_document(document)
    assert errors == [] and [u.cost_usd for u in imported.usage] == [Decimal("0.201280"), None]


def _import(user, **usage_changes) -> Usage:
    from conversations import services_transfer
    from conversations.transfer import format

    from .test_transfer_format import document

    doc = document()
    doc["usage"][0].update(usage_changes)
    doc["usage"][0] = {k: v for k, v in doc["usage"][0].items() if v is not None}
    imported, errors = format.parse_document(doc)
    assert errors == []
    created = services_transfer.conversations_import(user=user, conversations=[imported]).created
    return Usage.objects.get(conversation_id=created[0])


def test_an_import_keeps_the_exported_cost(list_prices, user):
    usage = _import(user, cost_usd="1.234567")
    assert (usage.cost, usage.priced, usage.price) == (Decimal("1.234567"), True, None)


def test_an_import_without_a_cost_is_priced_at_this_sites_prices(list_prices, user):
    usage = _import(user)  # gpt-realtime: 5 text and 10 audio in, 3 text and 20 audio out
    assert (usage.cost, usage.priced, usage.price.model) == (Decimal("0.001668"), True, "gpt-realtime")


def test_an_import_from_before_the_cached_split_shares_the_cached_tokens(list_prices, user):
    usage = _import(user, input_cached_tokens=6)  # 5 text and 10 audio in: a third of the cached tokens is text
    assert (usage.input_cached_text_tokens, usage.input_cached_audio_tokens) == (2, 4)
    # 3×4 + 2×0.40 + 6×32 + 4×0.40 + 3×16 + 20×64 = 1534.4 per million tokens.
    assert usage.cost == Decimal("0.001534")


@pytest.mark.parametrize("value", [0.5, "-1", "1e3", "0.1234567", "123456789", ""])
def test_an_exported_cost_that_is_not_dollars_as_text_is_a_located_problem(value):
    from conversations.transfer import format

    from .test_transfer_format import document

    doc = document()
    doc["usage"][0]["cost_usd"] = value
    with translation.override("en"):  # a page test's request may have left another language active
        assert format.parse_document(doc)[1] == [
            'usage[0].cost_usd: must be a number of US dollars written as text, like "0.201280"']
