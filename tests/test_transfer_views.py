"""Export (JSON, Markdown, a zip of all) and import through the pages: own conversations only, all or nothing."""
from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from conversations import selectors
from conversations.models import Conversation, Turn, Usage
from conversations.transfer import format

pytestmark = pytest.mark.django_db

STARTED = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)


def _conversation(user, title="Apricots", turns=None) -> Conversation:
    """A stored, ended conversation of `user` with times, an interrupted reply, a failed one, and usage."""
    conversation = Conversation.objects.create(
        user=user, title=title, provider="azure", deployment="gpt-realtime", dialect="ga",
        status=Conversation.Status.ENDED, settings={"voice": "coral", "instructions": "Be brief."},
    )
    Conversation.objects.filter(pk=conversation.pk).update(started_at=STARTED, ended_at=STARTED + dt.timedelta(minutes=3))
    turns = turns or [
        ("user", "Remember the word apricot", False, 1500, "", ""),
        ("assistant", "I will remember apricot for you.", True, 800, "", ""),
        ("user", "What was it?", False, 900, "", ""),
        ("assistant", "", False, 0, "failed", "server_error"),
    ]
    for position, (role, text, interrupted, audio_ms, status, reason) in enumerate(turns):
        Turn.objects.create(
            conversation=conversation, role=role, position=position, item_id=f"item_{position}",
            response_id=f"resp_{position}" if role == "assistant" else "", text=text, interrupted=interrupted,
            audio_ms=audio_ms, status=status, status_reason=reason,
        )
    Turn.objects.filter(conversation=conversation, position=1).update(created_at=STARTED + dt.timedelta(seconds=5))
    Usage.objects.create(conversation=conversation, response_id="resp_1", model="gpt-realtime", status="completed",
                         input_tokens=100, output_tokens=50, total_tokens=150, cost="0.001234", priced=True)
    Usage.objects.create(conversation=conversation, response_id="resp_3", model="gpt-realtime", status="failed",
                         input_tokens=10, output_tokens=0, total_tokens=10, estimated=True, cost="0", priced=True)
    conversation.refresh_from_db()
    return conversation


@pytest.fixture
def other(django_user_model):
    """A second user."""
    return django_user_model.objects.create_user(username="grace", password="another long passphrase")


def _export(client, conversation) -> dict:
    response = client.get(f"/history/{conversation.pk}/export.json")
    assert response.status_code == 200
    return json.loads(response.content)


def _upload(client, content: bytes, name: str = "export.json"):
    return client.post("/history/import/", {"file": SimpleUploadedFile(name, content)})


def _counts() -> tuple[int, int, int]:
    return Conversation.objects.count(), Turn.objects.count(), Usage.objects.count()


def test_the_json_export_is_an_attachment_that_the_documented_checker_accepts(client, user):
    conversation = _conversation(user)
    client.force_login(user)
    response = client.get(f"/history/{conversation.pk}/export.json")
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="apricots-{conversation.pk.hex[:8]}.json"'
    document = json.loads(response.content)
    parsed, errors = format.parse_document(document)
    assert errors == []
    assert document["format"] == "voiceapp.conversation" and document["version"] == 1
    assert document["conversation"]["id"] == str(conversation.pk)
    assert document["conversation"]["started_at"] == "2026-11-24T09:00:00+00:00"
    assert document["settings"] == {"voice": "coral", "instructions": "Be brief."}
    assert [(t["role"], t["position"], t["interrupted"], t["audio_ms"], t["status"]) for t in document["turns"]] == [
        ("user", 0, False, 1500, ""), ("assistant", 1, True, 800, ""), ("user", 2, False, 900, ""),
        ("assistant", 3, False, 0, "failed")]
    assert document["turns"][1]["started_at"] == "2026-11-24T09:00:05+00:00"
    assert [(u["response_id"], u["total_tokens"], u["estimated"]) for u in document["usage"]] == [
        ("resp_1", 150, False), ("resp_3", 10, True)]


