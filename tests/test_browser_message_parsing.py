"""Anything a browser sends as a text or binary frame is either a well-typed command or a BrowserMessageError."""
from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversations.realtime import protocol
from conversations.realtime.protocol import (
    MAX_AUDIO_END_MS,
    MAX_AUDIO_FRAME_BYTES,
    MAX_ITEM_ID_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_TEXT_CHARS,
    BrowserCommand,
    BrowserMessageError,
    check_audio_frame,
    dumps,
    parse_browser_message,
)


def _reject(*args: Any) -> None:
    raise ValueError(f"not strict JSON: {args}")


def strict_loads(text: str) -> Any:
    """Parse as a browser's JSON.parse would: NaN and Infinity are not JSON."""
    return json.loads(text, parse_constant=_reject)


def assert_well_typed(command: BrowserCommand) -> None:
    """The documented types and ranges of every field."""
    assert command.type in protocol.BROWSER_MESSAGE_TYPES
    assert isinstance(command.item_id, str) and len(command.item_id) <= MAX_ITEM_ID_CHARS
    assert type(command.audio_end_ms) is int and 0 <= command.audio_end_ms <= MAX_AUDIO_END_MS
    assert isinstance(command.text, str) and len(command.text) <= MAX_TEXT_CHARS
    command.item_id.encode("utf-8")
    command.text.encode("utf-8")
    assert "\x00" not in command.text
    if command.type == "truncate":
        assert command.item_id
    if command.type == "text":
        assert command.text.strip() == command.text != ""
    assert command.t is None or (
        not isinstance(command.t, bool) and isinstance(command.t, (int, float)) and math.isfinite(command.t)
    )


def assert_parses_or_refuses(raw: str) -> None:
    """The property: a well-typed command whose pong is strict JSON, or a plain BrowserMessageError."""
    try:
        command = parse_browser_message(raw)
    except BrowserMessageError as exc:
        assert exc.code and str(exc)
        # The error goes to the browser as JSON too.
        strict_loads(dumps({"type": "error", "code": exc.code, "message": str(exc), "fatal": False}))
        return
    assert_well_typed(command)
    pong = dumps({"type": "pong", "t": command.t})
    assert strict_loads(pong)["t"] == command.t
    pong.encode("utf-8")
    if command.type == "text":
        strict_loads(dumps({"type": "transcript_done", "role": "user", "item_id": "", "text": command.text}))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
message_types = st.sampled_from(sorted(protocol.BROWSER_MESSAGE_TYPES)) | json_values
field_names = st.sampled_from(["type", "item_id", "audio_end_ms", "text", "t"]) | st.text(max_size=6)
messages = st.builds(
    lambda kind, fields: {**fields, "type": kind},
    message_types,
    st.dictionaries(field_names, json_values, max_size=5),
)


@given(st.text())
def test_arbitrary_text_parses_or_is_refused(raw):
    assert_parses_or_refuses(raw)


@given(messages)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_json_objects_parse_or_are_refused(message):
    # Python's json writes NaN/Infinity literals, which json.loads (and so a hostile client) accepts.
    assert_parses_or_refuses(json.dumps(message))


@given(json_values)
def test_arbitrary_json_values_parse_or_are_refused(value):
    assert_parses_or_refuses(json.dumps(value))


@given(st.binary(max_size=MAX_AUDIO_FRAME_BYTES + 10))
def test_arbitrary_audio_frames_are_accepted_or_refused_plainly(frame):
    try:
        check_audio_frame(frame)
    except BrowserMessageError as exc:
        assert exc.code in {"invalid_audio", "audio_frame_too_large"}
    else:
        assert len(frame) % 2 == 0 and len(frame) <= MAX_AUDIO_FRAME_BYTES


@pytest.mark.parametrize(
    "raw",
    [
        '{"type": ["x"]}',
        '{"type": {"a": 1}}',
        '{"type": 1}',
        '{"type": null}',
        '{"type": true}',
    ],
)
def test_a_type_that_is_not_a_string_is_an_unknown_type(raw):
    with pytest.raises(BrowserMessageError) as info:
        parse_browser_message(raw)
    assert info.value.code == "unknown_type"


@pytest.mark.parametrize(
    "end",
    ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", str(10**300), "true", "false", '"5"', "null", "[1]",
     str(MAX_AUDIO_END_MS + 1), "-1", "-0.5"],
)
def test_truncate_refuses_audio_end_ms_that_is_not_a_finite_duration(end):
    with pytest.raises(BrowserMessageError) as info:
        parse_browser_message(f'{{"type":"truncate","item_id":"item_1","audio_end_ms":{end}}}')
    assert info.value.code == "invalid_audio_end_ms"


