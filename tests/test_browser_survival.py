"""A conversation outlives its socket, in a real Chromium: drops, upstream expiry, reloads, and honest failures."""
import asyncio
import json

import pytest

from conversations.models import Turn

from .browser_support import ARTIFACTS, browser_available, free_port, simulator_thread, speech_wav, wait_until
from .browser_fixtures import db, serve, silent_wav

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not browser_available(), reason="needs chromium, espeak-ng and sox (bash .ci/run installs them)"),
]


def say(b, text: str, answers_before: int) -> None:
    """Type `text`, and wait until it is answered (a new assistant bubble, its response done)."""
    done = b.messages("response_done")
    b.page.fill("#text-input", text)
    b.page.press("#text-input", "Enter")
    b.page.wait_for_function(
        f"() => window.voiceApp.transcriptItems().filter(i => i.role === 'assistant' && i.text.startsWith('You wrote')).length > {answers_before}"
        f" && (window.voiceApp.stats.messages.response_done || 0) > {done}",
        timeout=30_000,
    )


def items(b) -> list[dict]:
    return b.page.evaluate("window.voiceApp.transcriptItems()")


def dom_items(b) -> list[tuple[str, str]]:
    """(role, item id) of every bubble on the page, in order."""
    return b.page.eval_on_selector_all(
        "#transcript .bubble", "els => els.map(e => [e.dataset.role, e.dataset.itemId])"
    )


def test_a_dropped_socket_resumes_the_same_conversation_in_the_same_transcript(account, open_browser, tmp_path):
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        b.login()
        b.start()
        say(b, "First, before the drop.", 0)
        conversation_id = b.page.evaluate("window.voiceApp.conversationId")
        before = items(b)

        b.page.evaluate("window.voiceApp.dropSocket()")
        b.page.wait_for_function("() => window.voiceApp.stats.messages.ready >= 2", timeout=15_000)
        b.page.wait_for_selector('#status[data-state="listening"]', timeout=5_000)
        states = b.page.evaluate("window.voiceApp.states")
        assert "reconnecting" in states[states.index("listening"):]
        assert b.messages("history") == 1
        assert b.page.evaluate("window.voiceApp.conversationId") == conversation_id
        assert f"conversation={conversation_id}" in b.page.url  # a reload would continue it
        assert items(b) == before  # history replaced the bubbles: nothing lost, nothing doubled

        say(b, "Second, after the drop.", 1)
        after = items(b)
        assert [i["role"] for i in after] == ["user", "assistant", "user", "assistant"]
        assert after[:2] == before and after[2]["text"] == "Second, after the drop."
        assert len({i["itemId"] for i in after}) == 4
        assert [r for r, _ in dom_items(b)] == ["user", "assistant", "user", "assistant"]
        assert b.page.locator("#transcript .divider").count() == 0
        assert b.page.is_hidden("#error")
        assert len(sim.sessions) == 1  # resumed within the grace period: the same upstream session
        b.page.screenshot(path=str(ARTIFACTS / "talk-after-resume.png"))

    stored = wait_until(lambda: db(lambda: list(Turn.objects.filter(conversation_id=conversation_id).order_by("position"))) or None)
    assert [t.item_id for t in stored][:4] == [i["itemId"] for i in after]


