"""The realtime_simulator management command serves a simulator and prints how to configure the app."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from .simulator_fixtures import recv_event

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def command(*arguments: str) -> Iterator[dict[str, str]]:
    """Run the command on a free port and return the settings it printed, as NAME -> value."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "realtime_simulator", "--port", "0", *arguments],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed: dict[str, str] = {}
        assert process.stdout is not None
        for line in process.stdout:
            match = re.fullmatch(r"\s+(AZURE_OPENAI_\w+)=(\S+)\s*", line)
            if match:
                printed[match[1]] = match[2]
            if "AZURE_OPENAI_DEPLOYMENT" in printed:
                break
        else:
            pytest.fail(f"the command printed no settings: {process.stderr.read()}")  # type: ignore[union-attr]
        yield printed
    finally:
        process.terminate()
        process.wait(10)


async def _created(printed: dict[str, str], key: str) -> dict[str, object]:
    url = (
        printed["AZURE_OPENAI_ENDPOINT"].replace("http", "ws")
        + f"openai/v1/realtime?model={printed['AZURE_OPENAI_DEPLOYMENT']}"
    )
    async with connect(url, additional_headers={"api-key": key}) as ws:
        return await recv_event(ws, "ga")


def test_the_command_prints_the_endpoint_and_a_key_that_works() -> None:
    # One process only: starting Django takes seconds.
    with command("--deployment", "voice-prod", "--deployment", "voice-test", "--no-pacing") as printed:
        assert printed["AZURE_OPENAI_ENDPOINT"].startswith("http://127.0.0.1:")
        key = printed["AZURE_OPENAI_API_KEY"]
        assert len(key) >= 20  # made up, since no --key was given
        assert printed["AZURE_OPENAI_DEPLOYMENT"] == "voice-prod"
        assert asyncio.run(_created(printed, key))["type"] == "session.created"
        with pytest.raises(InvalidStatus) as caught:
            asyncio.run(_created(printed, "not-the-key"))
        assert caught.value.response.status_code == 401
