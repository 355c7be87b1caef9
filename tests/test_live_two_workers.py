"""Two real server processes on one PostgreSQL and one Redis: End in one reaches the socket held by the other,
and a worker killed outright drops off the other's live list once its entries expire."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from .browser_support import two_workers_served, until, wait_until

pytestmark = [pytest.mark.django_db(transaction=True)]

TTL_S = 2.0


def _http(url: str, cookie: str, data: dict | None = None) -> tuple[int, bytes, Any]:
    """GET (or POST `data`) with a session cookie; redirects are not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Cookie": cookie})
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


def _listed(url: str, cookie: str) -> dict[str, dict]:
    status, body, _ = _http(url + "/staff/live.json", cookie)
    assert status == 200
    return {row["conversation_id"]: row for row in json.loads(body)["rows"]}


@pytest.fixture
def two_workers(django_user_model):
    """Servers A and B on this test's PostgreSQL database and a Redis, with short registry timings; cookies of a user and staff."""
    from .conftest import session_cookie_for

    with two_workers_served("live", LIVE_REGISTRY_TTL_SECONDS=str(TTL_S), LIVE_REGISTRY_REFRESH_SECONDS="0.5") as (a, b, a_process):
        user = django_user_model.objects.create_user(username="ada", password="correct horse battery")
        staff = django_user_model.objects.create_user(username="root", password="correct horse battery", is_staff=True)
        yield {"a": a, "b": b, "a_process": a_process,
               "user": session_cookie_for(user).decode(), "staff": session_cookie_for(staff).decode()}


async def _hold(url: str, cookie: str, ready: asyncio.Future, outcome: asyncio.Future) -> None:
    """Open a talk socket on `url`, report its conversation id, then report how it closed."""
    from websockets.asyncio.client import connect

    async with connect(url.replace("http", "ws") + "/ws/talk/", origin=url, additional_headers={"Cookie": cookie},
                       open_timeout=10) as ws:
        ready.set_result((await until(ws, "ready", timeout=30))["conversation_id"])
        errors = []
        try:
            while True:
                frame = await ws.recv()
                if isinstance(frame, str) and json.loads(frame)["type"] == "error":
                    errors.append(json.loads(frame))
        except Exception:  # noqa: BLE001 - closed by the server (or the server died)
            pass
        outcome.set_result((ws.close_code, errors))


def test_end_posted_to_one_worker_closes_the_socket_another_worker_holds(two_workers):
    from conversations.models import Conversation

    a, b = two_workers["a"], two_workers["b"]

    async def run():
        loop = asyncio.get_running_loop()
        ready, outcome = loop.create_future(), loop.create_future()
        holder = asyncio.create_task(_hold(a, two_workers["user"], ready, outcome))
        conversation_id = await asyncio.wait_for(ready, 30)
        row = await asyncio.to_thread(wait_until, lambda: _listed(b, two_workers["staff"]).get(conversation_id), 10)
        assert row["username"] == "ada"
        assert row["worker"].split(":")[1] == str(two_workers["a_process"].pid)  # held by A, listed by B

        # End through B's page, as a browser posts the form (the CSRF cookie and token from the page).
        status, _, headers = await asyncio.to_thread(_http, b + "/staff/live/", two_workers["staff"])
        assert status == 200
        csrf = next(c for c in headers.get_all("Set-Cookie") if c.startswith("csrftoken=")).split("=", 1)[1].split(";")[0]
        cookie = f"{two_workers['staff']}; csrftoken={csrf}"
        status, _, headers = await asyncio.to_thread(
            _http, b + row["end_url"], cookie, {"confirmed": "1", "csrfmiddlewaretoken": csrf})
        assert status == 302 and headers["Location"] == "/staff/live/"

        code, errors = await asyncio.wait_for(outcome, 15)
        await holder
        return conversation_id, code, errors

    conversation_id, code, errors = asyncio.run(run())
    assert code == 4430
    assert errors[-1]["code"] == "ended_by_staff" and errors[-1]["message"] == "An administrator ended this conversation."
    stored = wait_until(lambda: Conversation.objects.filter(pk=conversation_id, ended_by="staff").first(), 10)
    assert stored.status == "ended"
    wait_until(lambda: conversation_id not in _listed(b, two_workers["staff"]), 5)


def test_a_killed_workers_conversations_drop_off_the_list_once_their_entries_expire(two_workers):
    a, b = two_workers["a"], two_workers["b"]

    async def run():
        loop = asyncio.get_running_loop()
        ready, outcome = loop.create_future(), loop.create_future()
        holder = asyncio.create_task(_hold(a, two_workers["user"], ready, outcome))
        conversation_id = await asyncio.wait_for(ready, 30)
        await asyncio.to_thread(wait_until, lambda: conversation_id in _listed(b, two_workers["staff"]), 10)
        os.kill(two_workers["a_process"].pid, signal.SIGKILL)  # no shutdown, no goodbye: a crash
        killed_at = loop.time()
        await asyncio.wait_for(outcome, 15)
        await holder
        await asyncio.to_thread(wait_until, lambda: conversation_id not in _listed(b, two_workers["staff"]), TTL_S + 5)
        return loop.time() - killed_at

    gone_after = asyncio.run(run())
    assert gone_after <= TTL_S + 5

