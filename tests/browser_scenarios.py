"""What the Chromium, Firefox and WebKit tests check alike, written once: each takes a logged-in browser (any of
tests/browser_fixtures.Browser, tests/firefox_support.Firefox, tests/webkit_support.WebKit) and the simulator."""
from __future__ import annotations

from typing import Any

from .browser_support import wait_until


def wait_for_a_spoken_turn_answered(b: Any) -> tuple[dict, list[dict]]:
    """Wait until the user's speech is written down and answered aloud; returns the page's stats and transcript."""
    b.page.wait_for_function(
        "() => window.voiceApp.transcriptItems().some(i => i.role === 'user' && i.text)"
        " && (window.voiceApp.stats.messages.response_done || 0) >= 1", timeout=30_000)
    b.page.wait_for_function("() => window.voiceApp.stats.framesPlayed > 0", timeout=15_000)
    return b.page.evaluate("window.voiceApp.stats"), b.page.evaluate("window.voiceApp.transcriptItems()")


def assert_barge_in_truncates_the_reply_at_what_was_played(b: Any, sim: Any) -> None:
    """Speech over a playing reply cuts it upstream at what the listener heard, never past what was sent."""
    truncate = wait_until(lambda: [e for e in sim.received if e["type"] == "conversation.item.truncate"], timeout=30)[0]
    b.page.wait_for_function("() => window.voiceApp.lastTruncate", timeout=5_000)
    played = b.page.evaluate("window.voiceApp.lastTruncate")
    sent_ms = next(i.audio_ms for i in sim.sessions[0].session.items if i.id == truncate["item_id"])
    assert played["itemId"] == truncate["item_id"]
    assert 0 < truncate["audio_end_ms"] <= played["playedMs"] + 1
    assert truncate["audio_end_ms"] <= sent_ms
    b.page.wait_for_selector(f'#transcript .bubble.interrupted[data-item-id="{truncate["item_id"]}"]', timeout=10_000)
    assert sim.validation_errors == []
    assert b.page.is_hidden("#error")
    assert b.errors == []


def run_the_pre_flight_check(b: Any) -> tuple[dict[str, str], str]:
    """Open the check page, run every check and return ({check: result}, the results' text)."""
    b.page.goto("/check/")
    b.page.wait_for_function("() => !document.getElementById('run-checks').disabled")
    b.page.click("#run-checks")
    b.page.wait_for_function(
        "() => [...document.querySelectorAll('#check-results li[data-check]')]"
        ".every(li => ['pass', 'warn', 'fail'].includes(li.dataset.result))", timeout=30_000)
    results = b.page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#check-results li[data-check]')]"
        ".map(li => [li.dataset.check, li.dataset.result]))")
    return results, b.page.evaluate("document.getElementById('check-results').innerText")


def appends(sim: Any) -> list[dict]:
    """The audio the page sent upstream, as the simulator received it."""
    return [e for e in sim.received if e["type"] == "input_audio_buffer.append"]


def assert_push_to_talk_sends_audio_only_while_held(b: Any, sim: Any) -> None:
    """In push-to-talk the speaking microphone reaches the service only while the button is held, as one turn."""
    assert b.page.is_visible("#ptt")
    b.page.wait_for_timeout(1500)  # the microphone is hearing speech, but the button is up
    assert appends(sim) == []
    b.hold("#ptt")
    b.page.wait_for_timeout(2000)
    b.release()
    wait_until(lambda: [e for e in sim.received if e["type"] == "response.create"])
    kinds = [e["type"] for e in sim.received if e["type"] != "session.update"]
    first_append = kinds.index("input_audio_buffer.append")
    assert "input_audio_buffer.clear" in kinds[:first_append]
    assert kinds[-2:] == ["input_audio_buffer.commit", "response.create"]
    held_ms = sum(e["audio"]["bytes"] for e in appends(sim)) / 48
    assert 1000 < held_ms < 2600  # about the 2 s held; headless audio clocks run a little slow
    b.page.wait_for_function(
        "() => window.voiceApp.transcriptItems().some(i => i.role === 'assistant' && i.text.includes('I heard you'))",
        timeout=20_000)
    assert b.errors == []
