"""A real Chromium, whose microphone is an espeak-ng WAV, holds a spoken conversation end to end."""
import pytest

from conversations.models import Conversation, Turn, Usage

from .browser_support import ARTIFACTS, CHROMIUM, browser_available, chromium_args, app_server, database_url, speech_wav

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not browser_available(), reason="needs chromium, espeak-ng and sox (bash .ci/run installs them)"),
]

PASSWORD = "correct horse battery"


@pytest.fixture
def server(django_user_model, tmp_path):
    """The app's server on the test database with no endpoint configured, so the built-in simulator answers."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the browser test shares the database with a server process: PostgreSQL only")
    django_user_model.objects.create_user(username="ada", password=PASSWORD)
    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "AZURE_OPENAI_ENDPOINT": "",
        "OPENAI_API_KEY": "",
        "AZURE_OPENAI_API_VERSION": "",
        "AZURE_OPENAI_DEPLOYMENT": "gpt-realtime",
    }
    with app_server(env) as url:
        yield url


def test_a_spoken_turn_in_chromium_is_heard_transcribed_answered_and_stored(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    wav = speech_wav(tmp_path / "hello.wav", "Hello there. Can you hear me?")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(wav))
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        try:
            page.goto(f"{server}/")
            page.fill("#id_username", "ada")
            page.fill("#id_password", PASSWORD)
            page.click("#login-form [type=submit]")
            expect(page.locator("body")).to_contain_text("simulator")

            page.wait_for_function("() => window.voiceApp !== undefined")
            page.click("#start")
            # The state moves on as soon as the simulator hears the WAV, so wait for `ready` itself.
            page.wait_for_function("() => window.voiceApp.stats.messages.ready === 1", timeout=15_000)
            user_bubble = page.locator('#transcript .bubble[data-role="user"]').first
            assistant_bubble = page.locator('#transcript .bubble[data-role="assistant"]').first
            expect(user_bubble).not_to_have_text("", timeout=30_000)
            expect(assistant_bubble).to_contain_text("I heard you", timeout=30_000)
            page.wait_for_function("() => window.voiceApp.stats.framesPlayed > 24000", timeout=30_000)
            page.wait_for_function("() => window.voiceApp.stats.messages.response_done >= 1", timeout=30_000)
            stats = page.evaluate("window.voiceApp.stats")
            conversation_id = page.evaluate("window.voiceApp.conversationId")
            page.screenshot(path=str(ARTIFACTS / "talk-after-turn.png"))
            page.click("#stop")
            expect(page.locator("#status")).to_have_attribute("data-state", "idle", timeout=10_000)
        finally:
            browser.close()
    assert not problems, problems
    assert stats["framesCaptured"] > 0 and stats["bytesSent"] > 0

    conversation = _wait_for_end(conversation_id)
    turns = list(Turn.objects.filter(conversation=conversation).order_by("position"))
    assert [t.role for t in turns[:2]] == ["user", "assistant"]
    assert turns[0].text and turns[0].audio_ms > 500
    assert turns[1].text.startswith("I heard you") and turns[1].audio_ms > 0
    assert Usage.objects.filter(conversation=conversation, output_audio_tokens__gt=0).exists()
    assert conversation.provider == "simulator"


def _wait_for_end(conversation_id: str) -> Conversation:
    """The server flushes the conversation right after the socket closes: wait briefly for it."""
    import time

    deadline = time.monotonic() + 10
    while True:
        conversation = Conversation.objects.get(pk=conversation_id)
        if conversation.ended_at or time.monotonic() > deadline:
            return conversation
        time.sleep(0.2)
