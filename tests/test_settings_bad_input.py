"""Any settings a browser posts are saved whole or refused whole, with a plain message per bad field.

Each example posts every field of the settings form with a value drawn from its valid values or
from hostile ones (out of range, the wrong type, NaN and infinities, huge numbers and texts, NUL,
markup, missing, posted twice), for the GA and the preview dialect. The test knows which are
valid: the answer must be 200 with exactly those values stored, or 400 naming exactly the bad
fields with the saved settings untouched. Instructions over the limit are refused with the limit.
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conversations.models import VoicePreferences
from conversations.realtime import options

from .hostile import HOSTILE
from .hypothesis_budget import examples

pytestmark = pytest.mark.django_db

# Saved before each example: a refused post must leave exactly this.
SAVED = options.Preferences(voice="ash", instructions="Be brief.", turn_detection="semantic_vad", vad_threshold=0.3,
                            silence_duration_ms=800, prefix_padding_ms=100, eagerness="low", language="de",
                            noise_reduction="far_field", speed=1.2, max_response_tokens=300, temperature=0.7,
                            record=False)


@dataclasses.dataclass(frozen=True)
class Posted:
    """What is posted for one field (None: left out; a list: posted that many times), and whether it is valid."""

    raw: list[str] | None
    valid: bool
    value: Any = None  # what is stored when the whole post is valid


def one(raw: str, valid: bool, value: Any = None) -> Posted:
    return Posted([raw], valid, value)


GARBAGE = ["", "abc", HOSTILE, "0,5", "NaN", "nan", "inf", "-Infinity", "1e309", "[1]", "{}", "true", "\x00", "0x10"]
HUGE_NUMBER = "9" * 5000  # past Python's digit limit for int()


@dataclasses.dataclass(frozen=True)
class Field:
    """The values of one field that the form must take, and those it must refuse."""

    good: st.SearchStrategy[Posted]
    bad: st.SearchStrategy[Posted]


def number(bounds: tuple[float, float], *, whole: bool, required: bool = True) -> Field:
    """A numeric field: in range (stored as posted); out of range, not a number at all, or missing."""
    low, high = bounds
    if whole:
        inside = st.integers(int(low), int(high)).map(lambda n: one(str(n), True, n))
        outside = st.one_of(st.integers(max_value=int(low) - 1), st.integers(min_value=int(high) + 1),
                            st.sampled_from(["1e3", "2.5"])).map(lambda n: one(str(n), False))
    else:
        inside = st.floats(low, high).map(lambda x: one(repr(x), True, x))
        outside = st.one_of(st.floats(max_value=low, exclude_max=True, allow_infinity=False, allow_nan=False),
                            st.floats(min_value=high, exclude_min=True, allow_infinity=False, allow_nan=False)).map(
            lambda x: one(repr(x), False))
    garbage = st.sampled_from([g for g in GARBAGE if g or required] + [HUGE_NUMBER]).map(lambda raw: one(raw, False))
    if required:
        return Field(inside, st.one_of(outside, garbage, st.just(Posted(None, False))))
    return Field(st.one_of(inside, st.sampled_from([one("", True, None), Posted(None, True, None)])),
                 st.one_of(outside, garbage))


def choice(valid: tuple[str, ...], *, required: bool = True, hostile: tuple[str, ...] = ()) -> Field:
    """A choice field: one of its choices (posted twice, the last one counts), or anything else."""
    good = st.sampled_from(valid).map(lambda v: one(v, True, v))
    others = [v for v in (*GARBAGE, *hostile) if v not in valid]
    bad = st.one_of(st.sampled_from(others), st.text(max_size=20).map(lambda t: f"x{t}!")).map(lambda v: one(v, False))
    twice = st.tuples(bad, good).map(lambda pair: Posted([*pair[0].raw, *pair[1].raw], True, pair[1].value))
    if not required:
        return Field(st.one_of(good, twice, st.just(Posted(None, True, ""))), bad)
    return Field(st.one_of(good, twice), st.one_of(bad, st.just(Posted(None, False))))


clean_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=300)
instructions = Field(
    good=st.one_of(
        clean_text.filter(lambda t: len(t.strip()) <= options.INSTRUCTIONS_MAX_CHARS).map(lambda t: one(t, True, t.strip())),
        st.sampled_from([HOSTILE, "</textarea><script>window.__pwned=3</script>", "{{ user.password }}", "{% now 'Y' %}"]
                        ).map(lambda t: one(t, True, t)),
        st.integers(options.INSTRUCTIONS_MAX_CHARS - 2, options.INSTRUCTIONS_MAX_CHARS).map(lambda n: one("ä" * n, True, "ä" * n)),
        st.just(one(" " * 5000 + "short", True, "short")),  # long only before the form strips it
        st.just(Posted(None, True, "")),
    ),
    bad=st.one_of(
        st.integers(options.INSTRUCTIONS_MAX_CHARS + 1, options.INSTRUCTIONS_MAX_CHARS + 3).map(lambda n: one("ä" * n, False)),
        st.integers(50_000, 400_000).map(lambda n: one("x" * n, False)),
        st.just(one("a\x00b", False)),
    ),
)
# A checkbox: absent or "false" is off; there is no bad value.
record = Field(st.sampled_from([Posted(None, True, False), one("on", True, True), one("", True, False),
                                one("false", True, False), one("true", True, True)]), st.nothing())


def field_table(dialect: str) -> dict[str, Field]:
    """Every field of the form for a dialect (temperature is posted on GA too, where the form has none)."""
    languages = ("", "en", "es", "de", "fr", "it", "pt", "nl", "pl", "ja", "zh")
    return {
        "voice": choice(options.voices_for(dialect), hostile=("ALLOY", "marin" if dialect == "preview" else "x")),
        "instructions": instructions,
        "turn_detection": choice(options.TURN_DETECTION_MODES),
        "vad_threshold": number(options.VAD_THRESHOLD, whole=False),
        "silence_duration_ms": number(options.SILENCE_DURATION_MS, whole=True),
        "prefix_padding_ms": number(options.PREFIX_PADDING_MS, whole=True),
        "eagerness": choice(options.EAGERNESS),
        "transcription_model": choice(("whisper-1",), hostile=("gpt-4o-transcribe",)),
        "language": choice(languages, required=False, hostile=("english", "de-DE")),
        "noise_reduction": choice(options.NOISE_REDUCTION),
        "speed": number(options.SPEED, whole=False),
        "max_response_tokens": number(options.MAX_RESPONSE_TOKENS, whole=True, required=False),
        "temperature": number(options.TEMPERATURE, whole=False),
        "record": record,
    }


@st.composite
def fields(draw: st.DrawFn, dialect: str) -> dict[str, Posted]:
    """A whole post: every field valid, but for none to three drawn bad."""
    table = field_table(dialect)
    breakable = sorted(name for name in table if name != "record")
    broken = draw(st.sets(st.sampled_from(breakable), max_size=3))
    return {name: draw(f.bad if name in broken else f.good) for name, f in table.items()}


def _stored(user) -> options.Preferences:
    row = VoicePreferences.objects.get(user=user)
    values = {f.name: getattr(row, f.name) for f in dataclasses.fields(options.Preferences)}
    values["tools_disabled"] = tuple(values["tools_disabled"])  # a JSON list in the row, a tuple in Preferences
    return options.Preferences(**values)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _post(client, posted: dict[str, Posted]) -> Any:
    data = {name: p.raw for name, p in posted.items() if p.raw is not None}
    return client.post("/settings/", data, HTTP_ACCEPT="application/json")


def assert_saved_whole_or_refused_whole(client, user, posted: dict[str, Posted], dialect: str) -> None:
    """Post `posted`; assert it was saved exactly as posted, or refused naming exactly the bad fields, nothing changed."""
    from conversations import services

    ignored = set() if options.has_temperature(dialect) else {"temperature"}
    with transaction.atomic():
        services.preferences_update(user=user, preferences=SAVED)
        response = _post(client, posted)
        bad = {name for name, p in posted.items() if not p.valid and name not in ignored}
        stored = _stored(user)
        if bad:
            event(f"{dialect}: refused")
            assert response.status_code == 400, (response.status_code, bad)
            errors = response.json()["errors"]
            assert set(errors) == bad, (set(errors), bad)
            assert all(isinstance(m, str) and m for messages in errors.values() for m in messages)
            assert stored == SAVED, "a refused post changed the saved settings"
            if "instructions" in bad and len((posted["instructions"].raw or [""])[-1].strip()) > options.INSTRUCTIONS_MAX_CHARS:
                assert str(options.INSTRUCTIONS_MAX_CHARS) in " ".join(errors["instructions"])
        else:
            event(f"{dialect}: saved")
            assert response.status_code == 200, (response.status_code, response.content[:500])
            assert response.json()["ok"] is True
            for name, p in posted.items():
                expected = getattr(SAVED, name) if name in ignored else p.value
                if name == "max_response_tokens" and expected == "":
                    expected = None
                assert _same(getattr(stored, name), expected), (name, getattr(stored, name), expected)
            # The page shows what was saved as text, never as markup.
            page = client.get("/settings/").content.decode()
            assert "<script>window.__pwned" not in page and "<img src=x" not in page
        transaction.set_rollback(True)


SETTINGS = settings(max_examples=examples(100), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def ga(settings, client, user):
    """A logged-in client of a GA deployment (set once per test: each override of `settings` nests another)."""
    settings.AZURE_OPENAI_API_VERSION = ""
    client.force_login(user)
    return client


@pytest.fixture
def preview(settings, client, user):
    """A logged-in client of a preview deployment."""
    settings.AZURE_OPENAI_API_VERSION = "2025-04-01-preview"
    client.force_login(user)
    return client


@given(posted=fields("ga"))
@SETTINGS
def test_any_ga_settings_post_is_saved_whole_or_refused_whole(posted, ga, user):
    assert_saved_whole_or_refused_whole(ga, user, posted, "ga")


@given(posted=fields("preview"))
@SETTINGS
def test_any_preview_settings_post_is_saved_whole_or_refused_whole(posted, preview, user):
    assert_saved_whole_or_refused_whole(preview, user, posted, "preview")


def test_instructions_over_the_limit_are_refused_with_the_limit_and_nothing_applied(client, user, settings):
    from conversations import services

    settings.AZURE_OPENAI_API_VERSION = ""
    client.force_login(user)
    services.preferences_update(user=user, preferences=SAVED)
    data = {k: ("" if v is None else v) for k, v in dataclasses.asdict(SAVED).items() if k != "temperature"}
    data.update(voice="cedar", instructions="x" * (options.INSTRUCTIONS_MAX_CHARS + 1))
    data["record"] = "on"
    response = client.post("/settings/", data, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    [message] = response.json()["errors"]["instructions"]
    assert "2000" in message and "2001" in message  # the limit, and how long it was
    assert _stored(user) == SAVED  # not even the valid voice
    assert json.loads(response.content)["ok"] is False
