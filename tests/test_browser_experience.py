"""The full voice experience in a real Chromium: push-to-talk, typing, settings, barge-in, meter, languages."""
import pytest
from django.utils import translation

from conversations import services
from conversations.realtime.options import Preferences

from .browser_fixtures import serve, silent_wav
from .browser_scenarios import (
    appends,
    assert_barge_in_truncates_the_reply_at_what_was_played,
    assert_push_to_talk_sends_audio_only_while_held,
)
from .browser_support import ARTIFACTS, barge_in_wav, browser_available, simulator_thread, speech_wav

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not browser_available(), reason="needs chromium, espeak-ng and sox (bash .ci/run installs them)"),
]

def test_push_to_talk_sends_audio_only_while_the_button_is_held(account, open_browser, tmp_path):
    services.preferences_update(user=account, preferences=Preferences(turn_detection="push_to_talk"))
    wav = speech_wav(tmp_path / "talk.wav", "Testing push to talk, one two three four five.", lead_silence_s=0.2, tail_silence_s=0.2)
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, wav)
        b.login()
        b.start()
        assert_push_to_talk_sends_audio_only_while_held(b, sim)


def test_a_typed_message_is_answered_aloud_and_transcribed(account, open_browser, tmp_path):
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        b.login()
        b.start()
        b.page.fill("#text-input", "What is the weather like?")
        b.page.press("#text-input", "Enter")
        b.page.wait_for_selector('#transcript .bubble[data-role="user"] >> text=What is the weather like?')
        b.page.wait_for_selector('#transcript .bubble[data-role="assistant"] >> text=You wrote', timeout=20_000)
        b.page.wait_for_function("() => window.voiceApp.stats.framesPlayed > 12000", timeout=20_000)
        created = [e for e in sim.received if e["type"] == "conversation.item.create"]
        assert created[0]["item"]["content"] == [{"type": "input_text", "text": "What is the weather like?"}]
        assert b.page.input_value("#text-input") == ""


@pytest.mark.parametrize("dialect", ["ga", "preview"])
def test_settings_saved_in_the_panel_reach_upstream_in_the_dialect(account, open_browser, tmp_path, dialect):
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim, dialect) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        b.login()
        b.start()
        b.page.click("#settings-panel summary")
        b.page.select_option("#settings-form [name=voice]", "verse")
        b.page.fill("#settings-form [name=instructions]", "Speak like a ship's captain.")
        b.page.select_option("#settings-form [name=language]", "es")
        b.page.click("#settings-form [type=submit]")
        b.page.wait_for_function("() => (window.voiceApp.stats.messages.settings_applied || 0) >= 1", timeout=10_000)
        session = [e for e in sim.received if e["type"] == "session.update"][-1]["session"]
        if dialect == "ga":
            assert session["type"] == "realtime"
            assert session["audio"]["output"]["voice"] == "verse"
            assert session["audio"]["input"]["transcription"]["language"] == "es"
        else:
            assert "type" not in session and "audio" not in session
            assert session["voice"] == "verse"
            assert session["input_audio_transcription"]["language"] == "es"
        assert session["instructions"].startswith("Speak like a ship's captain.")
        assert session["instructions"].endswith("Always answer in Spanish.")
        assert sim.validation_errors == []


def test_a_bad_setting_gets_a_message_next_to_its_field(account, open_browser, tmp_path):
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        b.login()
        b.page.click("#settings-panel summary")
        b.page.fill("#settings-form [name=speed]", "9")
        b.page.click("#settings-form [type=submit]")
        field = b.page.locator('#settings-form [data-field="speed"]')
        field.get_by_text("less than or equal to 1.5").wait_for(timeout=5_000)
        assert b.page.input_value("#settings-form [name=speed]") == "9"


def test_barge_in_truncates_the_reply_at_what_was_played(account, open_browser, tmp_path):
    wav = barge_in_wav(tmp_path)
    with simulator_thread(api_key="sim-key", strict=True, realtime_pacing=True) as sim, serve(sim) as url:
        b = open_browser(url, wav)
        b.login()
        b.start()
        assert_barge_in_truncates_the_reply_at_what_was_played(b, sim)


def test_the_level_meter_moves_while_the_microphone_speaks(account, open_browser, tmp_path):
    wav = speech_wav(tmp_path / "level.wav", "Can you see my voice on the meter?", lead_silence_s=0.3, tail_silence_s=0.5)
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, wav)
        b.login()
        b.start()
        levels = []
        for _ in range(30):
            levels.append(b.page.evaluate("window.voiceApp.level"))
            b.page.wait_for_timeout(100)
        assert max(levels) > 0.01 and min(levels) < max(levels)
        meter = b.page.locator("#level")
        assert meter.is_visible()