def test_the_json_export_and_an_older_file_are_valid_against_the_published_schema(client, user):
    from pathlib import Path

    from jsonschema import Draft202012Validator

    from .transfer import document

    schema = json.loads((Path(format.__file__).parents[1] / "export_schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    conversation = _conversation(user)
    Turn.objects.filter(conversation=conversation, position=1).update(generated_ms=1600, recording_ms=1900)
    client.force_login(user)
    for exported in (_export(client, conversation), document()):  # document(): written before the newer fields
        assert [e.message for e in Draft202012Validator(schema).iter_errors(exported)] == []


def test_a_title_that_is_not_a_safe_file_name_is_slugged(client, user):
    conversation = _conversation(user, title='../"evil"\r\nname ñ')
    client.force_login(user)
    disposition = client.get(f"/history/{conversation.pk}/export.md")["Content-Disposition"]
    assert disposition == f'attachment; filename="evil-name-n-{conversation.pk.hex[:8]}.md"'


def test_the_markdown_export_reads_as_a_dialogue_with_times_marks_and_token_totals(client, user):
    conversation = _conversation(user)
    client.force_login(user)
    response = client.get(f"/history/{conversation.pk}/export.md")
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    text = response.content.decode()
    assert text.startswith("# Apricots\n")
    assert "Started 2026-11-24 09:00:00 UTC" in text
    assert "**Assistant** · 09:00:05 · *interrupted: you heard 0.8 s*" in text
    assert "I will remember apricot for you." in text
    assert "failed: server\\_error" in text
    assert "160 tokens in all: 110 in, 50 out, over 2 responses." in text
    assert "Some counts are estimates" in text
    assert "<" not in text


def test_export_all_is_a_zip_of_a_json_and_a_markdown_file_per_conversation(client, user, other):
    first, second = _conversation(user, title="First"), _conversation(user, title="Second")
    _conversation(other, title="Not mine")
    client.force_login(user)
    response = client.get("/history/export-all.zip")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="conversations-')
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = sorted(archive.namelist())
    assert names == sorted(f"conversations/{c.title.lower()}-{c.pk.hex[:8]}.{ext}"
                           for c in (first, second) for ext in ("json", "md"))
    for name in names:
        if name.endswith(".json"):
            assert format.parse_document(json.loads(archive.read(name)))[1] == []


@pytest.mark.parametrize("suffix", ["export.json", "export.md"])
def test_another_users_conversation_is_not_found(client, user, other, suffix):
    conversation = _conversation(other)
    client.force_login(user)
    assert client.get(f"/history/{conversation.pk}/{suffix}").status_code == 404


@pytest.mark.parametrize("path", ["/history/not-a-uuid/export.json", "/history/12345/export.md",
                                  "/history/00000000-0000-0000-0000-000000000000/export.json"])
def test_a_malformed_or_unknown_id_is_not_found(client, user, path):
    client.force_login(user)
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("path", ["/history/00000000-0000-0000-0000-000000000000/export.json",
                                  "/history/00000000-0000-0000-0000-000000000000/export.md",
                                  "/history/export-all.zip", "/history/import/"])
def test_export_and_import_require_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")
    assert client.post("/history/import/").status_code == 302


def test_a_round_trip_into_a_second_account_reproduces_the_conversation_under_a_new_id(client, user, other):
    conversation = _conversation(user)
    client.force_login(user)
    exported = _export(client, conversation)
    client.force_login(other)
    response = _upload(client, json.dumps(exported).encode())
    assert response.status_code == 302 and response.url == "/history/"
    imported = Conversation.objects.get(user=other)
    assert imported.pk != conversation.pk and imported.imported_from == str(conversation.pk)
    assert imported.status == Conversation.Status.ENDED
    assert (imported.title, imported.started_at, imported.settings) == (
        conversation.title, conversation.started_at, conversation.settings)
    again = _export(client, imported)
    strip = lambda doc: {k: v for k, v in doc.items() if k not in ("exported_at", "conversation")}  # noqa: E731
    assert strip(again) == strip(exported)
    assert [m.message for m in response.wsgi_request._messages] == ["Imported 1 conversation."]


def test_generated_lengths_go_out_and_come_back_in_and_recording_places_go_out_only(client, user, other):
    conversation = _conversation(user)
    Turn.objects.filter(conversation=conversation, position=0).update(recording_ms=0)
    Turn.objects.filter(conversation=conversation, position=1).update(generated_ms=1600, recording_ms=1900)
    client.force_login(user)
    exported = _export(client, conversation)
    assert [(t["generated_ms"], t["recording_ms"]) for t in exported["turns"]] == [
        (0, 0), (1600, 1900), (0, None), (0, None)]
    client.force_login(other)
    _upload(client, json.dumps(exported).encode())
    imported = Conversation.objects.get(user=other)
    # The recording does not travel, so its places are not kept: a continued import records from 0 anew.
    assert list(imported.turns.order_by("position").values_list("generated_ms", "recording_ms")) == [
        (0, None), (1600, None), (0, None), (0, None)]
    # The heard share of the cut answer (800 of 1600 ms) survives the move.
    cut = selectors.transcript_of(conversation=imported).lines[1]
    assert cut.heard_share == 0.5 and cut.heard and cut.unheard


def test_a_file_exported_before_the_lengths_were_added_still_imports(client, user, other):
    client.force_login(user)
    exported = _export(client, _conversation(user))
    for turn in exported["turns"]:
        del turn["generated_ms"], turn["recording_ms"]
    client.force_login(other)
    response = _upload(client, json.dumps(exported).encode())
    assert response.status_code == 302
    imported = Conversation.objects.get(user=other)
    assert list(imported.turns.values_list("generated_ms", "recording_ms")) == [(0, None)] * 4


def test_imported_turns_get_item_ids_of_their_own_that_the_relay_can_seed_with(client, user, other):
    from conversations.relay.state import _SEED_ID

    conversation = _conversation(user)
    client.force_login(user)
    exported = _export(client, conversation)
    client.force_login(other)
    _upload(client, json.dumps(exported).encode())
    _upload(client, json.dumps({**exported, "conversation": {**exported["conversation"], "id": "copy"}}).encode())
    ids = list(Turn.objects.filter(conversation__user=other).values_list("item_id", flat=True))
    assert len(ids) == len(set(ids)) == 8
    assert all(i.startswith("imp_") and _SEED_ID.match(i) for i in ids)
    imported = Conversation.objects.filter(user=other).first()
    stored = selectors.conversation_for_relay(user=other, conversation_id=imported.pk)
    assert [t.text for t in stored.turns][:3] == ["Remember the word apricot", "I will remember apricot for you.",
                                                 "What was it?"]
    assert client.get(f"/?conversation={imported.pk}").status_code == 200


def test_a_zip_of_all_imports_every_conversation(client, user, other):
    _conversation(user, title="First"), _conversation(user, title="Second")
    client.force_login(user)
    data = b"".join(client.get("/history/export-all.zip").streaming_content)
    client.force_login(other)
    response = _upload(client, data, "conversations.zip")
    assert response.status_code == 302
    assert sorted(Conversation.objects.filter(user=other).values_list("title", flat=True)) == ["First", "Second"]
    assert Turn.objects.filter(conversation__user=other).count() == 8


def test_importing_the_same_file_twice_says_so_and_creates_nothing_more(client, user, other):
    client.force_login(user)
    exported = json.dumps(_export(client, _conversation(user))).encode()
    client.force_login(other)
    _upload(client, exported)
    client.get("/")  # shows, and so consumes, the first import's message
    before = _counts()
    response = _upload(client, exported)
    assert response.status_code == 302
    assert _counts() == before
    assert [m.message for m in response.wsgi_request._messages] == [
        "1 conversation in this file was already imported; it was not imported again."]


def test_a_zip_with_one_new_conversation_imports_only_that_one(client, user, other):
    first = _conversation(user, title="First")
    client.force_login(user)
    exported = json.dumps(_export(client, first)).encode()
    client.force_login(other)
    _upload(client, exported)
    client.get("/")  # shows, and so consumes, the first import's message
    client.force_login(user)
    _conversation(user, title="Second")
    everything = b"".join(client.get("/history/export-all.zip").streaming_content)
    client.force_login(other)
    response = _upload(client, everything, "all.zip")
    assert sorted(Conversation.objects.filter(user=other).values_list("title", flat=True)) == ["First", "Second"]
    assert [m.message for m in response.wsgi_request._messages] == [
        "1 conversation in this file was already imported; it was not imported again.", "Imported 1 conversation."]


def _refused(client, content: bytes, name: str = "export.json") -> list[str]:
    before = _counts()
    response = _upload(client, content, name)
    assert response.status_code == 400
    assert _counts() == before
    return response.context["errors"]


def test_malformed_json_is_refused_with_a_clear_error_and_leaves_no_rows(client, user):
    client.force_login(user)
    assert _refused(client, b'{"format": "voiceapp.conversation",') == [
        "export.json is not valid JSON: Expecting property name enclosed in double quotes at line 1, column 36"]


def test_a_file_that_is_not_utf8_is_refused(client, user):
    client.force_login(user)
    assert _refused(client, "{\"title\": \"Ü\"}".encode("latin-1")) == ["export.json is not UTF-8 text (byte 11)"]


def test_a_wrong_format_name_is_refused(client, user):
    client.force_login(user)
    assert _refused(client, json.dumps({"format": "other.app", "version": 1}).encode()) == [
        "format: must be 'voiceapp.conversation'; this is not a conversation export of this app"]


def test_a_wrong_version_is_refused(client, user):
    client.force_login(user)
    document = _export(client, _conversation(user))
    assert _refused(client, json.dumps({**document, "version": 2}).encode()) == [
        "version: 2 is not supported; this app reads version 1"]


def test_an_oversized_file_is_refused_before_it_is_read(client, user, settings):
    settings.IMPORT_MAX_BYTES = 1000
    client.force_login(user)
    assert _refused(client, b" " * 1001, "big.json") == ["big.json is 1001 bytes; the limit is 1000 bytes."]


def test_every_invalid_field_is_listed_with_its_location_and_nothing_is_stored(client, user):
    client.force_login(user)
    document = _export(client, _conversation(user))
    document["turns"][3]["role"] = "narrator"
    document["turns"][0]["position"] = -1
    document["usage"][1]["estimated"] = "yes"
    del document["conversation"]["started_at"]
    errors = _refused(client, json.dumps(document).encode())
    assert errors == [
        "conversation.started_at: is missing",
        "turns[0].position: must be a whole number from 0 to 2147483647",
        "turns[3].role: must be one of 'user', 'assistant', 'tool'",
        "usage[1].estimated: must be true or false",
    ]


def test_a_zip_with_one_bad_member_imports_none_of_them(client, user, other):
    _conversation(user, title="First"), _conversation(user, title="Second")
    client.force_login(user)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(client.get("/history/export-all.zip").streaming_content)))
    rebuilt = io.BytesIO()
    with zipfile.ZipFile(rebuilt, "w") as out:
        for index, name in enumerate(n for n in archive.namelist() if n.endswith(".json")):
            content = archive.read(name)
            out.writestr(name, content if index == 0 else content.replace(b'"role": "user"', b'"role": "me"', 1))
    client.force_login(other)
    errors = _refused(client, rebuilt.getvalue(), "all.zip")
    assert len(errors) == 1 and errors[0].endswith(".json: turns[0].role: must be one of 'user', 'assistant', 'tool'")


