"""In a real Chromium: staff watch a conversation appear on the live page without reloading, end it, and the talk page says so."""
from __future__ import annotations

import pytest

from .browser_fixtures import PASSWORD, serve, silent_wav
from .browser_support import browser_available, simulator_thread

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not browser_available(), reason="needs chromium, espeak-ng and sox (bash .ci/run installs them)"),
]


def test_the_live_page_lists_a_conversation_as_it_starts_and_end_stops_it_on_the_talk_page(
    account, django_user_model, open_browser, tmp_path
):
    django_user_model.objects.create_user(username="root", password=PASSWORD, is_staff=True)
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        talker = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        # Staff in a context of their own (another login) in the same Chromium.
        staff_page = talker._browser.new_context().new_page()
        errors: list[str] = []
        staff_page.on("pageerror", lambda exc: errors.append(str(exc)))
        staff_page.goto(f"{url}/accounts/login/?next=/staff/live/")
        staff_page.fill("#id_username", "root")
        staff_page.fill("#id_password", PASSWORD)
        staff_page.click("#login-form [type=submit]")
        staff_page.wait_for_selector("#live-empty:not([hidden])")

        talker.login()
        talker.start()
        conversation_id = talker.page.evaluate("window.voiceApp.conversationId")

        # The table refreshes by itself (every 5 s) from /staff/live.json.
        row = staff_page.wait_for_selector(f'#live-table tr[data-conversation-id="{conversation_id}"]', timeout=15_000)
        assert row.query_selector("td").text_content() == "ada"
        staff_page.once("dialog", lambda dialog: dialog.accept())
        row.query_selector("form.live-end button").click()
        staff_page.wait_for_selector(".message >> text=The conversation is being ended")

        talker.page.wait_for_selector("#error >> text=An administrator ended this conversation.", timeout=15_000)
        talker.page.wait_for_timeout(1500)  # longer than the first reconnect would wait
        assert "reconnecting" not in talker.page.evaluate("window.voiceApp.states")
        staff_page.wait_for_selector(f'#live-table tr[data-conversation-id="{conversation_id}"]', state="detached",
                                     timeout=15_000)
        assert errors == []
