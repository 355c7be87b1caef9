"""WebKitGTK (Debian's `webkit2gtk-driver` with its MiniBrowser) for the browser tests: WebKit, the engine of Safari.

WebKitWebDriver speaks classic WebDriver over HTTP, so a few calls through `urllib` drive it (no client library).
MiniBrowser needs an X display, so each browser gets an Xvfb of its own, and a PulseAudio microphone that speaks a
WAV file (`PulseMicrophone`, shared with the Firefox tests): WebKitGTK captures through GStreamer's `pulsesrc`.
In automation mode WebKitGTK grants getUserMedia without a prompt, so no permission setting is needed.
`WebKitPage` offers the page calls the tests use with Playwright's names, so a WebKit test reads like its Chromium twin.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .browser_fixtures import TalkPageActions
from .browser_support import ARTIFACTS, free_port
from .firefox_support import PulseMicrophone

WEBDRIVER = "/usr/bin/WebKitWebDriver"
MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"
# MiniBrowser takes WebKitSettings properties as options (`MiniBrowser --help-websettings`); WebKitWebDriver passes
# `args` as they are, so `--automation` (which makes the browser accept the driver's session) must be among them.
MINIBROWSER_ARGS = [
    "--automation",
    "--enable-media-stream=true",  # getUserMedia (on by default in 2.50, said anyway: the talk page needs it)
    "--enable-webaudio=true",
    "--enable-mediasource=true",
    # Safari's rule, not the Chromium tests' no-user-gesture-required: an AudioContext runs only if a user gesture
    # started it (under this policy one made at load stays suspended and its resume() never settles, tried with
    # 2.50.6), so a reply that plays shows that the talk page makes its context in Start's click.
    "--autoplay-policy=allow-without-sound",
]

# Classic WebDriver has no console log, and MiniBrowser's --enable-write-console-messages-to-stdout writes nothing
# in automation mode (tried with 2.50.6), so the page collects its own errors once it has loaded: uncaught
# exceptions, unhandled rejections and console.error. Errors thrown while the page loads are not seen this way;
# the tests wait for `window.voiceApp` (the page's module ran) instead.
COLLECT_ERRORS = """
if (!window.__webkitErrors) {
  window.__webkitErrors = [];
  window.addEventListener("error", (e) => window.__webkitErrors.push(String(e.message || e.error)));
  window.addEventListener("unhandledrejection", (e) => window.__webkitErrors.push("unhandled rejection: " + String(e.reason)));
  const consoleError = console.error.bind(console);
  console.error = (...args) => { window.__webkitErrors.push(args.map(String).join(" ")); consoleError(...args); };
}
return true;
"""


def webkit_available() -> bool:
    """Whether WebKitWebDriver, MiniBrowser, Xvfb, PulseAudio, espeak-ng and sox are installed."""
    tools = ("Xvfb", "pulseaudio", "pactl", "paplay", "espeak-ng", "sox")
    return Path(WEBDRIVER).exists() and Path(MINIBROWSER).exists() and all(shutil.which(t) for t in tools)


class Display:
    """An Xvfb server of this browser's own, on the first free display number (Xvfb picks it with -displayfd)."""

    def __init__(self) -> None:
        read, write = os.pipe()
        self.server = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write)
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            self.close()
            raise RuntimeError("Xvfb did not start")
        self.name = f":{number}"

    def close(self) -> None:
        self.server.terminate()
        try:
            self.server.wait(10)
        except subprocess.TimeoutExpired:
            self.server.kill()


class WebDriverError(AssertionError):
    """A WebDriver command that failed, with the driver's error and message."""


