"""Any upload to the import page imports whole or is refused with plain problems, and a refused one stores nothing.

tests/test_transfer_format.py drives the parser alone; this drives the page, its service and the
database, where a value the parser let through can still fail at insert (a lone surrogate, a time
that leaves the calendar when turned to UTC, nesting deeper than the JSON encoder goes).
"""
from __future__ import annotations

import copy
import io
import json
import uuid
import zipfile
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conversations.models import Conversation, Turn, Usage

from .hostile import HOSTILE
from .hostile import json_values as hostile_json
from .hypothesis_budget import examples
from .transfer import document

pytestmark = pytest.mark.django_db


json_values = hostile_json(max_size=3, max_leaves=10)
# Text a hostile file would carry: markup, NUL, lone surrogates (as JSON escapes), line breaks, long runs.
hostile_texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from([HOSTILE, "\x00", "\ud800", "a\udfffb", "\u2028", "**bold** [x](javascript:alert(1))", "```"]),
    st.integers(150, 2_500).map(lambda n: "é" * n),
)
# Times a file may claim: the calendar's edges with extreme offsets, naive, garbled, or not text at all.
hostile_times = st.one_of(
    st.sampled_from([
        "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00-14:00", "9999-12-31T23:59:59-14:00",
        "9999-12-31T23:59:59+00:00", "2026-02-30T10:00:00+00:00", "2026-11-24T09:00:00", "2026-11-24",
        "2026-11-24T09:00:00+25:00", "yesterday", "",
    ]),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    json_values,
)


def _deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"k": value}
    return value


PLACES = [
    ("conversation", "title"), ("conversation", "id"), ("conversation", "error"), ("conversation", "deployment"),
    ("conversation", "provider"), ("conversation", "dialect"), ("conversation", "status"),
    ("conversation", "started_at"), ("conversation", "ended_at"), ("exported_at",),
    ("turns", 0, "text"), ("turns", 1, "text"), ("turns", 0, "started_at"), ("turns", 1, "position"),
    ("turns", 0, "role"), ("turns", 1, "status_reason"), ("turns", 1, "response_id"), ("turns", 0, "audio_ms"),
    ("usage", 0, "created_at"), ("usage", 0, "model"), ("usage", 0, "response_id"), ("usage", 0, "cost_usd"),
    ("usage", 0, "total_tokens"), ("settings", "voice"), ("settings", "instructions"), ("settings", "extra"),
    ("version",), ("format",), ("turns",), ("usage",), ("settings",), ("conversation",),
]
changes = st.lists(
    st.tuples(st.sampled_from(PLACES),
              st.one_of(hostile_texts, hostile_times, json_values, st.integers(200, 950).map(_deep), st.just(KeyError))),
    min_size=1, max_size=4,
)


def _mutated(edits: list[tuple[tuple, Any]], *, duplicate_turn: bool) -> dict[str, Any]:
    doc = document()
    doc["conversation"]["id"] = str(uuid.uuid4())  # each example its own: an earlier import is no duplicate
    if duplicate_turn:
        doc["turns"].append(copy.deepcopy(doc["turns"][0]))  # the same position twice
    for path, value in edits:
        parent: Any = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            if value is KeyError:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            pass  # an earlier edit took the parent away
    return doc


def _encode(doc: Any) -> bytes:
    # ensure_ascii: lone surrogates travel as \\udXXX escapes, as another program's export could hold them.
    try:
        return json.dumps(doc).encode()
    except (RecursionError, ValueError):
        return b"{}"