def test_a_zip_bomb_is_refused(client, user, settings):
    settings.IMPORT_MAX_BYTES = 100_000
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("bomb.json", b"[" + b" " * 20_000_000 + b"]")
    client.force_login(user)
    assert _refused(client, bomb.getvalue(), "all.zip") == ["all.zip: bomb.json is too large once unpacked"]


def test_a_post_without_a_file_asks_for_one(client, user):
    client.force_login(user)
    response = client.post("/history/import/")
    assert response.status_code == 400
    assert response.context["errors"] == ["Choose a file to import: a .json export or a .zip of exports."]


def test_the_import_form_posts_a_file_with_csrf(client, user):
    client.force_login(user)
    html = client.get("/history/import/").content.decode()
    assert 'enctype="multipart/form-data"' in html and 'action="/history/import/"' in html
    assert 'name="csrfmiddlewaretoken"' in html and 'type="file"' in html


def test_the_history_pages_offer_export_and_import(client, user):
    conversation = _conversation(user)
    client.force_login(user)
    listing = client.get("/history/").content.decode()
    assert 'action="/history/import/"' in listing and 'enctype="multipart/form-data"' in listing
    assert 'href="/history/export-all.zip"' in listing
    page = client.get(f"/history/{conversation.pk}/").content.decode()
    assert f'href="/history/{conversation.pk}/export.json"' in page
    assert f'href="/history/{conversation.pk}/export.md"' in page


def test_an_import_lands_on_the_history_page_with_the_conversation_listed(client, user, other):
    client.force_login(user)
    document = _export(client, _conversation(user, title="Quinces"))
    client.force_login(other)
    response = _upload(client, json.dumps(document).encode())
    assert response.status_code == 302 and response["Location"] == "/history/"
    assert "Quinces" in client.get("/history/").content.decode()
