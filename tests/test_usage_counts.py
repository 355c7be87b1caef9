"""`response.usage` of either dialect becomes counts with the cached tokens split into text and audio."""
from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.realtime.protocol import Usage
from conversations.realtime.simulator import RealtimeSimulator

from .simulator_fixtures import (  # noqa: F401 (fixtures are used by name)
    open_session,
    recv_until,
    send,
    session_update,
    sim_fixture,
    user_text,
)


def test_the_ga_cached_split_is_read_as_reported():
    usage = Usage.from_event({
        "input_tokens": 130, "output_tokens": 40, "total_tokens": 170,
        "input_token_details": {"text_tokens": 30, "audio_tokens": 100, "image_tokens": 0, "cached_tokens": 64,
                                "cached_tokens_details": {"text_tokens": 20, "audio_tokens": 44, "image_tokens": 0}},
        "output_token_details": {"text_tokens": 10, "audio_tokens": 30},
    })
    assert (usage.input_cached_tokens, usage.input_cached_text_tokens, usage.input_cached_audio_tokens) == (64, 20, 44)


def test_without_details_the_cached_tokens_are_shared_in_proportion_to_the_input():
    # Preview reports only cached_tokens: 10 of 30 input tokens are text, so a third of the cached ones are.
    usage = Usage.from_event({"input_token_details": {"text_tokens": 10, "audio_tokens": 20, "cached_tokens": 9}})
    assert (usage.input_cached_text_tokens, usage.input_cached_audio_tokens) == (3, 6)
    # Rounded half up on the text side; the two always add up to the cached count.
    usage = Usage.from_event({"input_token_details": {"text_tokens": 1, "audio_tokens": 1, "cached_tokens": 3}})
    assert (usage.input_cached_text_tokens, usage.input_cached_audio_tokens) == (2, 1)


def test_cached_tokens_with_no_input_split_count_as_text():
    usage = Usage.from_event({"input_tokens": 50, "input_token_details": {"cached_tokens": 40}})
    assert (usage.input_cached_text_tokens, usage.input_cached_audio_tokens) == (40, 0)


def test_no_cached_tokens_means_no_cached_split():
    usage = Usage.from_event({"input_token_details": {"text_tokens": 10, "audio_tokens": 20}})
    assert (usage.input_cached_text_tokens, usage.input_cached_audio_tokens) == (0, 0)


def test_the_counts_keep_their_positions():
    assert Usage(5, 15, 4, 2, 8, 20, 10, 30).input_cached_text_tokens == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=16), children, max_size=5),
    max_leaves=25,
)
count_like = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4) | st.lists(st.integers())
usage_shaped = st.fixed_dictionaries({}, optional={
    "input_tokens": count_like, "output_tokens": count_like, "total_tokens": count_like,
    "input_token_details": json_values | st.fixed_dictionaries({}, optional={
        "text_tokens": count_like, "audio_tokens": count_like, "cached_tokens": count_like,
        "cached_tokens_details": json_values | st.fixed_dictionaries(
            {}, optional={"text_tokens": count_like, "audio_tokens": count_like}),
    }),
    "output_token_details": json_values | st.fixed_dictionaries(
        {}, optional={"text_tokens": count_like, "audio_tokens": count_like}),
})


@settings(max_examples=500, deadline=None)
@given(st.one_of(json_values, usage_shaped))
def test_from_event_never_raises_and_never_returns_negatives(raw: Any):
    usage = Usage.from_event(raw)
    counts = dataclasses.astuple(usage)
    assert all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 2**31 - 1 for n in counts)


@pytest.mark.asyncio
@pytest.mark.parametrize("dialect", ["ga", "preview"])
async def test_the_simulators_second_turn_reports_a_cached_split_the_app_reads(
    sim: RealtimeSimulator, dialect: str
) -> None:
    async with open_session(sim, dialect) as ws:
        await recv_until(ws, dialect, "session.created")
        await send(ws, session_update(dialect, instructions="You are a test.", turn_detection=None))
        await recv_until(ws, dialect, "session.updated")
        for text in ("What is the capital of France?", "And of Italy?"):
            await send(ws, user_text(text))
            await send(ws, {"type": "response.create"})
            events = await recv_until(ws, dialect, "response.done")  # each event checked against the types
        raw = events[-1]["response"]["usage"]
        details = raw["input_token_details"]
        usage = Usage.from_event(raw)
        assert usage.input_cached_tokens > 0
        assert usage.input_cached_text_tokens + usage.input_cached_audio_tokens == usage.input_cached_tokens
        assert usage.input_cached_text_tokens <= usage.input_text_tokens
        assert usage.input_cached_audio_tokens <= usage.input_audio_tokens
        if dialect == "ga":
            split = details["cached_tokens_details"]
            assert (usage.input_cached_text_tokens, usage.input_cached_audio_tokens) == (
                split["text_tokens"], split["audio_tokens"])
        else:
            assert "cached_tokens_details" not in details  # the preview types have no such field
