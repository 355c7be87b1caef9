"""In a real Chromium: asked what it was told before, the assistant looks it up in the user's own past conversations."""
import datetime
import json

import pytest
from django.utils import timezone

from conversations.models import Turn

from .browser_fixtures import db, serve, silent_wav
from .browser_support import ARTIFACTS, browser_available, simulator_thread
from .history import stored

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not browser_available(), reason="needs chromium, espeak-ng and sox (bash .ci/run installs them)"),
]

QUESTION = "What did I tell you to remember about my boat?"
WORKING = "Looking through your past conversations…"
FOUND = "Found 1 earlier conversation mentioning “boat”."

# Records every text a tool line showed, so a lookup too quick to catch with a wait is still seen.
WATCH_TOOL_LINES = """() => {
  window.__toolTexts = [];
  new MutationObserver(() => {
    for (const line of document.querySelectorAll("#transcript .tool-line .text")) {
      if (window.__toolTexts.at(-1) !== line.textContent) window.__toolTexts.push(line.textContent);
    }
  }).observe(document.getElementById("transcript"), { childList: true, subtree: true, characterData: true });
}"""


def roles(b) -> list[str]:
    return [i["role"] for i in b.page.evaluate("window.voiceApp.transcriptItems()")]


@pytest.mark.parametrize("dialect", ["ga", "preview"])
def test_asked_what_it_was_told_the_assistant_looks_it_up_and_quotes_the_earlier_conversation(
        account, open_browser, django_user_model, tmp_path, dialect):
    last_week = timezone.now() - datetime.timedelta(days=6)
    stored(account, [("user", "Remember that my boat is called Seabird."), ("assistant", "I will remember that.")],
           started_at=last_week)
    grace = django_user_model.objects.create_user(username="grace", password="another horse battery")
    stored(grace, [("user", "Remember that my boat is called Kraken."), ("assistant", "Noted.")], started_at=last_week)

    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim, dialect) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        b.login()
        b.start()
        b.page.evaluate(WATCH_TOOL_LINES)
        b.page.fill("#text-input", QUESTION)
        b.page.press("#text-input", "Enter")

        line = b.page.locator('#transcript .tool-line[data-role="tool"]')
        line.wait_for(timeout=20_000)
        b.page.wait_for_selector('#transcript .tool-line[data-state="completed"]', timeout=20_000)
        assert line.inner_text().strip() == FOUND
        answer = b.page.locator('#transcript .bubble[data-role="assistant"]')
        answer.wait_for(timeout=20_000)
        b.page.wait_for_function(
            "() => window.voiceApp.transcriptItems().some(i => i.role === 'assistant' && i.text.includes('Seabird'))",
            timeout=20_000,
        )
        b.page.wait_for_function("() => window.voiceApp.stats.framesPlayed > 12000", timeout=20_000)  # heard, not only read
        assert b.page.evaluate("window.__toolTexts") == [WORKING, FOUND]  # the lookup, then what it found
        states = b.page.evaluate("window.voiceApp.states")
        assert "working" in states and states.index("working") < states.index("assistant-speaking")
        assert roles(b) == ["user", "tool", "assistant"]  # in the order the server gave
        [tool] = [i for i in b.page.evaluate("window.voiceApp.transcriptItems()") if i["role"] == "tool"]
        assert (tool["name"], tool["state"], tool["text"]) == ("recall", "completed", FOUND)
        transcript = b.page.inner_text("#transcript")
        assert "Kraken" not in transcript  # another user's conversation is never searched
        b.page.screenshot(path=str(ARTIFACTS / f"talk-tool-{dialect}.png"), full_page=True)

        conversation_id = b.page.evaluate("window.voiceApp.conversationId")
        b.page.click("#stop")
        b.page.wait_for_selector('#status[data-state="idle"]')
        turns = db(lambda: list(Turn.objects.filter(conversation_id=conversation_id).order_by("position")))
        assert [t.role for t in turns] == ["user", "tool", "assistant"]
        call = turns[1]
        assert (call.tool_name, call.status, call.tool_summary) == ("recall", "", FOUND)
        output = json.loads(call.tool_output)
        [match] = output["matches"]  # with its date, in the browser's time zone
        assert abs(datetime.date.fromisoformat(match["date"]) - last_week.date()) <= datetime.timedelta(days=1)
        assert "Seabird" in call.tool_output and "Kraken" not in call.tool_output
        assert not any("Kraken" in json.dumps(e) for e in sim.received)  # the model never saw it either

        # Reopened, the stored conversation shows the lookup in its place; continuing it keeps it there.
        b.page.goto(f"{url}/?conversation={conversation_id}")
        b.page.wait_for_function("() => window.voiceApp !== undefined")
        assert roles(b) == ["user", "tool", "assistant"]
        assert b.page.inner_text('#transcript .tool-line[data-state="completed"] .text') == FOUND
        b.start()
        b.page.wait_for_function("() => (window.voiceApp.stats.messages.history || 0) >= 1", timeout=10_000)
        assert roles(b) == ["user", "tool", "assistant"]
        assert b.page.locator("#transcript .tool-line").count() == 1


def test_markup_in_a_tools_words_is_shown_as_text_and_never_run(account, open_browser, tmp_path):
    from .tools_for_tests import HOSTILE_TEXT

    with simulator_thread(api_key="sim-key", strict=True) as sim, \
            serve(sim, REALTIME_TOOLS="tests.tools_for_tests.hostile_lookup") as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        b.login()
        b.start()
        b.page.evaluate(WATCH_TOOL_LINES)
        b.page.fill("#text-input", "Please do a hostile lookup.")
        b.page.press("#text-input", "Enter")
        b.page.wait_for_selector('#transcript .tool-line[data-state="completed"]', timeout=20_000)
        b.page.wait_for_selector('#transcript .bubble[data-role="assistant"]', timeout=20_000)
        assert b.page.evaluate("window.__toolTexts") == [HOSTILE_TEXT, f"Found {HOSTILE_TEXT}"]
        assert b.page.locator("#transcript img, #transcript script").count() == 0
        assert b.page.evaluate("window.__pwned") is None, "the payload ran"
        conversation_id = b.page.evaluate("window.voiceApp.conversationId")
        b.page.goto(f"{url}/?conversation={conversation_id}")  # the stored line, drawn by the server
        b.page.wait_for_function("() => window.voiceApp !== undefined")
        assert b.page.inner_text("#transcript .tool-line .text") == f"Found {HOSTILE_TEXT}"
        assert b.page.locator("#transcript img, #transcript script").count() == 0
        assert b.page.evaluate("window.__pwned") is None, "the payload ran"