def test_words_said_just_before_the_socket_dropped_are_kept_and_answered_when_the_page_comes_back(
    account, open_browser, tmp_path
):
    # Server VAD ends a turn after a silence the dropped socket never sent. The conversation ends before the page
    # is back (a grace period shorter than the page's first retry, as when its worker stops or another takes it
    # over): the ending has the service commit and write down the speech, and the page's reconnect (which says
    # it is returning) is answered. A long silence setting leaves time to drop between the speech and its end.
    import subprocess

    from conversations import services
    from conversations.realtime.options import Preferences

    db(lambda: services.preferences_update(user=account, preferences=Preferences(silence_duration_ms=2000)))
    wav = speech_wav(tmp_path / "hello.wav", "Hello there, what is the weather like", lead_silence_s=1.0,
                     tail_silence_s=9.0)
    spoken_s = float(subprocess.run(["soxi", "-D", str(wav)], capture_output=True, text=True, check=True).stdout) - 10.0
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim, RELAY_GRACE_SECONDS="0.05") as url:
        b = open_browser(url, wav)
        b.login()
        b.start()
        b.page.wait_for_function("() => (window.voiceApp.stats.messages.speech_started || 0) >= 1", timeout=15_000)
        b.page.wait_for_timeout(int((spoken_s + 0.4) * 1000))  # the speech is over; its turn is not
        assert b.messages("speech_stopped") == 0 and b.messages("user_item") == 0
        b.page.evaluate("window.voiceApp.dropSocket()")
        b.page.wait_for_function("() => window.voiceApp.stats.messages.ready >= 2", timeout=15_000)
        b.page.wait_for_function(
            "() => window.voiceApp.transcriptItems().some(i => i.role === 'assistant' && i.text)"
            " && (window.voiceApp.stats.messages.response_done || 0) >= 1", timeout=20_000)
        shown = items(b)
        assert [i["role"] for i in shown[:2]] == ["user", "assistant"] and shown[0]["text"], shown
        assert b.messages("error") == 0, b.page.evaluate("window.voiceApp.lastError")
        conversation_id = b.page.evaluate("window.voiceApp.conversationId")
        first = [e["type"] for e in sim.received if e["_session"] == 0]
        second = [e["type"] for e in sim.received if e["_session"] == 1]
        assert "input_audio_buffer.commit" in first and "response.create" not in first
        assert "response.create" in second
        b.page.click("#stop")

    stored = wait_until(lambda: db(lambda: list(Turn.objects.filter(conversation_id=conversation_id).order_by("position")))
                        or None)
    assert [(t.role, t.item_id) for t in stored][:2] == [(i["role"], i["itemId"]) for i in shown[:2]]
    assert stored[0].text == shown[0]["text"] and stored[0].status == "" and stored[0].audio_ms > 1000


@pytest.mark.parametrize("ending", ["expire_sessions", "drop_sessions"])
def test_an_upstream_session_ending_mid_conversation_keeps_the_page_and_its_transcript(account, open_browser, tmp_path, ending):
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        b.login()
        b.start()
        say(b, "Before the session ends.", 0)
        conversation_id = b.page.evaluate("window.voiceApp.conversationId")
        # Expiry: `session_expired` then close 1001, as Azure does at 30 minutes; drop: TCP lost, no close frame.
        assert asyncio.run_coroutine_threadsafe(getattr(sim, ending)(), sim.loop).result(15) == 1
        b.page.wait_for_function("() => window.voiceApp.stats.messages.ready >= 2", timeout=20_000)
        b.page.wait_for_selector('#status[data-state="listening"]', timeout=5_000)
        assert b.messages("reconnecting") >= 1
        states = b.page.evaluate("window.voiceApp.states")
        assert "reconnecting" in states[states.index("listening"):]  # the status line said so meanwhile
        assert b.page.evaluate("window.voiceApp.conversationId") == conversation_id
        say(b, "After the session ended.", 1)
        after = items(b)
        assert [i["role"] for i in after] == ["user", "assistant", "user", "assistant"]
        assert after[2]["text"] == "After the session ended."
        assert len(sim.sessions) == 2  # a new upstream session took over, seeded with the first turn
        assert b.page.locator("#transcript .transcript-note").count() >= 1  # the server's note, quietly
        assert b.messages("error") == 0, b.page.evaluate("window.voiceApp.lastError")
        assert b.page.is_hidden("#error")
        assert b.page.locator("#transcript .divider").count() == 0


def test_an_answer_cut_short_says_so_on_its_bubble(account, open_browser, tmp_path):
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        sim.next_responses(["incomplete:max_output_tokens"])
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        b.login()
        b.start()
        b.page.fill("#text-input", "Tell me everything.")
        b.page.press("#text-input", "Enter")
        problem = b.page.locator('#transcript .bubble.cut-short[data-role="assistant"] .problem')
        problem.wait_for(timeout=20_000)
        assert "cut short" in problem.inner_text()


