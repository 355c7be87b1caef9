"""In a real Chromium: export all and one conversation from the history pages, import them into another account."""
from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import pytest

from conversations.models import Conversation, Turn, Usage

from .browser_fixtures import PASSWORD
from .browser_support import app_server, browser_available, database_url

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not browser_available(), reason="needs chromium, espeak-ng and sox (bash .ci/run installs them)"),
]

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "conversations" / "export_schema.json").read_text())
STARTED = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)


def _conversation(user, title: str, lines: list[tuple[str, str]]) -> Conversation:
    """An ended conversation of `user` with these (role, text) turns, a cut answer and usage."""
    conversation = Conversation.objects.create(
        user=user, title=title, provider="simulator", deployment="gpt-realtime", dialect="ga",
        status=Conversation.Status.ENDED, settings={"voice": "coral"},
    )
    Conversation.objects.filter(pk=conversation.pk).update(started_at=STARTED, ended_at=STARTED + dt.timedelta(minutes=2))
    for position, (role, text) in enumerate(lines):
        assistant = role == "assistant"
        Turn.objects.create(
            conversation=conversation, role=role, position=position, item_id=f"item_{position}", text=text,
            response_id=f"resp_{position}" if assistant else "", audio_ms=600 if assistant else 1200,
            interrupted=assistant, generated_ms=1200 if assistant else 0, recording_ms=position * 2000,
        )
        if assistant:
            Usage.objects.create(conversation=conversation, response_id=f"resp_{position}", model="gpt-realtime",
                                 status="completed", input_tokens=20, output_tokens=10, total_tokens=30)
    return conversation


def _valid(document: dict) -> dict:
    """The document, after checking it against the published schema."""
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(SCHEMA)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in Draft202012Validator(SCHEMA).iter_errors(document)]
    assert errors == []
    return document


def _download(page, click: str, folder: Path) -> Path:
    """Click a download link; return where the file was saved."""
    with page.expect_download() as info:
        page.click(click)
    download = info.value
    target = folder / download.suggested_filename
    download.save_as(target)
    return target


def _import(page, base_url: str, file: Path) -> None:
    page.goto(f"{base_url}/history/")
    page.set_input_files("#import-file", str(file))
    page.click(".import-form [type=submit]")
    page.wait_for_load_state()


def _titles(page) -> list[str]:
    return sorted(page.locator(".history-title").all_inner_texts())


def test_exports_downloaded_from_the_history_pages_import_into_another_account_once(
    account, django_user_model, open_browser, tmp_path
):
    from django.db import connection

    _conversation(account, "Apricots", [("user", "Remember the word apricot"), ("assistant", "I will remember it.")])
    _conversation(account, "Tides", [("user", "Why are there tides"), ("assistant", "Mostly the moon.")])
    django_user_model.objects.create_user(username="grace", password=PASSWORD)

    with app_server({"DATABASE_URL": database_url(connection.settings_dict)}) as url:
        b = open_browser(url, None)
        b.login()
        b.page.goto(f"{url}/history/")
        everything = _download(b.page, "text=Export all my conversations (.zip)", tmp_path)
        assert everything.suffix == ".zip"
        with zipfile.ZipFile(everything) as archive:
            members = sorted(n for n in archive.namelist() if n.endswith(".json"))
            exported = [_valid(json.loads(archive.read(n))) for n in members]
        assert sorted(d["conversation"]["title"] for d in exported) == ["Apricots", "Tides"]

        b.page.click(".history-title >> text=Apricots")
        one = json.loads(_download(b.page, "text=Export (JSON)", tmp_path).read_text())
        _valid(one)
        assert [(t["role"], t["text"], t["generated_ms"], t["recording_ms"]) for t in one["turns"]] == [
            ("user", "Remember the word apricot", 0, 0), ("assistant", "I will remember it.", 1200, 2000)]

        # Someone else imports the zip from their own history page.
        b.context.clear_cookies()
        b.login("grace")
        _import(b.page, url, everything)
        assert b.page.url == f"{url}/history/"
        assert "Imported 2 conversations." in b.page.inner_text(".messages")
        assert _titles(b.page) == ["Apricots", "Tides"]
        b.page.click(".history-title >> text=Tides")
        b.page.wait_for_selector('.dialogue .bubble[data-role="user"] >> text=Why are there tides')
        # The cut answer keeps its heard share (600 of 1200 ms), which needs the exported generated length.
        answer = b.page.locator('.dialogue .bubble.interrupted[data-role="assistant"]')
        assert "about 50% heard" in answer.inner_text()
        assert answer.locator(".heard").inner_text() == "Mostly the"
        assert answer.locator(".unheard").inner_text().endswith("moon.")

        # The same file again: said plainly, nothing added.
        _import(b.page, url, everything)
        assert ("2 conversations in this file were already imported; they were not imported again."
                in b.page.inner_text(".messages"))
        assert _titles(b.page) == ["Apricots", "Tides"]

        # A broken file: every problem listed with where it is, nothing imported.
        broken = json.loads(json.dumps(one))
        broken["conversation"]["id"] = "another"
        broken["turns"][0]["role"] = "robot"
        broken["turns"][1]["recording_ms"] = -1
        broken["usage"][0]["estimated"] = "maybe"
        (tmp_path / "broken.json").write_text(json.dumps(broken))
        _import(b.page, url, tmp_path / "broken.json")
        assert b.page.locator(".import-errors li").all_inner_texts() == [
            "turns[0].role: must be one of 'user', 'assistant', 'tool'",
            "turns[1].recording_ms: must be a whole number from 0 to 2147483647",
            "usage[0].estimated: must be true or false",
        ]
        b.page.goto(f"{url}/history/")
        assert _titles(b.page) == ["Apricots", "Tides"]
