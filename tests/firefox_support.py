"""Debian's Firefox ESR for the browser tests, with a PulseAudio microphone that speaks a WAV file (it loops).

Firefox takes no fake-microphone file as Chromium does, so each browser gets a sound server of its own
(`pulseaudio` on a socket in a temporary folder): a null sink for what the page plays, and a microphone that
is the monitor of another null sink, into which `paplay` plays the WAV over and over. The browser is driven
by `tests/firefox/bridge.mjs` (puppeteer-core over WebDriver BiDi); `FirefoxPage` offers the few page calls
the tests use with Playwright's names, so a Firefox test reads like its Chromium twin.
"""
from __future__ import annotations

import json
import os
import select
import signal
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .browser_fixtures import TalkPageActions
from .browser_support import ROOT

FIREFOX = "/usr/bin/firefox-esr"
BRIDGE = ROOT / "tests" / "firefox" / "bridge.mjs"
PUPPETEER = ROOT / "tests" / "firefox" / "node_modules" / "puppeteer-core"


def firefox_available() -> bool:
    """Whether Firefox ESR, PulseAudio, Node.js and the bridge's puppeteer-core are installed."""
    tools = ("pulseaudio", "pactl", "paplay", "node", "espeak-ng", "sox")
    return Path(FIREFOX).exists() and PUPPETEER.exists() and all(shutil.which(t) for t in tools)


