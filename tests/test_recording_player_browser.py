"""In a real Chromium: a conversation's recording plays, seeks to a line and follows it, and goes with the conversation."""
import pytest

from conversations.models import RecordingChunk, Turn

from .browser_support import app_server, browser_available, database_url, wait_until
from .history import stored
from .recordings import recorded

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not browser_available(), reason="needs chromium, espeak-ng and sox (bash .ci/run installs them)"),
]

PLACES_MS = [0, 2500, 5000, 7500]


def serve_recordings():
    """The app's server on the test database, reading recordings from the test process's folder."""
    from django.db import connection

    location = RecordingChunk._meta.get_field("file").storage.location
    return app_server({"DATABASE_URL": database_url(connection.settings_dict), "TEST_RECORDINGS_LOCATION": location})


def audio(page, expression: str):
    """Evaluate `expression` in the page with `audio` bound to the recording's element."""
    return page.evaluate(f"(audio => {expression})(document.getElementById('recording-audio'))")


def playing_lines(page) -> list[int]:
    """The 1-based positions of the transcript lines marked as playing (class and aria-current)."""
    return page.evaluate("""[...document.querySelectorAll('.dialogue .line')]
        .map((line, i) => line.classList.contains('playing') && line.getAttribute('aria-current') === 'true' ? i + 1 : 0)
        .filter(Boolean)""")


def test_the_recording_plays_from_a_line_follows_it_and_is_deleted_with_the_conversation(account, open_browser):
    lines = [("user", "First"), ("assistant", "Second"), ("user", "Third"), ("assistant", "Fourth")]
    conversation = stored(account, lines, title="Recorded talk")
    for position, ms in enumerate(PLACES_MS):
        Turn.objects.filter(conversation=conversation, position=position).update(recording_ms=ms)
    _, chunks = recorded(conversation, 10.0, parts=3)
    expected_s = sum(c.duration_ms for c in chunks) / 1000
    storage, names = chunks[0].file.storage, [c.file.name for c in chunks]
    recording_url = f"/history/{conversation.pk}/recording.mp3"

    with serve_recordings() as url:
        b = open_browser(url, None)
        b.login()
        statuses: list[int] = []
        b.page.on("response", lambda r: statuses.append(r.status) if r.url.endswith("recording.mp3") else None)
        b.page.goto(f"{url}/history/{conversation.pk}/")
        b.page.wait_for_function("() => document.getElementById('recording-audio').readyState >= 1", timeout=10_000)
        assert abs(audio(b.page, "audio.duration") - expected_s) < 0.2
        assert playing_lines(b.page) == []

        # The second line's time seeks there and plays; that line is marked.
        b.page.evaluate("""document.getElementById('recording-audio')
            .addEventListener('seeked', (e) => { window.seekedAt ??= e.target.currentTime; })""")
        b.page.click(".dialogue .line:nth-child(2) .seek")
        b.page.wait_for_function("() => window.seekedAt !== undefined", timeout=10_000)
        assert abs(b.page.evaluate("window.seekedAt") - PLACES_MS[1] / 1000) < 0.3
        b.page.wait_for_function("() => !document.getElementById('recording-audio').paused", timeout=5_000)
        assert playing_lines(b.page) == [2]

        # Playing on past the third line's start moves the mark to it.
        audio(b.page, "audio.currentTime = 4.7")
        b.page.wait_for_function("() => document.getElementById('recording-audio').currentTime > 5.1", timeout=10_000)
        b.page.wait_for_function("() => document.querySelector('.dialogue .line:nth-child(3)').classList.contains('playing')",
                                 timeout=5_000)
        assert playing_lines(b.page) == [3]
        assert 206 in statuses  # Chromium asked for byte ranges, and got them

        # Deleting the conversation (after its confirmation) takes the recording with it.
        b.page.click("text=Delete…")
        b.page.wait_for_selector("text=Its recording is deleted with it.")
        b.page.click("main form [type=submit]")
        b.page.wait_for_url(f"{url}/history/")
        assert b.page.request.get(f"{url}{recording_url}").status == 404
        wait_until(lambda: not any(storage.exists(name) for name in names), timeout=10)
