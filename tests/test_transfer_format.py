"""Any uploaded bytes or JSON value is either checked conversations or a list of plain, located problems."""
from __future__ import annotations

import copy
import datetime as dt
import io
import json
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversations.transfer import archive, format, markdown

from .transfer import document

MAX = 100_000


def check_outcome(conversations: list, errors: list) -> None:
    """Exactly one of the two is non-empty, and every error is one line of plain text."""
    assert bool(conversations) != bool(errors)
    assert all(isinstance(e, str) and e and "\n" not in e and "Traceback" not in e for e in errors)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


# zipfile itself cannot write a NUL or a lone surrogate in a name, and a slash makes a folder.
member_names = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"), min_size=1, max_size=12
).map(lambda s: s + ".json")


def mutations() -> st.SearchStrategy:
    """A valid document with one field somewhere replaced by any JSON value, or removed."""
    paths = [("format",), ("version",), ("conversation",), ("conversation", "id"), ("conversation", "started_at"),
             ("conversation", "ended_at"), ("conversation", "status"), ("conversation", "title"), ("settings",),
             ("settings", "voice"), ("turns",), ("turns", 0), ("turns", 1, "role"), ("turns", 1, "position"),
             ("turns", 0, "text"), ("turns", 0, "audio_ms"), ("turns", 1, "interrupted"), ("turns", 0, "started_at"),
             ("usage",), ("usage", 0, "total_tokens"), ("usage", 0, "response_id"), ("usage", 0, "estimated"),
             ("turns", 1, "generated_ms"), ("turns", 1, "recording_ms")]
    return st.tuples(st.sampled_from(paths), json_values | st.just(KeyError))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_json_value_is_a_conversation_or_plain_errors(value):
    conversation, errors = format.parse_document(value)
    assert (conversation is None) == bool(errors)
    check_outcome([conversation] if conversation else [], errors)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_a_document_with_any_field_replaced_is_a_conversation_or_errors_that_name_the_field(mutation):
    path, value = mutation
    doc = document()
    doc["turns"][1].update(generated_ms=1500, recording_ms=2100)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if value is KeyError:
        parent.pop(path[-1]) if isinstance(parent, dict) else parent.pop(path[-1])
    else:
        parent[path[-1]] = value
    conversation, errors = format.parse_document(doc)
    check_outcome([conversation] if conversation else [], errors)
    if errors and path[0] not in ("format", "version"):
        # Each problem starts with where it is.
        assert any(e.split(":")[0].startswith(path[0]) for e in errors), errors


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_any_bytes_are_conversations_or_plain_errors(data):
    conversations, errors = archive.parse_upload("upload.json", data, max_bytes=MAX)
    check_outcome(conversations, errors)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(
    st.tuples(member_names, st.binary(max_size=200)), max_size=4, unique_by=lambda member: member[0]))
