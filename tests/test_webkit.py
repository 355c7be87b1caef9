"""The talk page and the pre-flight check in WebKit (WebKitGTK's MiniBrowser, Safari's engine), with a PulseAudio
microphone: a smoke test driven over classic WebDriver by Debian's WebKitWebDriver (tests/webkit_support.py).

    apt-get install webkit2gtk-driver xvfb pulseaudio gstreamer1.0-pulseaudio espeak-ng sox
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/voiceapp .venv/bin/python -m pytest tests/test_webkit.py
"""
import json

import pytest

from .browser_fixtures import serve
from .browser_scenarios import (
    assert_barge_in_truncates_the_reply_at_what_was_played,
    run_the_pre_flight_check,
    wait_for_a_spoken_turn_answered,
)
from .browser_support import ARTIFACTS, barge_in_wav, simulator_thread, speech_wav
from .webkit_support import webkit_available

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not webkit_available(), reason="needs webkit2gtk-driver (WebKitWebDriver and MiniBrowser), "
                       "xvfb, pulseaudio, gstreamer1.0-pulseaudio, espeak-ng and sox (bash .ci/run installs them)"),
]


def test_the_talk_page_in_webkit_captures_the_microphone_and_plays_the_reply(account, open_webkit, tmp_path):
    wav = speech_wav(tmp_path / "hello.wav", "Hello there, how are you today?", lead_silence_s=1.0, tail_silence_s=6.0)
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_webkit(url, wav)
        b.login()
        # The page's own feature check passed: Start is enabled and no pre-flight message is shown.
        assert b.page.evaluate("() => !document.getElementById('start').disabled")
        assert b.page.is_hidden("#error")
        b.start()
        b.page.wait_for_function("() => window.voiceApp.stats.bytesSent > 48000", timeout=15_000)  # a second sent
        first = b.page.evaluate("window.voiceApp.stats")
        b.page.wait_for_function(f"() => window.voiceApp.stats.framesCaptured > {first['framesCaptured'] + 10}",
                                 timeout=5_000)  # and it keeps coming
        stats, items = wait_for_a_spoken_turn_answered(b)
        b.page.screenshot(str(ARTIFACTS / "webkit-talk.png"))
        # What this WebKit did, for the notes and for a failure's diagnosis: its rate, the track as applied.
        (ARTIFACTS / "webkit-talk.json").write_text(json.dumps({"version": b.version, "stats": stats, "audio": b.page.evaluate(
            "() => ({userAgent: navigator.userAgent, hasWebkitAudioContext: typeof webkitAudioContext !== 'undefined'})")},
            indent=1))
        assert stats["bytesSent"] > first["bytesSent"]
        assert [i["role"] for i in items[:2]] == ["user", "assistant"] and all(i["text"] for i in items[:2])
        assert b.page.is_hidden("#error")
        assert b.errors == []
        b.page.click("#stop")
        assert sim.validation_errors == []


def test_barge_in_in_webkit_truncates_the_reply_at_what_was_played(account, open_webkit, tmp_path):
    # WebKit reads AudioContext.outputLatency (0 in WebKitGTK) where Firefox may not: this is the path it takes.
    wav = barge_in_wav(tmp_path)
    with simulator_thread(api_key="sim-key", strict=True, realtime_pacing=True) as sim, serve(sim) as url:
        b = open_webkit(url, wav)
        b.login()
        b.start()
        assert_barge_in_truncates_the_reply_at_what_was_played(b, sim)


def test_the_pre_flight_check_passes_in_webkit(account, open_webkit, tmp_path):
    wav = speech_wav(tmp_path / "check.wav", "Testing, testing, one two three.", lead_silence_s=0.2, tail_silence_s=0.5)
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_webkit(url, wav)
        b.login()
        results, text = run_the_pre_flight_check(b)
        b.page.screenshot(str(ARTIFACTS / "webkit-check.png"))
        (ARTIFACTS / "webkit-check.json").write_text(json.dumps({"version": b.version, "results": results, "text": text}))
        assert results["mic"] == "pass" and results["rate"] == "pass", text
        assert results["level"] in {"pass", "warn"}, text
        assert results["socket"] == "pass" and results["upstream"] == "pass", text
        assert int(b.page.evaluate("document.getElementById('check').dataset.listenedMs")) >= 5000
        assert b.errors == []
