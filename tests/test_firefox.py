"""The voice experience in a real Firefox ESR (Debian's) with a PulseAudio microphone: the twins of the Chromium
tests (test_browser_talk.py, test_browser_experience.py), driven over WebDriver BiDi (tests/firefox_support.py).

`bash .ci/run` installs what they need (firefox-esr, pulseaudio, and puppeteer-core with `npm ci --prefix
tests/firefox`, which `make test` runs too).
"""
import pytest

from conversations import services
from conversations.models import Turn
from conversations.realtime.options import Preferences

from .browser_fixtures import db, serve, silent_wav
from .browser_scenarios import (
    assert_barge_in_truncates_the_reply_at_what_was_played,
    assert_push_to_talk_sends_audio_only_while_held,
    run_the_pre_flight_check,
    wait_for_a_spoken_turn_answered,
)
from .browser_support import ARTIFACTS, barge_in_wav, simulator_thread, speech_wav, wait_until
from .firefox_support import firefox_available

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not firefox_available(), reason="needs firefox-esr, pulseaudio, espeak-ng, sox and "
                       "tests/firefox's puppeteer-core (bash .ci/run installs them)"),
]


def test_a_spoken_conversation_in_firefox_is_heard_answered_aloud_shown_and_stored(account, open_firefox, tmp_path):
    wav = speech_wav(tmp_path / "hello.wav", "Hello there, how are you today?", lead_silence_s=1.0, tail_silence_s=6.0)
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_firefox(url, wav)
        b.login()
        b.start()
        stats, items = wait_for_a_spoken_turn_answered(b)
        conversation_id = b.page.evaluate("window.voiceApp.conversationId")
        b.page.screenshot(str(ARTIFACTS / "firefox-talk.png"))
        assert stats["framesCaptured"] > 25 and stats["bytesSent"] > 48_000  # more than a second of microphone
        assert [i["role"] for i in items[:2]] == ["user", "assistant"] and all(i["text"] for i in items[:2])
        assert b.page.is_hidden("#error")
        assert b.errors == []
        b.page.click("#stop")
        assert sim.validation_errors == []

    stored = wait_until(lambda: db(lambda: list(Turn.objects.filter(conversation_id=conversation_id)
                                                 .order_by("position"))) or None)
    assert [(t.role, t.text) for t in stored[:2]] == [(i["role"], i["text"]) for i in items[:2]]
    assert stored[0].audio_ms > 1000


def test_barge_in_in_firefox_truncates_the_reply_at_what_was_played(account, open_firefox, tmp_path):
    with simulator_thread(api_key="sim-key", strict=True, realtime_pacing=True) as sim, serve(sim) as url:
        b = open_firefox(url, barge_in_wav(tmp_path))
        b.login()
        b.start()
        assert_barge_in_truncates_the_reply_at_what_was_played(b, sim)


def test_push_to_talk_in_firefox_sends_audio_only_while_the_button_is_held(account, open_firefox, tmp_path):
    services.preferences_update(user=account, preferences=Preferences(turn_detection="push_to_talk"))
    wav = speech_wav(tmp_path / "talk.wav", "Testing push to talk, one two three four five.", lead_silence_s=0.2, tail_silence_s=0.2)
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_firefox(url, wav)
        b.login()
        b.start()
        assert_push_to_talk_sends_audio_only_while_held(b, sim)


def test_a_typed_message_in_firefox_is_answered_aloud_and_transcribed(account, open_firefox, tmp_path):
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_firefox(url, silent_wav(tmp_path / "quiet.wav"))
        b.login()
        b.start()
        b.page.fill("#text-input", "What is the weather like?")
        b.page.press("#text-input", "Enter")
        b.page.wait_for_function(
            "() => window.voiceApp.transcriptItems().some(i => i.role === 'user' && i.text === 'What is the weather like?')"
            " && window.voiceApp.transcriptItems().some(i => i.role === 'assistant' && i.text.includes('You wrote'))",
            timeout=20_000)
        b.page.wait_for_function("() => window.voiceApp.stats.framesPlayed > 12000", timeout=20_000)
        created = [e for e in sim.received if e["type"] == "conversation.item.create"]
        assert created[0]["item"]["content"] == [{"type": "input_text", "text": "What is the weather like?"}]
        assert b.page.input_value("#text-input") == ""
        assert b.errors == []