def test_a_reload_shows_the_stored_conversation_and_start_continues_it(account, open_browser, tmp_path):
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        b.login()
        b.start()
        say(b, "Keep the word <b>tangerine</b> in mind.", 0)
        conversation_id = b.page.evaluate("window.voiceApp.conversationId")
        b.page.click("#stop")
        b.page.wait_for_selector('#status[data-state="idle"]')
        wait_until(lambda: db(lambda: Turn.objects.filter(conversation_id=conversation_id).count()) >= 2)

        b.page.goto(f"{url}/?conversation={conversation_id}")
        b.page.wait_for_function("() => window.voiceApp !== undefined")
        assert b.page.is_visible("#continue-line")
        stored = dom_items(b)
        assert [r for r, _ in stored] == ["user", "assistant"]
        assert b.page.inner_text('#transcript .bubble[data-role="user"] .text') == "Keep the word <b>tangerine</b> in mind."
        assert b.page.locator("#transcript b").count() == 0  # escaped, never markup
        b.page.screenshot(path=str(ARTIFACTS / "talk-stored-1280x800.png"), full_page=True)
        b.page.set_viewport_size({"width": 390, "height": 844})
        b.page.screenshot(path=str(ARTIFACTS / "talk-stored-390x844.png"), full_page=True)
        b.page.set_viewport_size({"width": 1280, "height": 800})

        b.start()
        assert b.page.evaluate("window.voiceApp.conversationId") == conversation_id
        assert b.messages("history") == 1
        assert dom_items(b) == stored  # the server's history matched what the page showed: no duplicates
        assert b.page.locator("#transcript .divider").count() == 0
        say(b, "Which word was it?", 1)
        assert [i["role"] for i in items(b)] == ["user", "assistant", "user", "assistant"]
        seeded = [e for e in sim.received if e["type"] == "conversation.item.create"]
        assert any("tangerine" in json.dumps(e) for e in seeded)  # the new session was seeded with the stored turns


def test_a_browser_that_cannot_record_says_so_instead_of_blaming_the_server(account, open_browser, tmp_path):
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        b.page.add_init_script("delete window.AudioWorkletNode")
        b.login()
        b.page.wait_for_selector('#status[data-state="no-audio"]')
        error = b.page.inner_text("#error")
        assert "cannot record audio" in error and "Cannot reach the server" not in error
        assert b.page.is_disabled("#start")
        assert sim.sessions == []
        for size in [(1280, 800), (390, 844)]:
            b.page.set_viewport_size({"width": size[0], "height": size[1]})
            b.page.screenshot(path=str(ARTIFACTS / f"talk-no-audio-{size[0]}x{size[1]}.png"))


def test_an_unreachable_server_says_so_and_keeps_retrying(account, open_browser, tmp_path):
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        # The socket goes to another port, which the site's CSP (connect-src 'self') refuses before any
        # connection; this test is about a server nobody answers on, so the policy is set aside here.
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"), bypass_csp=True)
        b.login()
        # The page loaded from the server, then the socket's port has nobody behind it.
        b.page.evaluate(f"document.getElementById('talk').dataset.wsPath = 'ws://127.0.0.1:{free_port()}/ws/talk/'")
        b.page.click("#start")
        b.page.wait_for_selector('#status[data-state="unreachable"]', timeout=10_000)
        assert "Cannot reach the server. Check your connection; retrying…" in b.page.inner_text("#status")
        b.page.screenshot(path=str(ARTIFACTS / "talk-unreachable-1280x800.png"))
        b.page.wait_for_function("() => Number(document.getElementById('status').dataset.attempt) >= 2", timeout=10_000)
        assert "cannot record audio" not in b.page.inner_text("#talk")
        assert b.page.is_enabled("#stop")  # the user can give up
        b.page.click("#stop")
        b.page.wait_for_selector('#status[data-state="idle"]')


def test_signing_out_elsewhere_sends_the_page_to_the_login_and_back_to_the_conversation(account, open_browser, tmp_path):
    with simulator_thread(api_key="sim-key", strict=True) as sim, serve(sim) as url:
        b = open_browser(url, silent_wav(tmp_path / "quiet.wav"))
        b.login()
        b.start()
        conversation_id = b.page.evaluate("window.voiceApp.conversationId")
        other = b.context.new_page()
        other.goto(f"{url}/check/")
        other.click("text=Log out")  # the server closes the first tab's socket with 4001
        b.page.wait_for_url("**/accounts/login/**", timeout=15_000)
        assert f"next=%2F%3Fconversation%3D{conversation_id}" in b.page.url
        b.page.fill("#id_username", "ada")
        b.page.fill("#id_password", "correct horse battery")
        b.page.click("#login-form [type=submit]")
        b.page.wait_for_selector("#continue-line")
        assert b.page.get_attribute("#talk", "data-conversation-id") == conversation_id
