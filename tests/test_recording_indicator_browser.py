"""In a real Chromium: the talk page shows "Recording" while the server says it records, and not otherwise."""
import json
import re

import pytest

from .browser_support import browser_available, simulator_thread
from .browser_fixtures import serve, silent_wav

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not browser_available(), reason="needs chromium, espeak-ng and sox (bash .ci/run installs them)"),
]


def say_recording(page, flags: dict[str, bool]) -> None:
    """Pass the page's socket through, setting `recording` on the server's messages of the types in `flags`.

    The test decides what the server says, so the page's side is proven whatever the server records.
    """
    def route(ws) -> None:
        server = ws.connect_to_server()

        def to_page(message) -> None:
            if isinstance(message, str):
                msg = json.loads(message)
                if msg.get("type") in flags:
                    message = json.dumps({**msg, "recording": flags[msg["type"]]})
            ws.send(message)

        server.on_message(to_page)

    page.route_web_socket(re.compile(r"/ws/talk/"), route)


def indicator(page) -> tuple[bool, bool]:
    """Whether the mark is visible, and whether the page's state says recording."""
    return page.is_visible("#recording-indicator"), page.evaluate("window.voiceApp.recording")


def test_the_recording_mark_follows_the_server_and_goes_when_the_conversation_ends(account, open_browser, tmp_path):
    flags = {"ready": True, "settings_applied": False}
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        say_recording(b.page, flags)
        b.login()
        assert indicator(b.page) == (False, False)

        b.start()
        b.page.wait_for_selector("#recording-indicator", state="visible", timeout=5_000)
        assert indicator(b.page) == (True, True)
        assert b.page.inner_text("#recording-indicator") == "Recording"
        assert b.page.locator(".recording-status").get_attribute("role") == "status"

        # Settings that turn recording off: the server answers settings_applied with recording false.
        b.page.click("#settings-panel summary")
        b.page.uncheck("#settings-form [name=record]")
        b.page.click("#settings-form [type=submit]")
        b.page.wait_for_function("() => (window.voiceApp.stats.messages.settings_applied || 0) >= 1", timeout=10_000)
        b.page.wait_for_selector("#recording-indicator", state="hidden", timeout=5_000)
        assert indicator(b.page) == (False, False)

        # A new conversation that is recorded shows it again; Stop hides it.
        b.page.click("#stop")
        b.start()
        b.page.wait_for_selector("#recording-indicator", state="visible", timeout=5_000)
        b.page.click("#stop")
        b.page.wait_for_selector("#recording-indicator", state="hidden", timeout=5_000)
        assert indicator(b.page) == (False, False)