def test_truncate_accepts_the_longest_allowed_duration():
    command = parse_browser_message(f'{{"type":"truncate","item_id":"i","audio_end_ms":{MAX_AUDIO_END_MS}}}')
    assert command.audio_end_ms == MAX_AUDIO_END_MS
    command = parse_browser_message('{"type":"truncate","item_id":"i","audio_end_ms":1234.9}')
    assert command.audio_end_ms == 1234


def test_integers_longer_than_pythons_digit_limit_are_invalid_json():
    with pytest.raises(BrowserMessageError) as info:
        parse_browser_message('{"type":"ping","t":' + "9" * 5000 + "}")
    assert info.value.code == "invalid_json"


def test_deeply_nested_arrays_are_refused_without_recursion_error():
    depth = 100_000
    raw = "[" * depth + "]" * depth
    with pytest.raises(BrowserMessageError) as info:
        parse_browser_message(raw)
    assert info.value.code == "message_too_long"
    within_cap = "[" * 30_000 + "]" * 30_000
    with pytest.raises(BrowserMessageError) as info:
        parse_browser_message(within_cap)
    assert info.value.code == "invalid_json"
    nested_value = '{"type":"ping","t":' + "[" * 30_000 + "]" * 30_000 + "}"
    with pytest.raises(BrowserMessageError):
        parse_browser_message(nested_value)


def test_oversize_messages_are_refused_before_parsing():
    raw = json.dumps({"type": "text", "text": "a" * MAX_MESSAGE_CHARS})
    with pytest.raises(BrowserMessageError) as info:
        parse_browser_message(raw)
    assert info.value.code == "message_too_long"


def test_the_longest_text_fits_even_fully_escaped():
    raw = json.dumps({"type": "text", "text": "\U0001f600" * MAX_TEXT_CHARS})  # \\ud83d\\ude00 each
    assert parse_browser_message(raw).text == "\U0001f600" * MAX_TEXT_CHARS


@pytest.mark.parametrize("text", ["5", "null", "[]", '{"a":1}', "true"])
def test_text_that_is_not_a_string_is_refused(text):
    with pytest.raises(BrowserMessageError) as info:
        parse_browser_message(f'{{"type":"text","text":{text}}}')
    assert info.value.code == "invalid_text"


def test_lone_surrogates_in_text_become_replacement_characters():
    command = parse_browser_message('{"type":"text","text":"hi \\ud800 there \\udfff"}')
    assert command.text == "hi \ufffd there \ufffd"
    command.text.encode("utf-8")


def test_nul_in_text_becomes_a_replacement_character_so_the_turn_can_be_stored():
    # PostgreSQL refuses NUL in text: the whole turn's write failed after it was sent upstream.
    assert parse_browser_message('{"type":"text","text":"a\\u0000b"}').text == "a\ufffdb"
    assert parse_browser_message('{"type":"text","text":"\\u0000 \\ud800"}').text == "\ufffd \ufffd"


def test_surrogate_pairs_in_text_are_kept():
    assert parse_browser_message('{"type":"text","text":"\\ud83d\\ude00"}').text == "\U0001f600"


def test_a_lone_surrogate_in_an_item_id_is_refused():
    with pytest.raises(BrowserMessageError) as info:
        parse_browser_message('{"type":"truncate","item_id":"item\\ud800","audio_end_ms":5}')
    assert info.value.code == "invalid_item_id"


@pytest.mark.parametrize("t", ["NaN", "Infinity", "-Infinity", "1e400", str(2**53), "true", '"x"', "[1]"])
def test_ping_never_echoes_what_json_or_javascript_cannot_carry(t):
    command = parse_browser_message(f'{{"type":"ping","t":{t}}}')
    assert command.t is None
    assert strict_loads(dumps({"type": "pong", "t": command.t})) == {"type": "pong", "t": None}


@pytest.mark.parametrize("t", [0, 1.5, -3, 1_700_000_000_123.25, 2**53 - 1])
def test_ping_echoes_finite_numbers(t):
    assert parse_browser_message(json.dumps({"type": "ping", "t": t})).t == t


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_dumps_refuses_to_write_invalid_json(value):
    with pytest.raises(ValueError):
        dumps({"type": "pong", "t": value})


def test_dumps_escapes_lone_surrogates_so_the_frame_is_valid_utf8():
    frame = dumps({"type": "error", "message": "\ud800"})
    assert frame.encode("utf-8") == b'{"type":"error","message":"\\ud800"}'


def test_an_oversize_odd_frame_is_too_large_rather_than_odd():
    with pytest.raises(BrowserMessageError) as info:
        check_audio_frame(bytes(MAX_AUDIO_FRAME_BYTES + 1))
    assert info.value.code == "audio_frame_too_large"
