"""In a real Chromium, under the Content-Security-Policy: no page a user or staff member reaches trips it, and talking still works."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from conversations.models import RecordingChunk

from .browser_fixtures import PASSWORD, Browser
from .browser_support import app_server, browser_available, database_url, speech_wav
from .history import stored
from .recordings import recorded

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not browser_available(), reason="needs chromium, espeak-ng and sox (bash .ci/run installs them)"),
]

# Every violation a document reports, kept on the window; console lines catch what has no event (workers, worklets).
WATCH_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} in ${e.sourceFile || e.documentURI}:${e.lineNumber}`);
});
"""


class Visitor:
    """One Chromium that visits pages and keeps every CSP violation and refusal it meets."""

    def __init__(self, browser: Browser) -> None:
        self.browser, self.page = browser, browser.page
        self.problems: list[str] = []
        self.context_init()

    def context_init(self) -> None:
        self.browser.context.add_init_script(WATCH_VIOLATIONS)
        self.page.on("console", lambda msg: self.problems.append(msg.text)
                     if "Content Security Policy" in msg.text or msg.text.startswith("Refused to") else None)

    def collect(self) -> None:
        """Add the current document's violations."""
        self.problems += [f"{self.page.url}: {v}" for v in self.page.evaluate("window.__csp || []")]

    def visit(self, path: str, ready: str | None = None) -> None:
        """Open a page (checking it is sent with the policy), wait for its script to be ready, and collect.

        `ready` is an arrow function: Playwright polls a bare expression with eval, which the policy refuses.
        """
        self.collect()
        response = self.page.goto(self.browser.base_url + path)
        assert response is not None and response.status == 200, (path, response and response.status)
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, (path, policy)
        if ready:
            self.page.wait_for_function(ready, timeout=15_000)
        self.collect()

    def sign_in(self, username: str, password: str, next_path: str) -> None:
        self.visit(f"/accounts/login/?next={quote(next_path)}")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.click("#login-form [type=submit]")
        self.page.wait_for_url(f"**{next_path}")
        self.collect()


@pytest.fixture
def site(account, django_user_model):
    """ada's recorded conversation, a staff member, and the app (built-in simulator) on the test database."""
    from django.db import connection

    django_user_model.objects.create_user(username="boss", password="pw-boss-long-enough", is_staff=True, is_superuser=True)
    conversation = stored(account, [("user", "Hello"), ("assistant", "Hi there")], title="Recorded talk")
    recorded(conversation, 3.0, parts=1)
    location = RecordingChunk._meta.get_field("file").storage.location
    env = {"DATABASE_URL": database_url(connection.settings_dict), "TEST_RECORDINGS_LOCATION": location,
           "AZURE_OPENAI_ENDPOINT": "", "OPENAI_API_KEY": "", "AZURE_OPENAI_API_VERSION": ""}
    with app_server(env) as url:
        yield url, conversation


def test_no_page_trips_the_policy_and_a_spoken_conversation_still_works(site, open_browser, tmp_path):
    url, conversation = site
    wav = speech_wav(tmp_path / "hello.wav", "Hello there. Can you hear me?")
    v = Visitor(open_browser(url, wav))
    page = v.page

    # A user: sign in, talk (socket, capture and playback worklets, the spoken reply), then every page.
    v.sign_in("ada", PASSWORD, "/")
    page.wait_for_function("() => window.voiceApp !== undefined")
    page.click("#start")
    page.wait_for_function("() => window.voiceApp.stats.messages.ready === 1", timeout=15_000)
    page.wait_for_function("() => window.voiceApp.stats.messages.response_done >= 1", timeout=30_000)
    page.wait_for_function("() => window.voiceApp.stats.framesPlayed > 24000", timeout=30_000)
    assert page.locator('#transcript .bubble[data-role="assistant"]').first.inner_text().strip()
    page.click("#stop")
    page.wait_for_selector('#status[data-state="idle"]', timeout=10_000)
    v.collect()

    v.visit("/history/")
    v.visit(f"/history/{conversation.pk}/", "() => document.getElementById('recording-audio').readyState >= 1")
    page.evaluate("document.getElementById('recording-audio').play()")
    page.wait_for_function("() => document.getElementById('recording-audio').currentTime > 0.2", timeout=10_000)
    v.visit("/settings/")
    v.visit("/account/usage/")
    v.visit("/check/", "() => !document.getElementById('run-checks').disabled")
    page.click("#run-checks")  # microphone, worklets, the check socket, the voice service
    page.wait_for_function("() => document.querySelector('[data-check=\"upstream\"]').dataset.result === 'pass'",
                           timeout=30_000)
    v.collect()
    page.click(".account [type=submit]")  # log out
    page.wait_for_url("**/accounts/login/**")

    # A staff member: the usage dashboard's charts paint, the live list refreshes, the admin opens.
    v.sign_in("boss", "pw-boss-long-enough", "/staff/usage/")
    page.wait_for_function("() => window.usageCharts && window.usageCharts.days && window.usageCharts.users")
    painted = page.evaluate("""() => { const c = document.querySelector('#chart-days');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++; return n; }""")
    assert painted > 1000
    v.visit("/staff/live/")
    with page.expect_response(lambda r: r.url.endswith("/staff/live.json")):
        pass  # the page's own refresh (fetch, connect-src 'self')
    v.visit(f"/staff/usage/conversations/{conversation.pk}/")
    v.visit("/admin/")
    v.visit(f"/admin/conversations/conversation/{conversation.pk}/change/")
    v.collect()

    assert v.problems == []
