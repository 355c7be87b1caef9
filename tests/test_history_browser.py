"""In a real Chromium: a typed word finds its conversation in history, which reads back and continues."""
import json

import pytest

from .browser_support import barge_in_wav, browser_available, simulator_thread, wait_until
from .browser_fixtures import serve, silent_wav

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not browser_available(), reason="needs chromium, espeak-ng and sox (bash .ci/run installs them)"),
]


def reload_until(page, url: str, selector: str, timeout: float = 20.0) -> None:
    """Load `url` until `selector` is on it: the journal writes a moment after Stop."""
    # Playwright's sync API runs an event loop in this thread, so the test cannot ask the ORM itself.
    def shown() -> bool:
        page.goto(url)
        return page.locator(selector).count() > 0

    wait_until(shown, timeout=timeout, interval=0.5)


def test_a_typed_word_finds_the_conversation_which_reads_back_and_continues(account, open_browser, tmp_path):
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        b.login()
        b.start()
        b.page.fill("#text-input", "Tell me about the quetzalcoatlus")
        b.page.press("#text-input", "Enter")
        b.page.wait_for_selector('#transcript .bubble[data-role="assistant"] >> text=You wrote', timeout=20_000)
        b.page.click("#stop")

        reload_until(b.page, f"{url}/history/?q=quetzalcoatlus", ".history-excerpt mark >> text=quetzalcoatlus")
        assert b.page.locator(".history-excerpt mark").all_inner_texts() == ["quetzalcoatlus"]
        b.page.click(".history-title")
        b.page.wait_for_selector('.dialogue .bubble[data-role="user"] >> text=Tell me about the quetzalcoatlus')
        b.page.wait_for_selector('.dialogue .bubble[data-role="assistant"] >> text=You wrote')
        conversation_id = b.page.url.rstrip("/").rsplit("/", 1)[1]

        b.page.click("text=Continue")
        assert b.page.url.endswith(f"/?conversation={conversation_id}")
        b.page.wait_for_selector("#continue-line")
        b.page.wait_for_selector('#transcript .bubble[data-role="user"] >> text=Tell me about the quetzalcoatlus')

        # Start continues it: the new session is seeded with the earlier turns before it answers anything.
        already = len(sim.received)
        b.start()
        b.page.fill("#text-input", "And how big were its wings")
        b.page.press("#text-input", "Enter")
        wait_until(lambda: [e for e in sim.received[already:] if e["type"] == "response.create"], timeout=20)
        sent = sim.received[already:]
        seeded = [i for i, e in enumerate(sent)
                  if e["type"] == "conversation.item.create" and "quetzalcoatlus" in json.dumps(e)]
        first_response = next(i for i, e in enumerate(sent) if e["type"] == "response.create")
        assert seeded and seeded[0] < first_response
        assert b.page.evaluate("window.voiceApp.stats.messages.ready") >= 1


def test_an_interrupted_reply_shows_what_was_heard_apart(account, open_browser, tmp_path):
    wav = barge_in_wav(tmp_path)
    with simulator_thread(api_key="sim-key", strict=True, realtime_pacing=True) as sim, serve(sim) as url:
        b = open_browser(url, wav)
        b.login()
        b.start()
        wait_until(lambda: [e for e in sim.received if e["type"] == "conversation.item.truncate"], timeout=30)
        b.page.wait_for_selector("#transcript .bubble.interrupted", timeout=10_000)
        b.page.click("#stop")
        reload_until(b.page, f"{url}/history/", ".history-title")
        b.page.click(".history-title")
        conversation_url = b.page.url
        reload_until(b.page, conversation_url, ".dialogue .bubble.interrupted >> text=heard, estimated")
        assert b.page.locator(".dialogue .bubble.interrupted .heard, .dialogue .bubble.interrupted .unheard").count() >= 1
