"""In a real Chromium: deleting a conversation in one tab ends it in the tab where it is live, for good."""
from __future__ import annotations

import pytest

from .browser_fixtures import serve, silent_wav
from .browser_support import browser_available, simulator_thread, wait_until

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not browser_available(), reason="needs chromium, espeak-ng and sox (bash .ci/run installs them)"),
]


def test_deleting_a_live_conversation_in_another_tab_ends_it_there_without_reconnecting(account, open_browser, tmp_path):
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        b.login()
        b.start()
        b.page.fill("#text-input", "Keep the word apricot in mind")
        b.page.press("#text-input", "Enter")
        b.page.wait_for_selector('#transcript .bubble[data-role="assistant"] >> text=You wrote', timeout=20_000)
        deleted = b.page.evaluate("window.voiceApp.conversationId")
        assert f"conversation={deleted}" in b.page.url

        other = b.context.new_page()
        other.goto(f"{url}/history/{deleted}/delete/")
        other.click("main form [type=submit]")
        other.wait_for_url(f"{url}/history/")

        b.page.wait_for_selector("#error >> text=This conversation was deleted in another window.", timeout=15_000)
        wait_until(lambda: sim.sessions[0].closed, timeout=10)
        b.page.wait_for_timeout(1500)  # longer than the first reconnect would wait
        assert "reconnecting" not in b.page.evaluate("window.voiceApp.states")
        assert b.page.evaluate("window.voiceApp.conversationId") is None
        assert "conversation=" not in b.page.url  # a reload does not ask for what is gone
        assert b.page.is_enabled("#start")

        b.start()  # a new conversation, not the deleted one
        assert b.page.evaluate("window.voiceApp.conversationId") not in (None, deleted)
