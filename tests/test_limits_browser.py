"""In a real Chromium: a start over a limit says why and until when, and the meter follows each reply."""
from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .browser_fixtures import silent_wav
from .browser_support import app_server, browser_available, database_url

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not browser_available(), reason="needs chromium, espeak-ng and sox (bash .ci/run installs them)"),
]

LONG = "Please tell me a long story about the sea, the ships on it and the people who sail them"


def _serve(sim):
    """The app's server on the test database, with limit counters under a key prefix of this test's own."""
    from django.db import connection

    return app_server({
        "DATABASE_URL": database_url(connection.settings_dict),
        "AZURE_OPENAI_ENDPOINT": sim.url, "AZURE_OPENAI_API_KEY": "sim-key", "AZURE_OPENAI_DEPLOYMENT": "gpt-realtime",
        "AZURE_OPENAI_API_VERSION": "", "CACHE_KEY_PREFIX": f"test-{uuid.uuid4().hex[:12]}",
    })


def _earlier_audio(user, *, ms: int) -> None:
    """Audio the user already spoke today, in the ledger (the counters are seeded from it)."""
    from conversations.models import Conversation, Turn

    conversation = Conversation.objects.create(user=user, provider="azure", deployment="gpt-realtime", dialect="ga",
                                               status=Conversation.Status.ENDED)
    Turn.objects.create(conversation=conversation, role="user", position=0, item_id="earlier", text="Hi", audio_ms=ms)


def test_a_start_over_the_daily_audio_limit_says_why_and_when_it_resets_and_keeps_start_disabled(
        account, open_browser, tmp_path):
    from conversations.models import UserLimits

    from .browser_support import simulator_thread

    UserLimits.objects.create(user=account, audio_minutes_per_day="1")
    _earlier_audio(account, ms=61_000)
    with simulator_thread(api_key="sim-key", strict=True) as sim, _serve(sim) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        b.login()
        b.page.click("#start")
        b.page.wait_for_selector("#error >> text=You have reached your daily audio limit.", timeout=15_000)
        words = b.page.text_content("#error")
        assert "It resets " in words and "you can press Start again then" in words
        when = words.split("It resets ")[1]
        assert re.match(r"(tomorrow at|at|in \d+ minutes?)\b", when), when  # a local clock time, or minutes near midnight
        assert b.page.is_disabled("#start")
        assert b.page.evaluate("window.voiceApp.limit.limit") == "audio_per_day"
        b.page.wait_for_timeout(1500)  # longer than the first reconnect would wait
        states = b.page.evaluate("window.voiceApp.states")
        assert "reconnecting" not in states and states[-1] == "error"
        assert len(sim.sessions) == 0  # refused before the voice service was asked


def test_the_meter_follows_each_reply_warns_at_80_percent_and_the_limit_ends_the_conversation_after_the_reply(
        account, open_browser, tmp_path):
    from conversations.models import UserLimits

    from .browser_support import simulator_thread

    # 30 s a day, 23 s used: a reply of a few seconds passes 80%, a few more reach 100%.
    UserLimits.objects.create(user=account, audio_minutes_per_day="0.5")
    _earlier_audio(account, ms=23_000)
    with simulator_thread(api_key="sim-key", strict=True) as sim, _serve(sim) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        b.login()
        b.start()
        audio_row = '#usage-meter [data-dimension="audio_per_day"]'
        b.page.wait_for_selector("#usage-meter:not([hidden])")
        before = b.page.text_content(f"{audio_row} .usage-text")
        assert before == "Audio today: 0.4 min of 0.5 min"
        assert b.page.text_content('#usage-meter [data-dimension="cost_per_day"] .usage-text').endswith("(no limit)")
        assert b.page.is_hidden('#usage-meter [data-dimension="cost_per_day"] meter')

        for n in range(1, 6):
            b.page.fill("#text-input", LONG)
            b.page.press("#text-input", "Enter")
            b.page.wait_for_function(f"() => (window.voiceApp.stats.messages.usage || 0) >= {n}"
                                     " || window.voiceApp.state === 'error'", timeout=30_000)
            if n == 1:
                after = b.page.text_content(f"{audio_row} .usage-text")
                assert after != before and after.endswith("of 0.5 min")  # the meter moved after the reply
                assert float(b.page.get_attribute(f"{audio_row} meter", "value") or 0) == pytest.approx(
                    b.page.evaluate("window.voiceApp.usage.today.audio_minutes") / 0.5, abs=0.01)
            if b.page.evaluate("window.voiceApp.stats.messages.limit_warning || 0"):
                break
        b.page.wait_for_selector("#notice >> text=80%", timeout=10_000)

        for _ in range(5):
            if b.page.evaluate("window.voiceApp.state") == "error":
                break
            b.page.wait_for_function("() => !document.querySelector('#text-input').disabled || window.voiceApp.state === 'error'")
            if b.page.evaluate("window.voiceApp.state") == "error":
                break
            sent = b.page.evaluate("window.voiceApp.stats.messages.usage || 0")
            try:
                b.page.fill("#text-input", LONG, timeout=3_000)
                b.page.press("#text-input", "Enter", timeout=3_000)
            except PlaywrightTimeout:
                continue  # the limit ended the conversation just now (the box is disabled): the check above sees it
            b.page.wait_for_function(f"() => (window.voiceApp.stats.messages.usage || 0) > {sent}"
                                     " || window.voiceApp.state === 'error'", timeout=30_000)
        b.page.wait_for_selector("#error >> text=You have reached your daily audio limit.", timeout=15_000)
        assert b.page.is_disabled("#start")
        messages = b.page.evaluate("window.voiceApp.stats.messages")
        assert messages["response_done"] == messages["usage"]  # every reply finished, none cut by the limit
        assert "reconnecting" not in b.page.evaluate("window.voiceApp.states")
        assert b.page.text_content(f"{audio_row} .usage-text").endswith("of 0.5 min")
        assert b.page.get_attribute(audio_row, "data-high") == "true"
