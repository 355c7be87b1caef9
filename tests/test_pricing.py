"""The price lookup and cost arithmetic on plain values: mapped deployments, dated snapshots, unknown models."""
from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from conversations.pricing import Price, cost_of, estimate, find_price, parse_deployment_models
from conversations.realtime.protocol import Usage

D = Decimal
GPT_REALTIME = Price("gpt-realtime", D(4), D("0.40"), D(16), D(32), D("0.40"), D(64), id=1)
MINI = Price("gpt-realtime-mini", D("0.60"), D("0.06"), D("2.40"), D(10), D("0.30"), D(20), id=2)
PREVIEW = Price("gpt-4o-realtime-preview", D(5), D("2.50"), D(20), D(40), D("2.50"), D(80), id=3)
MINI_PREVIEW = Price("gpt-4o-mini-realtime-preview", D("0.60"), D("0.30"), D("2.40"), D(10), D("0.30"), D(20), id=4)
PRICES = [GPT_REALTIME, MINI, PREVIEW, MINI_PREVIEW]

# 1000 text tokens in (200 cached), 5000 audio in (3000 cached), 300 text and 2000 audio out.
KNOWN = Usage(input_text_tokens=1000, input_audio_tokens=5000, input_cached_tokens=3200, output_text_tokens=300,
              output_audio_tokens=2000, input_tokens=6000, output_tokens=2300, total_tokens=8300,
              input_cached_text_tokens=200, input_cached_audio_tokens=3000)


def test_the_known_usage_costs_what_the_hand_sum_says():
    # 800×4 + 200×0.40 + 2000×32 + 3000×0.40 + 300×16 + 2000×64 = 201280 per million tokens.
    assert cost_of(KNOWN, GPT_REALTIME) == D("0.201280")
    # The mini: 800×0.60 + 200×0.06 + 2000×10 + 3000×0.30 + 300×2.40 + 2000×20 = 62112 per million.
    assert cost_of(KNOWN, MINI) == D("0.062112")


def test_costs_are_rounded_half_up_to_a_millionth_of_a_dollar():
    one_text_out = Usage(output_text_tokens=1)
    assert cost_of(one_text_out, MINI) == D("0.000002")  # 0.0000024
    assert cost_of(Usage(output_audio_tokens=1), Price("m", *[D("0.5")] * 6)) == D("0.000001")  # 0.0000005


def test_more_cached_than_input_is_no_credit():
    odd = Usage(input_text_tokens=10, input_cached_text_tokens=50)
    assert cost_of(odd, GPT_REALTIME) == D("0.000020")  # 50 cached × 0.40, and no negative uncached part


@pytest.mark.parametrize("model,expected", [
    ("gpt-realtime", GPT_REALTIME),
    ("gpt-realtime-2025-08-28", GPT_REALTIME),
    ("gpt-realtime-mini", MINI),
    ("gpt-realtime-mini-2025-10-06", MINI),
    ("gpt-4o-realtime-preview-2024-12-17", PREVIEW),
    ("gpt-4o-mini-realtime-preview-2024-12-17", MINI_PREVIEW),
    ("gpt-realtime-large", None),  # not a dated snapshot of gpt-realtime: some other model
    ("gpt-realtimex", None),
    ("whisper-1", None),
    ("", None),
])
def test_a_model_takes_its_own_price_or_that_of_the_model_it_is_a_snapshot_of(model, expected):
    assert find_price(model, PRICES) == expected


def test_a_mini_is_never_priced_as_gpt_realtime_even_without_a_mini_row():
    assert find_price("gpt-realtime-mini-2025-10-06", [GPT_REALTIME, PREVIEW]) is None
    assert find_price("gpt-realtime-mini-2025-10-06", [MINI, GPT_REALTIME]) == MINI  # order does not matter


def test_a_mapped_deployment_is_priced_as_its_model():
    mapping = {"my-voice": "gpt-realtime-mini", "big": "gpt-realtime-2025-08-28"}
    cost = estimate(KNOWN, model="my-voice", prices=PRICES, deployment_models=mapping)
    assert (cost.price, cost.usd, cost.priced, cost.model) == (MINI, D("0.062112"), True, "gpt-realtime-mini")
    assert estimate(KNOWN, model="big", prices=PRICES, deployment_models=mapping).price == GPT_REALTIME
    # The reported model wins over the conversation's deployment; the deployment counts when none was reported.
    assert estimate(KNOWN, model="gpt-realtime", deployment="my-voice", prices=PRICES,
                    deployment_models=mapping).price == GPT_REALTIME
    assert estimate(KNOWN, model="", deployment="my-voice", prices=PRICES, deployment_models=mapping).price == MINI


def test_a_deployment_named_after_its_model_needs_no_mapping():
    assert estimate(KNOWN, model="", deployment="gpt-realtime", prices=PRICES, deployment_models={}).price == GPT_REALTIME


def test_an_unknown_model_costs_nothing_and_is_marked_unpriced():
    cost = estimate(KNOWN, model="voice-prod", prices=PRICES, deployment_models={})
    assert (cost.usd, cost.price, cost.priced, cost.model) == (D("0.000000"), None, False, "voice-prod")
    assert not estimate(KNOWN, model="", prices=PRICES, deployment_models={}).priced


def test_the_deployment_mapping_is_read_from_pairs():
    assert parse_deployment_models("") == {}
    assert parse_deployment_models(" my-voice = gpt-realtime , cheap=gpt-realtime-mini,") == {
        "my-voice": "gpt-realtime", "cheap": "gpt-realtime-mini"}


@pytest.mark.parametrize("raw,message", [
    ("my-voice", "'my-voice' is not DEPLOYMENT=MODEL"),
    ("my-voice=", "'' (in 'my-voice=') is not a deployment or model name"),
    ("a=gpt realtime", "'gpt realtime' (in 'a=gpt realtime') is not a deployment or model name"),
    ("a=b=c", "'b=c' (in 'a=b=c') is not a deployment or model name"),
    ("a=gpt-realtime,a=gpt-realtime-mini", "the deployment 'a' is mapped twice"),
])
def test_a_malformed_deployment_mapping_says_what_is_wrong(raw, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_deployment_models(raw)


def test_a_malformed_deployment_mapping_stops_the_app_at_startup():
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DOTENV_FILE": "", "DEBUG": "1", "DATABASE_URL": "sqlite:///:memory:", "REDIS_URL": "",
           "DJANGO_SETTINGS_MODULE": "voiceapp.settings", "REALTIME_DEPLOYMENT_MODELS": "my-voice"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=root, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert "Configuration error: REALTIME_DEPLOYMENT_MODELS: 'my-voice' is not DEPLOYMENT=MODEL" in result.stderr
    assert "Traceback" not in result.stderr