class PulseMicrophone:
    """A PulseAudio server of this browser's own whose default microphone plays `wav` in a loop."""

    def __init__(self, wav: Path) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="pulse-"))
        self.env = {**os.environ, "PULSE_RUNTIME_PATH": str(self.folder / "run"),
                    "PULSE_STATE_PATH": str(self.folder / "state"),
                    "PULSE_SERVER": f"unix:{self.folder / 'run' / 'native'}"}
        (self.folder / "run").mkdir()
        (self.folder / "state").mkdir()
        self.server = subprocess.Popen(
            ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--disable-shm=yes", "-n",
             "--load=module-native-protocol-unix auth-anonymous=1",
             "--load=module-null-sink sink_name=speakers",  # where the page's playback goes
             "--load=module-null-sink sink_name=micsink",  # what the microphone "hears"
             # A monitor is not offered as a microphone: a remapped source is.
             "--load=module-remap-source master=micsink.monitor source_name=virtmic"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode != 0:
            if time.monotonic() > deadline or self.server.poll() is not None:
                self.close()
                raise RuntimeError("PulseAudio did not start")
            time.sleep(0.1)
        for command in (["set-default-sink", "speakers"], ["set-default-source", "virtmic"]):
            subprocess.run(["pactl", *command], env=self.env, check=True, capture_output=True)
        self._stopped = threading.Event()
        self._speaker = threading.Thread(target=self._speak, args=(wav,), daemon=True)
        self._speaker.start()

    def plug_microphone(self, name: str, wav: Path | None = None) -> str:
        """Plug in a second microphone, described as `name`, that plays `wav` in a loop (or hears nothing);
        returns what unplug() needs."""
        ids = []
        for module in (["module-null-sink", f"sink_name={name}sink"],
                       ["module-remap-source", f"master={name}sink.monitor", f"source_name={name}",
                        f"source_properties=device.description={name}"]):
            done = subprocess.run(["pactl", "load-module", *module], env=self.env, check=True, capture_output=True, text=True)
            ids.append(done.stdout.strip())
        if wav is not None:
            threading.Thread(target=self._speak, args=(wav, f"{name}sink"), daemon=True).start()
        return " ".join(ids)

    def unplug(self, module_ids: str) -> None:
        """Unplug a microphone that plug_silent_microphone added."""
        for module_id in reversed(module_ids.split()):
            subprocess.run(["pactl", "unload-module", module_id], env=self.env, check=True, capture_output=True)

    def _speak(self, wav: Path, sink: str = "micsink") -> None:
        while not self._stopped.is_set():
            done = subprocess.run(["paplay", f"--device={sink}", str(wav)], env=self.env, capture_output=True)
            if done.returncode != 0 and sink != "micsink":
                return  # that microphone was unplugged

    def close(self) -> None:
        if hasattr(self, "_stopped"):
            self._stopped.set()
        self.server.terminate()
        try:
            self.server.wait(10)
        except subprocess.TimeoutExpired:
            self.server.kill()
        if hasattr(self, "_speaker"):
            self._speaker.join(15)
        shutil.rmtree(self.folder, ignore_errors=True)


class FirefoxPage:
    """The page calls the tests use, with Playwright's names, carried out by the bridge."""

    def __init__(self, bridge: subprocess.Popen) -> None:
        self._bridge = bridge
        self._next = 0

    def _call(self, cmd: str, *args: Any, timeout: float = 60.0) -> Any:
        self._next += 1
        assert self._bridge.stdin is not None and self._bridge.stdout is not None
        self._bridge.stdin.write(json.dumps({"id": self._next, "cmd": cmd, "args": list(args)}) + "\n")
        self._bridge.stdin.flush()
        # One answer line per command, so nothing waits in the pipe's buffer unseen by select.
        if not select.select([self._bridge.stdout], [], [], timeout)[0]:
            raise AssertionError(f"Firefox {cmd}{args}: no answer in {timeout} s")
        answer = json.loads(self._bridge.stdout.readline() or '{"ok": false, "error": "the bridge stopped"}')
        if not answer["ok"]:
            raise AssertionError(f"Firefox {cmd}{args}: {answer['error']}")
        return answer["value"]

    @staticmethod
    def _expression(script: str) -> str:
        """Playwright's tests pass `() => expr`; puppeteer evaluates a string as an expression, so call it."""
        return f"({script})()" if script.lstrip().startswith("() =>") else script

    def goto(self, path: str) -> None:
        self._call("goto", path)

    @property
    def url(self) -> str:
        return self._call("url")

    def fill(self, selector: str, text: str) -> None:
        self._call("fill", selector, text)

    def click(self, selector: str) -> None:
        self._call("click", selector)

    def press(self, selector: str, key: str) -> None:
        self._call("press", selector, key)

    def hold(self, selector: str) -> None:
        """Press the mouse on `selector` and keep it down (push-to-talk)."""
        self._call("hold", selector)

    def release(self) -> None:
        self._call("release")

    def evaluate(self, script: str) -> Any:
        return self._call("evaluate", self._expression(script))

    def wait_for_function(self, script: str, timeout: int = 30_000) -> None:
        self._call("waitForFunction", self._expression(script), timeout, timeout=timeout / 1000 + 10)

    def wait_for_selector(self, selector: str, timeout: int = 30_000) -> None:
        self._call("waitForSelector", selector, timeout, timeout=timeout / 1000 + 10)

    def select_option(self, selector: str, value: str) -> None:
        self._call("selectOption", selector, value)

    def wait_for_timeout(self, ms: int) -> None:
        time.sleep(ms / 1000)

    def is_hidden(self, selector: str) -> bool:
        return self._call("isHidden", selector)

    def is_visible(self, selector: str) -> bool:
        return self._call("isVisible", selector)

    def text_content(self, selector: str) -> str:
        return self._call("textContent", selector)

    def inner_text(self, selector: str) -> str:
        return self._call("innerText", selector)

    def input_value(self, selector: str) -> str:
        return self._call("inputValue", selector)

    def get_attribute(self, selector: str, name: str) -> str | None:
        return self._call("getAttribute", selector, name)

    def screenshot(self, path: str) -> None:
        self._call("screenshot", path)


class Firefox(TalkPageActions):
    """One Firefox ESR with a speaking PulseAudio microphone, driven like tests/browser_fixtures.Browser."""

    def __init__(self, base_url: str, wav: Path) -> None:
        self.base_url = base_url
        self.microphone = PulseMicrophone(wav)
        self._bridge = subprocess.Popen(
            ["node", str(BRIDGE), FIREFOX, base_url], cwd=BRIDGE.parent, env=self.microphone.env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        hello = self._bridge.stdout.readline() if self._bridge.stdout else ""
        if not hello or not json.loads(hello).get("ready"):
            self.close()
            raise RuntimeError(f"Firefox did not start: {hello!r}")
        self.version = json.loads(hello)["version"]
        self._browser_pid = json.loads(hello).get("pid")
        self.page = FirefoxPage(self._bridge)

    @property
    def errors(self) -> list[str]:
        """What the page reported as errors (uncaught exceptions and console errors)."""
        return self.page._call("errors")

    def close(self) -> None:
        if self._bridge.poll() is None:
            try:
                self.page._call("close", timeout=15)
            except Exception:  # noqa: BLE001 - the bridge exits when it closes the browser
                pass
            try:
                self._bridge.wait(15)
            except subprocess.TimeoutExpired:
                self._bridge.kill()
        # A browser that stopped answering outlives its bridge; its content processes end with it.
        pid = getattr(self, "_browser_pid", None)
        try:
            if pid and b"firefox" in Path(f"/proc/{pid}/cmdline").read_bytes():  # still ours, not a reused id
                os.kill(pid, signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError):
            pass
        self.microphone.close()