class WebKitPage:
    """The page calls the tests use, with Playwright's names, as classic WebDriver commands."""

    def __init__(self, driver_url: str, session_id: str, base_url: str) -> None:
        self._session = f"{driver_url}/session/{session_id}"
        self.base_url = base_url
        self.errors: list[str] = []  # from pages already left; `collected_errors()` adds the current page's

    def _call(self, method: str, path: str, body: Any = None, timeout: float = 60.0) -> Any:
        data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
        request = urllib.request.Request(self._session + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as error:
            value = json.loads(error.read() or b"{}").get("value", {})
            raise WebDriverError(f"WebKit {method} {path}: {value.get('error')}: {value.get('message')}") from None

    def _element(self, selector: str) -> str:
        found = self._call("POST", "/element", {"using": "css selector", "value": selector})
        return next(iter(found.values()))  # {"element-6066-11e4-a52e-4f735466cecf": id}

    @staticmethod
    def _body(script: str) -> str:
        """Playwright's tests pass `() => expr` or an expression; WebDriver runs a function body, so return its value."""
        return f"return ({script})();" if script.lstrip().startswith("() =>") else f"return ({script});"

    def collect_errors(self) -> None:
        """Start collecting the current page's errors (again after each navigation: a new page starts afresh)."""
        self._call("POST", "/execute/sync", {"script": COLLECT_ERRORS, "args": []})

    def collected_errors(self) -> list[str]:
        """The errors of pages already left and of the current page since `collect_errors`."""
        try:
            current = self._call("POST", "/execute/sync", {"script": "return window.__webkitErrors || [];", "args": []})
        except WebDriverError:
            current = []
        return self.errors + current

    def goto(self, path: str) -> None:
        self.errors = self.collected_errors()
        self._call("POST", "/url", {"url": path if "://" in path else self.base_url + path})
        self.collect_errors()

    @property
    def url(self) -> str:
        return self._call("GET", "/url")

    def fill(self, selector: str, text: str) -> None:
        element = self._element(selector)
        self._call("POST", f"/element/{element}/clear")
        self._call("POST", f"/element/{element}/value", {"text": text})

    def click(self, selector: str) -> None:
        self._call("POST", f"/element/{self._element(selector)}/click")

    def evaluate(self, script: str) -> Any:
        return self._call("POST", "/execute/sync", {"script": self._body(script), "args": []})

    def wait_for_function(self, script: str, timeout: int = 30_000) -> Any:
        """Poll `script` every 250 ms until it is truthy (an interval, as the Firefox bridge does, not animation frames)."""
        deadline = time.monotonic() + timeout / 1000
        while True:
            try:
                value = self.evaluate(script)
            except WebDriverError:
                value = None  # e.g. during a navigation the page's scripts are not there yet
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"WebKit: {script} still falsy after {timeout} ms")
            time.sleep(0.25)

    def wait_for_selector(self, selector: str, timeout: int = 30_000) -> None:
        self.wait_for_function(f"() => document.querySelector({json.dumps(selector)}) !== null", timeout)

    def wait_for_timeout(self, ms: int) -> None:
        time.sleep(ms / 1000)

    def is_hidden(self, selector: str) -> bool:
        return self.evaluate(f"() => {{ const e = document.querySelector({json.dumps(selector)});"
                             " return !e || e.hidden || e.getClientRects().length === 0; }")

    def text_content(self, selector: str) -> str:
        return self.evaluate(f"() => document.querySelector({json.dumps(selector)})?.textContent ?? ''")

    def screenshot(self, path: str) -> None:
        Path(path).write_bytes(base64.b64decode(self._call("GET", "/screenshot")))


class WebKit(TalkPageActions):
    """One MiniBrowser (WebKitGTK) on an Xvfb display with a speaking PulseAudio microphone, driven by WebKitWebDriver."""

    def __init__(self, base_url: str, wav: Path) -> None:
        self.base_url = base_url
        self.display = Display()
        try:
            self.microphone = PulseMicrophone(wav)
        except Exception:
            self.display.close()
            raise
        port = free_port()
        self.driver_url = f"http://127.0.0.1:{port}"
        ARTIFACTS.mkdir(exist_ok=True)
        # The driver's output holds MiniBrowser's and its web process's warnings: kept for a failure's diagnosis.
        self.log_path = ARTIFACTS / f"webkit-{port}.log"  # named by port, as the app servers' logs are
        self._log = open(self.log_path, "w")
        self.driver = subprocess.Popen(
            [WEBDRIVER, f"--port={port}"], env={**self.microphone.env, "DISPLAY": self.display.name},
            stdout=self._log, stderr=subprocess.STDOUT)
        self.session_id = ""
        try:
            self.session_id, self.version = self._new_session()
        except Exception:
            self.close()
            raise
        self.page = WebKitPage(self.driver_url, self.session_id, base_url)

    def _new_session(self) -> tuple[str, str]:
        """Open a session (retried while the driver's port is not up yet); return its id and WebKitGTK's version."""
        body = json.dumps({"capabilities": {"alwaysMatch": {
            "webkitgtk:browserOptions": {"binary": MINIBROWSER, "args": MINIBROWSER_ARGS}}}}).encode()
        deadline = time.monotonic() + 30
        while True:
            request = urllib.request.Request(f"{self.driver_url}/session", data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    value = json.loads(response.read())["value"]
                return value["sessionId"], value["capabilities"]["browserVersion"]
            except urllib.error.URLError as error:
                if isinstance(error, urllib.error.HTTPError) or time.monotonic() > deadline:
                    raise RuntimeError(f"WebKitWebDriver gave no session: {error}; see {self.log_path}") from None
                time.sleep(0.2)

    @property
    def errors(self) -> list[str]:
        """What the pages reported as errors since they loaded (uncaught exceptions, rejections, console.error)."""
        return self.page.collected_errors()

    def submit_login(self) -> None:
        # The login page's errors are kept: the page after it starts collecting afresh.
        self.page.errors = self.page.collected_errors()
        super().submit_login()
        self.page.collect_errors()

    def close(self) -> None:
        if self.session_id:
            try:
                urllib.request.urlopen(urllib.request.Request(
                    f"{self.driver_url}/session/{self.session_id}", method="DELETE"), timeout=15).close()
            except OSError:  # the browser is gone already: the driver is stopped below either way
                pass
        self.driver.terminate()
        try:
            self.driver.wait(10)
        except subprocess.TimeoutExpired:
            self.driver.kill()
        self._log.close()
        self.microphone.close()
        self.display.close()
