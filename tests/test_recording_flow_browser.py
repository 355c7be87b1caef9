"""In a real Chromium, the whole of issue 8's story: speak, type, stop, find, listen, seek, continue, delete."""
import json

import pytest

from .browser_support import browser_available, simulator_thread, speech_wav, wait_until
from .browser_fixtures import serve

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not browser_available(), reason="needs chromium, espeak-ng and sox (bash .ci/run installs them)"),
]

USER_BUBBLE = '#transcript .bubble[data-role="user"]'
ASSISTANT_BUBBLE = '#transcript .bubble[data-role="assistant"]'


def audio(page, expression: str):
    """Evaluate `expression` with `audio` bound to the conversation page's recording element."""
    return page.evaluate(f"(audio => {expression})(document.getElementById('recording-audio'))")


def test_a_spoken_and_typed_conversation_is_found_heard_from_a_line_continued_and_deleted(
    account, open_browser, tmp_path
):
    # One sentence, then a long quiet: Chromium loops the file, and the test is over before it speaks again.
    wav = speech_wav(tmp_path / "said.wav", "Good morning, I would like to talk about dinosaurs.",
                     lead_silence_s=1.0, tail_silence_s=40.0)
    with simulator_thread(api_key="sim-key", strict=True, realtime_pacing=True) as sim, serve(sim) as url:
        b = open_browser(url, wav)
        b.login()
        b.start()
        b.page.wait_for_selector("#recording-indicator:not([hidden])", timeout=5_000)  # the server said so
        b.page.wait_for_selector(USER_BUBBLE, timeout=30_000)  # the simulator's transcript: fixed words, not these
        wait_until(lambda: b.messages("response_done") >= 1, timeout=30)
        b.page.wait_for_timeout(1_500)  # the spoken reply plays out
        b.page.fill("#text-input", "Tell me about the quetzalcoatlus")
        b.page.press("#text-input", "Enter")
        wait_until(lambda: b.messages("response_done") >= 2, timeout=30)
        b.page.wait_for_timeout(2_500)
        b.page.click("#stop")
        b.page.wait_for_selector("#recording-indicator[hidden]", state="attached", timeout=5_000)

        # Found by the unusual word it was typed with.
        def found() -> bool:
            b.page.goto(f"{url}/history/?q=quetzalcoatlus")
            return b.page.locator(".history-excerpt mark >> text=quetzalcoatlus").count() > 0

        wait_until(found, timeout=20, interval=0.5)
        b.page.click(".history-title")
        conversation_url = b.page.url
        conversation_id = conversation_url.rstrip("/").rsplit("/", 1)[1]

        # Its recording plays, about as long as the conversation, and each line's time seeks there.
        def playable() -> bool:
            b.page.goto(conversation_url)
            return b.page.locator("#recording-audio").count() > 0

        wait_until(playable, timeout=20, interval=0.5)
        b.page.wait_for_function("() => document.getElementById('recording-audio').readyState >= 1", timeout=10_000)
        duration = audio(b.page, "audio.duration")
        assert 6 < duration < 60
        starts = b.page.eval_on_selector_all(".dialogue .line .seek", "els => els.map(e => +e.dataset.seekMs)")
        assert len(starts) >= 4 and starts == sorted(starts)
        b.page.evaluate("""document.getElementById('recording-audio')
            .addEventListener('seeked', (e) => { window.seekedAt ??= e.target.currentTime; })""")
        b.page.click(".dialogue .line:nth-child(3) .seek")  # the typed message
        b.page.wait_for_function("() => window.seekedAt !== undefined", timeout=10_000)
        assert abs(b.page.evaluate("window.seekedAt") - starts[2] / 1000) < 0.3
        b.page.wait_for_function("() => !document.getElementById('recording-audio').paused", timeout=5_000)
        # The marked line is the one playing: the typed message, or (it is short) the reply after it by now.
        b.page.wait_for_function("""() => {
            const audio = document.getElementById('recording-audio');
            const lines = [...document.querySelectorAll('.dialogue .line')];
            const marked = lines.findIndex((line) => line.getAttribute('aria-current') === 'true');
            const playing = lines.findLastIndex((line) => +line.querySelector('.seek').dataset.seekMs / 1000 <= audio.currentTime);
            return marked >= 2 && marked === playing && lines[marked].classList.contains('playing');
        }""", timeout=5_000)
        played_from = audio(b.page, "audio.currentTime")
        b.page.wait_for_function(f"() => document.getElementById('recording-audio').currentTime > {played_from + 0.5}",
                                 timeout=10_000)

        # Continue: the new session hears the earlier turns before it answers anything.
        b.page.click("text=Continue")
        b.page.wait_for_selector(f"{USER_BUBBLE} >> text=quetzalcoatlus")
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
        wait_until(lambda: b.messages("response_done") >= 1, timeout=30)
        b.page.wait_for_timeout(1_500)
        b.page.click("#stop")

        # The continued conversation's recording grew; then the conversation goes, recording and all.
        def longer() -> bool:
            b.page.goto(conversation_url)
            b.page.wait_for_function("() => document.getElementById('recording-audio').readyState >= 1", timeout=10_000)
            return audio(b.page, "audio.duration") > duration + 1

        wait_until(longer, timeout=20, interval=0.5)
        b.page.click("text=Delete…")
        b.page.wait_for_selector("text=Its recording is deleted with it.")
        b.page.click("main form [type=submit]")
        b.page.wait_for_url(f"{url}/history/")
        assert b.page.request.get(f"{url}/history/{conversation_id}/recording.mp3").status == 404
        assert b.page.request.get(conversation_url).status == 404
