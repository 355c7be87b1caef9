"""What a response's tokens cost: model prices as plain values in, US dollars out. No Django imports."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

PER_TOKENS = Decimal(1_000_000)  # prices are per million tokens
COST_PLACES = Decimal("0.000001")  # costs are stored to a millionth of a dollar
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class Price:
    """One model's list prices in USD per million tokens, and the id of the row they came from."""

    model: str
    text_input: Decimal
    cached_text_input: Decimal
    text_output: Decimal
    audio_input: Decimal
    cached_audio_input: Decimal
    audio_output: Decimal
    id: int | None = None


class TokenCounts(Protocol):
    """The counts a cost is computed from (protocol.Usage and the Usage model both have them)."""

    input_text_tokens: int
    input_audio_tokens: int
    input_cached_text_tokens: int
    input_cached_audio_tokens: int
    output_text_tokens: int
    output_audio_tokens: int


@dataclass(frozen=True)
class Cost:
    """The estimated cost of one response, the price it used (None: no price found) and the name looked up."""

    usd: Decimal
    price: Price | None
    model: str

    @property
    def priced(self) -> bool:
        return self.price is not None


def parse_deployment_models(raw: str) -> dict[str, str]:
    """Read `deployment=model,deployment=model` into a dict; raise ValueError saying what is wrong."""
    mapping: dict[str, str] = {}
    for entry in raw.split(","):
        if not entry.strip():
            continue  # a trailing comma, or nothing configured
        deployment, sep, model = (part.strip() for part in entry.partition("="))
        if not sep:
            raise ValueError(f"{entry.strip()!r} is not DEPLOYMENT=MODEL; write e.g. my-voice=gpt-realtime,"
                             "cheap=gpt-realtime-mini")
        for name in (deployment, model):
            if not _NAME.fullmatch(name):
                raise ValueError(f"{name!r} (in {entry.strip()!r}) is not a deployment or model name: use letters, "
                                 "digits, '.', '_' and '-', starting with a letter or digit, at most 100 characters")
        if deployment in mapping:
            raise ValueError(f"the deployment {deployment!r} is mapped twice")
        mapping[deployment] = model
    return mapping


def find_price(model: str, prices: Iterable[Price]) -> Price | None:
    """The price of `model`: its own row, else the longest row name it extends with a dated suffix.

    `gpt-realtime-2025-08-28` takes gpt-realtime's price and `gpt-realtime-mini-2025-10-06`
    gpt-realtime-mini's. The suffix must start with a digit, so a mini is never priced as its larger
    sibling even when its own row is missing: an unknown model has no price rather than a wrong one.
    """
    best: Price | None = None
    for price in prices:
        if price.model == model:
            return price
        rest = model.removeprefix(price.model + "-")
        if rest != model and rest[:1].isdigit() and (best is None or len(price.model) > len(best.model)):
            best = price
    return best


def cost_of(counts: TokenCounts, price: Price) -> Decimal:
    """The cost in USD of these tokens at this price, rounded half up to a millionth of a dollar."""
    # Cached tokens are part of the input counts; more cached than input (a malformed report) is no credit.
    text_in = max(0, counts.input_text_tokens - counts.input_cached_text_tokens)
    audio_in = max(0, counts.input_audio_tokens - counts.input_cached_audio_tokens)
    total = (
        text_in * price.text_input
        + counts.input_cached_text_tokens * price.cached_text_input
        + audio_in * price.audio_input
        + counts.input_cached_audio_tokens * price.cached_audio_input
        + counts.output_text_tokens * price.text_output
        + counts.output_audio_tokens * price.audio_output
    )
    return (total / PER_TOKENS).quantize(COST_PLACES, rounding=ROUND_HALF_UP)


def estimate(
    counts: TokenCounts, *, model: str, deployment: str = "", prices: Iterable[Price],
    deployment_models: Mapping[str, str],
) -> Cost:
    """The cost of one response at the price of the model that answered; 0 and no price when none is found.

    The name looked up is the model the service reported, or the conversation's deployment when it
    reported none (the preview dialect omits names it does not know). A name the operator mapped in
    REALTIME_DEPLOYMENT_MODELS is replaced by its model first; any other name is looked up as it is,
    so a deployment named after its model (the default, gpt-realtime) needs no mapping.
    """
    name = model or deployment
    name = deployment_models.get(name, name)
    price = find_price(name, prices) if name else None
    return Cost(cost_of(counts, price) if price else Decimal(0).quantize(COST_PLACES), price, name)