def test_the_level_meter_in_firefox_moves_while_the_microphone_speaks(account, open_firefox, tmp_path):
    wav = speech_wav(tmp_path / "level.wav", "Can you see my voice on the meter?", lead_silence_s=0.3, tail_silence_s=0.5)
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_firefox(url, wav)
        b.login()
        b.start()
        levels = []
        for _ in range(30):
            levels.append(b.page.evaluate("window.voiceApp.level"))
            b.page.wait_for_timeout(100)
        assert max(levels) > 0.01 and min(levels) < max(levels), levels
        assert b.page.is_visible("#level")


def test_the_pre_flight_check_in_firefox_reports_every_check(account, open_firefox, tmp_path):
    wav = speech_wav(tmp_path / "check.wav", "Testing, testing, one two three.", lead_silence_s=0.2, tail_silence_s=0.5)
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_firefox(url, wav)
        b.login()
        results, text = run_the_pre_flight_check(b)
        b.page.screenshot(str(ARTIFACTS / "firefox-check.png"))
        assert set(results) == {"mic", "level", "rate", "socket", "upstream", "echo"}
        assert results["mic"] == "pass" and results["socket"] == "pass" and results["rate"] == "pass", text
        assert results["upstream"] == "pass" and results["level"] == "pass", text
        assert len(sim.sessions) == 1
        assert "24000 Hz" in text
        assert b.errors == []


def test_switching_microphones_in_firefox_mid_conversation_and_unplugging_the_chosen_one(account, open_firefox, tmp_path):
    wav = speech_wav(tmp_path / "talk.wav", "One two three four five six seven eight nine ten.", lead_silence_s=0.1, tail_silence_s=0.1)
    level, frames = "window.voiceApp.level", "window.voiceApp.stats.framesCaptured"
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_firefox(url, wav)
        quiet = b.microphone.plug_microphone("QuietMic")  # hears nothing
        b.login()
        b.start()
        b.page.wait_for_function(f"() => {level} > 0.01", timeout=10_000)  # the default microphone speaks
        b.page.wait_for_function("() => [...document.querySelectorAll('#mic-select option')]"
                                 ".some(o => o.textContent.includes('QuietMic'))", timeout=10_000)
        quiet_id = b.page.evaluate("[...document.querySelectorAll('#mic-select option')]"
                                   ".find(o => o.textContent.includes('QuietMic')).value")
        b.page.wait_for_function(f"() => {frames} > 50", timeout=10_000)  # two seconds into the conversation
        b.page.select_option("#mic-select", quiet_id)
        # Firefox pauses every microphone of the page while it opens another (about a second here); then the
        # chosen one is heard.
        b.page.wait_for_function(f"() => window.voiceApp.microphoneSettings().deviceId === {quiet_id!r}", timeout=10_000)
        before = b.page.evaluate(frames)
        b.page.wait_for_function(f"() => {frames} > {before + 10}", timeout=5_000)
        quiet_levels = []
        for _ in range(10):
            quiet_levels.append(b.page.evaluate(level))
            b.page.wait_for_timeout(100)
        assert max(quiet_levels) < 0.001, quiet_levels  # the chosen microphone is the one heard

        b.microphone.unplug(quiet)
        b.page.wait_for_function(f"() => {level} > 0.01", timeout=15_000)  # back on the default microphone
        assert "disconnected" in b.page.inner_text("#notice")
        assert b.page.input_value("#mic-select") == ""
        assert b.page.is_hidden("#error")
        assert b.errors == []
        assert sim.validation_errors == []