def test_the_interface_speaks_the_browsers_language_and_can_switch(account, open_browser, tmp_path):
    with translation.override("es"):
        start_es = translation.gettext("Start")
    with translation.override("de"):
        start_de = translation.gettext("Start")
    assert start_es != "Start" and start_de != "Start"
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"), locale="es-ES")
        b.login()
        assert b.page.get_attribute("html", "lang") == "es"
        assert b.page.inner_text("#start").strip() == start_es
        b.page.select_option("#language-select", "de")
        b.page.wait_for_function("() => document.documentElement.lang === 'de' && window.voiceApp !== undefined", timeout=10_000)
        assert b.page.inner_text("#start").strip() == start_de
        assert b.page.is_enabled("#start")
        b.page.screenshot(path=str(ARTIFACTS / "talk-de.png"))


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
def test_the_talk_page_fits_desktop_and_phone(account, open_browser, tmp_path, size):
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"), viewport=size)
        b.login()
        b.start()
        b.page.fill("#text-input", "Hello from a small screen")
        b.page.press("#text-input", "Enter")
        b.page.wait_for_selector('#transcript .bubble[data-role="assistant"] >> text=You wrote', timeout=20_000)
        assert b.page.evaluate("document.documentElement.scrollWidth") <= size[0]
        b.page.screenshot(path=str(ARTIFACTS / f"talk-{size[0]}x{size[1]}.png"), full_page=True)


def _run_checks(b) -> dict[str, str]:
    """Open the check page from the talk page, run every check and return {check: result}."""
    b.page.click("text=Check my setup")
    b.page.click("#run-checks")
    try:
        b.page.wait_for_function(
            "() => [...document.querySelectorAll('#check-results li[data-check]')]"
            ".every(li => ['pass', 'warn', 'fail'].includes(li.dataset.result))",
            timeout=30_000,
        )
    except Exception as exc:
        raise AssertionError(f"checks unfinished: {b.page.inner_text('#check-results')!r} {b.errors}") from exc
    rows = b.page.locator("#check-results li[data-check]")
    return {rows.nth(i).get_attribute("data-check"): rows.nth(i).get_attribute("data-result") for i in range(rows.count())}


def test_the_pre_flight_check_reports_every_check(account, open_browser, tmp_path):
    wav = speech_wav(tmp_path / "check.wav", "Testing, testing, one two three.", lead_silence_s=0.2, tail_silence_s=0.5)
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, wav)
        b.login()
        results = _run_checks(b)
        assert set(results) == {"mic", "level", "rate", "socket", "upstream", "echo"}
        assert results["mic"] == "pass" and results["socket"] == "pass" and results["rate"] == "pass"
        assert results["upstream"] == "pass"
        assert len(sim.sessions) == 1  # the voice service check really opened a session
        assert results["level"] in {"pass", "warn"}
        # It listened for the five seconds the page promises, counted in captured audio.
        assert int(b.page.get_attribute("#check", "data-listened-ms")) >= 5000
        text = b.page.inner_text("#check-results")
        assert "24000 Hz" in text and "batches" not in text and "bytes" not in text
        if results["level"] == "pass":
            assert "Your microphone works: we heard you clearly" in text
        for size in [(1280, 800), (390, 844)]:
            b.page.set_viewport_size({"width": size[0], "height": size[1]})
            b.page.screenshot(path=str(ARTIFACTS / f"check-{size[0]}x{size[1]}.png"), full_page=True)


def test_the_pre_flight_check_says_when_the_voice_service_refuses_the_app(account, open_browser, tmp_path):
    with simulator_thread(api_key="a-different-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        b.login()
        results = _run_checks(b)
        assert results["socket"] == "pass"  # the server is reachable: only the service behind it refuses
        assert results["upstream"] == "fail"
        row = b.page.inner_text('#check-results li[data-check="upstream"]')
        assert "The voice service is not available right now" in row and "AZURE" not in row
        assert "Tell the person who runs this app" in row
        assert results["level"] == "fail"
        assert "We heard only silence" in b.page.inner_text('#check-results li[data-check="level"]')


def test_mute_sends_silence_instead_of_the_microphone(account, open_browser, tmp_path):
    wav = speech_wav(tmp_path / "mute.wav", "I am talking while muted, one two three four.", lead_silence_s=0.2, tail_silence_s=0.2)
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, wav)
        b.login()
        b.page.click("#mute")  # muted before the conversation starts
        b.start()
        b.page.wait_for_timeout(2500)
        assert b.page.get_attribute("#mute", "aria-pressed") == "true"
        assert len(appends(sim)) > 20  # frames keep flowing, so the service's VAD sees silence
        assert not [e for e in sim.received if e["type"] == "input_audio_buffer.commit"]
        assert b.messages("speech_started") == 0


def test_a_blocked_microphone_says_how_to_allow_it(account, open_browser, tmp_path):
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, None, fake_ui=False)
        b.context.clear_permissions()
        b.login()
        b.page.click("#start")
        b.page.wait_for_selector('#status[data-state="mic-blocked"]', timeout=10_000)
        assert "address bar" in b.page.inner_text("#status, #error")
        assert sim.sessions == []  # a blocked microphone never opens a conversation