def _zipped(files: list[bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for index, data in enumerate(files):
            z.writestr(f"conversations/c{index}.json", data)
    return buffer.getvalue()


# Text that any text field may hold: it must import, and show as text wherever it is shown.
harmless_texts = st.one_of(st.just(HOSTILE), st.text(st.characters(blacklist_categories=("Cs",),
                                                                   blacklist_characters="\x00"), max_size=60))
TEXT_PLACES = [("conversation", "title"), ("turns", 0, "text"), ("turns", 1, "text"), ("conversation", "error"),
               ("settings", "instructions"), ("turns", 1, "status_reason")]
harmless = st.lists(st.tuples(st.sampled_from(TEXT_PLACES), harmless_texts), min_size=1, max_size=3)

uploads = st.one_of(
    st.builds(lambda e: ("fine.json", _encode(_mutated(e, duplicate_turn=False))), harmless),
    st.builds(lambda e, d: ("one.json", _encode(_mutated(e, duplicate_turn=d))), changes, st.booleans()),
    st.builds(lambda v: ("any.json", _encode(v)), json_values),
    st.builds(lambda b: ("bytes.json", b), st.binary(max_size=200)),
    st.builds(lambda depth: ("deep.json", b"[" * depth + b"]" * depth), st.integers(500, 50_000)),
    # A zip of a valid export and a mutated one: all or nothing, so the valid one must not be kept alone.
    st.builds(lambda e: ("all.zip", _zipped([_encode(_mutated([], duplicate_turn=False)),
                                             _encode(_mutated(e, duplicate_turn=False))])), changes),
    st.builds(lambda b: ("all.zip", b"PK\x03\x04" + b), st.binary(max_size=100)),
    st.builds(lambda b: ("notes.md", b), st.binary(max_size=100)),
)


def _rows() -> tuple[int, int, int]:
    return Conversation.objects.count(), Turn.objects.count(), Usage.objects.count()


@given(upload=uploads)
@settings(max_examples=examples(300), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
def test_any_upload_imports_whole_or_is_refused_with_plain_problems_and_nothing_stored(upload, client, user):
    name, data = upload
    client.force_login(user)
    # Each example in a savepoint of its own, rolled back: what one stored cannot make the next a duplicate.
    with transaction.atomic():
        before = _rows()
        response = client.post("/history/import/", {"file": _upload(name, data)})
        after = _rows()
        if response.status_code == 302:
            imported = list(Conversation.objects.filter(user=user, imported_from__gt=""))
            assert imported and after[0] - before[0] == len(imported)
            event(f"imported ({name})")
            assert client.get("/history/").status_code == 200
            for conversation in imported:
                assert conversation.status == Conversation.Status.ENDED
                assert all(t.role in ("user", "assistant") and t.item_id for t in conversation.turns.all())
                # What was imported can be read back: its page and both exports.
                for page in ("", "export.json", "export.md"):
                    assert client.get(f"/history/{conversation.pk}/{page}").status_code == 200, page
        else:
            assert response.status_code == 400, response.status_code
            event(f"refused ({name})")
            assert after == before, "a refused upload stored something"
            page = response.content.decode()
            assert 'class="import-errors"' in page and "Nothing was imported" in page
            assert "Traceback" not in page
            # What the file said is shown escaped, never as markup.
            assert "<script>window.__pwned" not in page and "<img src=x" not in page
        transaction.set_rollback(True)


def _upload(name: str, data: bytes) -> io.BytesIO:
    """An in-memory file with a name, as the test client posts it."""
    buffer = io.BytesIO(data)
    buffer.name = name
    return buffer


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                    "1969-12-31T23:59:59+00:00", "9001-01-01T00:00:00+00:00"])
def test_a_time_near_the_calendars_ends_is_refused_and_nothing_stored(moment, client, user):
    """Stored, year 0 or 10000 in UTC could not be read back: the history page failed for good."""
    client.force_login(user)
    doc = document()
    doc["turns"][0]["started_at"] = moment
    response = client.post("/history/import/", {"file": _upload("one.json", json.dumps(doc).encode())})
    assert response.status_code == 400
    assert "turns[0].started_at: must be between the years 1970 and 9000" in response.content.decode()
    assert _rows() == (0, 0, 0)


@pytest.mark.parametrize("where", ["title", "text", "settings"])
def test_half_a_surrogate_pair_is_refused_with_where_it_is_and_nothing_stored(where, client, user):
    """A JSON escape \\ud800 could not be encoded for the database: the import failed with a server error."""
    client.force_login(user)
    doc = document()
    if where == "title":
        doc["conversation"]["title"] = "a\ud800"
    elif where == "text":
        doc["turns"][1]["text"] = "\udfff"
    else:
        doc["settings"]["instructions"] = {"\ud83d": "x"}
    response = client.post("/history/import/", {"file": _upload("one.json", json.dumps(doc).encode())})
    assert response.status_code == 400
    page = response.content.decode()
    assert "surrogate pair" in page
    assert {"title": "conversation.title", "text": "turns[1].text", "settings": "settings.instructions"}[where] in page
    assert _rows() == (0, 0, 0)
