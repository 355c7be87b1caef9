"""In a real Chromium: markup typed by a user, said by the model or carried by an imported file is shown as text everywhere.

The payload sets `window.__pwned` if any page ever runs it (an <img> with onerror, and a <script>).
It goes through the talk page, the history list, its search with PostgreSQL's highlighting, the
conversation page, continuing it on the talk page, and an imported file; every page must show it
literally and none may run it.
"""
from __future__ import annotations

import json

import pytest

from .browser_fixtures import serve, silent_wav
from .browser_support import browser_available, simulator_thread, wait_until
from .hostile import HOSTILE
from .transfer import document

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not browser_available(), reason="needs chromium, espeak-ng and sox (bash .ci/run installs them)"),
]

TYPED = f"quokka {HOSTILE}"  # a word to search for: PostgreSQL's parser skips what looks like a tag
SAID = f"numbat {HOSTILE} & <b>bold</b>"


def _harmless(page, selector: str, *, at_least: int = 1) -> list[str]:
    """The text of every element matching `selector`: shown literally, and nothing on the page ran."""
    page.wait_for_selector(selector)
    texts = page.locator(selector).all_text_contents()
    assert len(texts) >= at_least, (selector, texts)
    assert all("<img src=x" in t for t in texts), (selector, texts)
    assert page.locator(f"{selector} img, {selector} script, {selector} b").count() == 0
    assert page.evaluate("window.__pwned") is None, "the payload ran"
    return texts


def test_markup_from_the_user_the_model_and_a_file_is_text_on_every_page(account, open_browser, tmp_path):
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        dialogs: list[str] = []
        b.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        b.login()
        b.start()
        sim.next_replies([SAID])
        b.page.fill("#text-input", TYPED)
        b.page.press("#text-input", "Enter")
        b.page.wait_for_selector('#transcript .bubble[data-role="assistant"] >> text=numbat', timeout=20_000)
        wait_until(lambda: b.messages("response_done") >= 1)
        [user] = _harmless(b.page, '#transcript .bubble[data-role="user"]')
        [said] = _harmless(b.page, '#transcript .bubble[data-role="assistant"]')
        assert TYPED in user and SAID in said
        b.page.click("#stop")

        # The history list: the title is the typed text.
        def listed() -> bool:
            b.page.goto(f"{url}/history/")
            return b.page.locator(".history-title").count() > 0

        wait_until(listed, interval=0.5)
        [title] = _harmless(b.page, ".history-title")
        assert title.strip() == TYPED

        # Search: PostgreSQL highlights the matching words; everything around them stays text.
        for word, line in (("quokka", TYPED), ("numbat", SAID)):
            b.page.goto(f"{url}/history/?q={word}")
            b.page.wait_for_selector(f".history-excerpt mark >> text={word}")
            [excerpt] = _harmless(b.page, ".history-excerpt")
            assert line in excerpt
            assert b.page.locator(".history-excerpt mark").all_text_contents() == [word]
        b.page.goto(f"{url}/history/?q=quokka")
        b.page.wait_for_selector(".history-title mark >> text=quokka")
        _harmless(b.page, ".history-title")

        # The conversation page, then continuing it on the talk page (its turns come from the server).
        b.page.click(".history-title")
        b.page.wait_for_selector(".dialogue .bubble")
        _harmless(b.page, ".dialogue .bubble", at_least=2)
        b.page.click("text=Continue")
        b.page.wait_for_selector("#continue-line")
        _harmless(b.page, "#transcript .bubble", at_least=2)

        # An imported file with markup in its title, its turns and its error.
        doc = document()
        doc["conversation"].update(title=f"Imported {HOSTILE}", status="failed", error=f"Broke {HOSTILE}")
        doc["turns"][0]["text"] = f"wallaby {HOSTILE}"
        doc["turns"][1]["text"] = f"{HOSTILE}\n**not bold** [link](javascript:alert(1))"
        upload = tmp_path / "hostile.json"
        upload.write_text(json.dumps(doc))
        b.page.goto(f"{url}/history/")
        b.page.set_input_files("#import-file", str(upload))
        b.page.click(".import-form [type=submit]")
        b.page.wait_for_selector(".history-title >> text=Imported")
        _harmless(b.page, ".history-title", at_least=2)
        b.page.click(".history-title >> text=Imported")
        b.page.wait_for_selector(".dialogue .bubble")
        bubbles = _harmless(b.page, ".dialogue .bubble", at_least=2)
        assert any("**not bold** [link](javascript:alert(1))" in t for t in bubbles)
        assert b.page.locator(".dialogue a[href^='javascript']").count() == 0
        assert "<img src=x" in b.page.locator("h1").first.text_content()
        b.page.goto(f"{url}/history/?q=wallaby")
        b.page.wait_for_selector(".history-excerpt mark >> text=wallaby")
        _harmless(b.page, ".history-excerpt")

        assert b.page.evaluate("window.__pwned") is None
        assert dialogs == [] and b.errors == []
