"""What the real-browser tests share: a user who logs in through the form, the served app, and Chromium.

The fixtures (`account`, `open_browser`) are registered in tests/conftest.py; test modules import the
helpers (`serve`, `silent_wav`, `db`, `Browser`) from here, never from one another.
"""
from __future__ import annotations

import subprocess
from typing import Any

import pytest

from .browser_support import CHROMIUM, app_server, chromium_args, database_url

PASSWORD = "correct horse battery"


@pytest.fixture
def account(django_user_model):
    """A user who can log in through the form."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("browser tests share the database with a server process: PostgreSQL only")
    return django_user_model.objects.create_user(username="ada", password=PASSWORD)


def serve(sim, dialect: str = "ga", **env: str):
    """The app's server pointed at the threaded simulator as an Azure endpoint in the given dialect; `env` adds settings."""
    from django.db import connection

    preview = dialect == "preview"
    return app_server(
        {
            "DATABASE_URL": database_url(connection.settings_dict),
            "AZURE_OPENAI_ENDPOINT": sim.url,
            "AZURE_OPENAI_API_KEY": "sim-key",
            "AZURE_OPENAI_DEPLOYMENT": "gpt-4o-realtime-preview" if preview else "gpt-realtime",
            "AZURE_OPENAI_API_VERSION": "2025-04-01-preview" if preview else "",
            **env,
        }
    )


def db(query):
    """Run a database query off this thread: Playwright's sync API keeps an event loop running here."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def run():
        try:
            return query()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def silent_wav(path):
    """Five seconds of digital silence: a microphone in a quiet room."""
    subprocess.run(["sox", "-n", "-r", "48000", "-c", "1", "-b", "16", str(path), "trim", "0", "5"], check=True)
    return path


class TalkPageActions:
    """What the tests of every browser do on the talk page, through the browser's `page` (Playwright's names)."""

    page: Any

    def url(self, path: str) -> str:
        """The address `page.goto` takes for a path of the site."""
        return path

    def login(self, username: str = "ada", password: str = PASSWORD) -> None:
        """Sign in through the login form and wait for the talk page."""
        self.page.goto(self.url("/"))
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.submit_login()

    def submit_login(self) -> None:
        self.page.click("#login-form [type=submit]")
        self.page.wait_for_function("() => window.voiceApp !== undefined")

    def start(self) -> None:
        """Press Start and wait until the server says the conversation is ready."""
        self.page.click("#start")
        self.page.wait_for_function("() => window.voiceApp.stats.messages.ready >= 1", timeout=15_000)

    def messages(self, kind: str) -> int:
        """How many messages of a kind the page received."""
        return self.page.evaluate(f"window.voiceApp.stats.messages[{kind!r}] || 0")

    def hold(self, selector: str) -> None:
        """Press the mouse on `selector` and keep it down (push-to-talk)."""
        self.page.hold(selector)

    def release(self) -> None:
        self.page.release()


class Browser(TalkPageActions):
    """One Chromium with a WAV microphone, logged in to the app."""

    def __init__(self, base_url: str, wav, *, locale: str = "en-US", viewport=(1280, 800), fake_ui: bool = True,
                 bypass_csp: bool = False, ignore_https_errors: bool = False) -> None:
        """`bypass_csp` only for a test that points the page somewhere the site's policy forbids on purpose;
        `ignore_https_errors` only for the local deployment's self-signed certificate."""
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(wav, fake_ui=fake_ui))
        self.context = self._browser.new_context(locale=locale, viewport={"width": viewport[0], "height": viewport[1]},
                                                 bypass_csp=bypass_csp, ignore_https_errors=ignore_https_errors)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.base_url = base_url

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def hold(self, selector: str) -> None:
        box = self.page.locator(selector).bounding_box()
        self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        self.page.mouse.down()

    def release(self) -> None:
        self.page.mouse.up()

    def close(self) -> None:
        self._browser.close()
        self._pw.stop()


def _opening(factory):
    """Yield a function that opens browsers with `factory`; close every one it opened afterwards."""
    opened = []

    def make(*args, **kwargs):
        opened.append(factory(*args, **kwargs))
        return opened[-1]

    yield make
    for browser in opened:
        browser.close()


@pytest.fixture
def open_firefox():
    """Open Firefox ESR browsers with a speaking PulseAudio microphone (tests/firefox_support.py); closed after."""
    from .firefox_support import Firefox

    yield from _opening(Firefox)


@pytest.fixture
def open_webkit():
    """Open WebKitGTK browsers with a speaking PulseAudio microphone (tests/webkit_support.py); closed after."""
    from .webkit_support import WebKit

    yield from _opening(WebKit)


@pytest.fixture
def open_browser():
    """Open browsers and close them, failing the test on any uncaught page error."""
    opened: list[Browser] = []

    def make(*args, **kwargs) -> Browser:
        opened.append(Browser(*args, **kwargs))
        return opened[-1]

    yield make
    for browser in opened:
        errors = browser.errors
        browser.close()
        assert not errors, errors