def test_any_zip_of_any_members_is_conversations_or_plain_errors(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, content in members:
            z.writestr(name, content)
    conversations, errors = archive.parse_upload("all.zip", buffer.getvalue(), max_bytes=MAX)
    check_outcome(conversations, errors)


@settings(max_examples=100)
@given(st.binary(min_size=4, max_size=300))
def test_any_bytes_after_a_zip_signature_are_plain_errors(data):
    conversations, errors = archive.parse_upload("all.zip", b"PK\x03\x04" + data, max_bytes=MAX)
    check_outcome(conversations, errors)


def test_a_valid_document_is_read_whole():
    conversation, errors = format.parse_document(document())
    assert errors == []
    assert conversation.original_id.endswith("de001") and conversation.title == "Apricots"
    assert conversation.started_at == dt.datetime(2026, 11, 24, 9, tzinfo=dt.UTC)
    assert [(t.role, t.position, t.interrupted, t.audio_ms) for t in conversation.turns] == [
        ("user", 0, False, 1200), ("assistant", 1, True, 700)]
    assert conversation.usage[0].tokens["total_tokens"] == 38


def test_a_file_without_the_generated_and_recording_lengths_reads_as_unknown_and_unrecorded():
    conversation, errors = format.parse_document(document())
    assert errors == []
    assert [(t.generated_ms, t.recording_ms) for t in conversation.turns] == [(0, None), (0, None)]


def test_the_generated_and_recording_lengths_are_read_when_present_and_recording_may_be_null():
    doc = document()
    doc["turns"][0].update(generated_ms=0, recording_ms=None)
    doc["turns"][1].update(generated_ms=1500, recording_ms=2100)
    conversation, errors = format.parse_document(doc)
    assert errors == []
    assert [(t.generated_ms, t.recording_ms) for t in conversation.turns] == [(0, None), (1500, 2100)]


def test_wrong_generated_and_recording_lengths_are_listed_with_where_they_are():
    doc = document()
    doc["turns"][0].update(generated_ms=None, recording_ms=-1)
    doc["turns"][1].update(generated_ms="long", recording_ms=True)
    assert format.parse_document(doc)[1] == [
        f"turns[{i}].{field}: must be a whole number from 0 to 2147483647"
        for i in (0, 1) for field in ("generated_ms", "recording_ms")]


def test_every_invalid_field_is_listed_with_where_it_is():
    doc = document()
    doc["conversation"]["status"] = "talking"
    doc["conversation"]["started_at"] = "yesterday"
    doc["turns"][1]["role"] = "robot"
    doc["turns"][0]["audio_ms"] = -5
    doc["turns"].append({"role": "user", "position": 0, "text": 3})
    doc["usage"][0]["total_tokens"] = "many"
    _, errors = format.parse_document(doc)
    assert errors == [
        "conversation.started_at: must be a date and time with a time zone, like 2026-01-31T14:05:00+00:00",
        "conversation.status: must be one of 'active', 'ended', 'failed'",
        "turns[0].audio_ms: must be a whole number from 0 to 2147483647",
        "turns[1].role: must be one of 'user', 'assistant', 'tool'",
        "turns[2].text: must be text",
        "usage[0].total_tokens: must be a whole number from 0 to 2147483647",
    ]


def test_two_turns_in_one_place_are_a_problem():
    doc = document()
    doc["turns"][1]["position"] = 0
    assert format.parse_document(doc)[1] == ["turns[1].position: 0 is also the position of turns[0]"]


def test_a_wrong_format_name_says_it_is_not_an_export():
    assert format.parse_document(document(format="chatgpt"))[1] == [
        "format: must be 'voiceapp.conversation'; this is not a conversation export of this app"]


@pytest.mark.parametrize("version", [2, "1", True, None])
def test_an_unknown_version_is_named(version):
    errors = format.parse_document(document(version=version))[1]
    assert len(errors) == 1 and errors[0].startswith(f"version: {version!r} is not supported")


def test_nul_characters_anywhere_in_the_settings_are_refused():
    errors = format.parse_document(document(settings={"instructions": ["ok", "bad\x00"]}))[1]
    assert errors == ["settings.instructions[1]: must not contain NUL characters"]


def test_a_settings_key_with_a_line_break_is_named_on_one_line():
    _, errors = format.parse_document(document(settings={"\n": {"\x00": None}}))
    assert errors == ["settings.\\u000a: must not contain NUL characters"]


def test_a_document_with_thousands_of_problems_lists_a_hundred_and_counts_the_rest():
    doc = document(turns=[{"role": "x"}] * 200)
    errors = format.parse_document(doc)[1]
    assert len(errors) == format.MAX_ERRORS + 1 and errors[-1].endswith("more problems")


def test_a_file_of_many_broken_turns_keeps_a_hundred_problems_and_counts_the_rest():
    data = json.dumps(document(turns=[{}] * 200_000)).encode()
    errors = archive.parse_upload("a.json", data, max_bytes=len(data))[1]
    assert len(errors) == format.MAX_ERRORS + 1
    assert errors[-1] == f"… and {3 * 200_000 - format.MAX_ERRORS} more problems"


def test_problems_across_many_zip_members_are_capped_too():
    bad = json.dumps(document(turns=[{}] * 50)).encode()
    data = _zip({f"c{i}.json": bad for i in range(5)})
    errors = archive.parse_upload("all.zip", data, max_bytes=MAX)[1]
    assert len(errors) == format.MAX_ERRORS + 1 and errors[-1] == f"… and {5 * 150 - 100} more problems"


def test_non_utf8_bytes_get_a_clear_error():
    assert archive.parse_upload("a.json", b"\xff\xfe{}", max_bytes=MAX)[1] == ["a.json is not UTF-8 text (byte 0)"]


def test_malformed_json_says_where():
    errors = archive.parse_upload("a.json", b'{"format": ', max_bytes=MAX)[1]
    assert errors == ["a.json is not valid JSON: Expecting value at line 1, column 12"]


def test_nan_and_deep_nesting_are_not_json():
    assert archive.parse_upload("a.json", b'{"x": NaN}', max_bytes=MAX)[1] == ["a.json is not valid JSON"]
    deep = b"[" * 100_000 + b"]" * 100_000
    assert archive.parse_upload("a.json", deep, max_bytes=10 * len(deep))[1] == ["a.json is not valid JSON"]


def test_a_file_over_the_limit_is_refused_before_it_is_read():
    errors = archive.parse_upload("a.json", b" " * 11, max_bytes=10)[1]
    assert errors == ["a.json is larger than the limit of 10 bytes"]


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, content in members.items():
            z.writestr(name, content)
    return buffer.getvalue()


def test_a_zip_bomb_is_refused():
    bomb = _zip({"bomb.json": b"[" + b" " * 50_000_000 + b"]"})
    assert len(bomb) < 100_000
    errors = archive.parse_upload("all.zip", bomb, max_bytes=100_000)[1]
    assert errors == ["all.zip: bomb.json is too large once unpacked"]


def test_a_zip_whose_members_add_up_past_the_unpacked_budget_is_refused():
    members = {f"c{i}.json": b"[" + b" " * 90_000 + b"]" for i in range(archive.UNPACKED_FACTOR + 1)}
    errors = archive.parse_upload("all.zip", _zip(members), max_bytes=100_000)[1]
    assert errors == [f"all.zip: c{archive.UNPACKED_FACTOR}.json is too large once unpacked"]


def test_problems_in_a_zip_name_the_member():
    second = document()
    second["conversation"]["id"] = "other"
    second["turns"][0]["role"] = "robot"
    data = _zip({"a.json": json.dumps(document()).encode(), "b.json": json.dumps(second).encode(),
                 "a.md": b"# not read"})
    assert archive.parse_upload("all.zip", data, max_bytes=MAX)[1] == [
        "all.zip: b.json: turns[0].role: must be one of 'user', 'assistant', 'tool'"]


def test_the_same_conversation_twice_in_one_zip_is_a_problem():
    data = _zip({"a.json": json.dumps(document()).encode(), "b.json": json.dumps(document()).encode()})
    errors = archive.parse_upload("all.zip", data, max_bytes=MAX)[1]
    assert errors == ["all.zip: b.json: conversation.id: 0b7c4c1e-5c1a-4f7a-9a55-2f4c1b7de001 is also the id in all.zip: a.json"]


def test_a_zip_without_exports_says_so():
    assert archive.parse_upload("all.zip", _zip({"notes.txt": b"hi"}), max_bytes=MAX)[1] == [
        "all.zip holds no .json exports"]


def test_markdown_never_carries_html_or_links_from_what_was_said():
    doc = document()
    doc["turns"][0]["text"] = "<script>alert(1)</script> [click](http://x) **bold**"
    text = markdown.render(doc)
    assert "<script>" not in text and "](" not in text and "**bold**" not in text
    assert r"\<script\>" in text


def test_the_json_schema_file_and_the_checker_agree_on_what_is_required():
    from pathlib import Path

    schema = json.loads((Path(format.__file__).parents[1] / "export_schema.json").read_text())
    assert schema["properties"]["format"]["const"] == format.FORMAT
    assert schema["properties"]["version"]["const"] == format.VERSION
    for section, required in (("conversation", ["id", "started_at", "status"]),):
        assert schema["properties"][section]["required"] == required
        for field in required:
            doc = copy.deepcopy(document())
            del doc[section][field]
            assert format.parse_document(doc)[1] == [f"{section}.{field}: is missing"]
    for section, required in (("turns", ["role", "position", "text"]), ("usage", ["response_id", "model"])):
        assert schema["properties"][section]["items"]["required"] == required
        for field in required:
            doc = copy.deepcopy(document())
            del doc[section][0][field]
            assert format.parse_document(doc)[1] == [f"{section}[0].{field}: is missing"]
    assert schema["properties"]["turns"]["items"]["properties"]["role"]["enum"] == list(format.ROLES)
    # Added within version 1, so optional: older files have neither.
    assert {"generated_ms", "recording_ms"} <= set(schema["properties"]["turns"]["items"]["properties"])
    assert set(schema["properties"]["usage"]["items"]["properties"]) >= set(format.TOKEN_FIELDS)
