"""Staff see every live conversation and can end one; a suspended user's conversations end; only staff get in."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import transaction

from conversations import selectors, services
from conversations.models import Conversation, Usage
from conversations.realtime.simulator import RealtimeSimulator
from conversations.relay.failures import CLOSE_ENDED_BY_STAFF, CLOSE_UNAUTHENTICATED
from conversations.relay.registry import live_conversations

from .relay import Transcript, collect, communicator, point_at

ENDED = "An administrator ended this conversation."
PASSWORD = "correct horse battery"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(username="root", password=PASSWORD, is_staff=True)


# --- Who gets in ---------------------------------------------------------------------------------

LIVE_URLS = ["/staff/live/", "/staff/live.json"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", LIVE_URLS)
def test_anonymous_visitors_are_sent_to_the_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
@pytest.mark.parametrize("url", LIVE_URLS)
def test_users_who_are_not_staff_get_403(client, user, url):
    client.force_login(user)
    assert client.get(url).status_code == 403


@pytest.mark.django_db
def test_only_staff_can_post_end(client, user):
    url = f"/staff/live/{uuid.uuid4()}/end/"
    assert client.post(url, {"confirmed": "1"}).status_code == 302  # anonymous: to the login
    client.force_login(user)
    assert client.post(url, {"confirmed": "1"}).status_code == 403


@pytest.mark.django_db
def test_staff_see_the_page_linked_in_the_header_and_an_empty_list(client, staff):
    client.force_login(staff)
    page = client.get("/staff/live/")
    assert page.status_code == 200
    assert b'href="/staff/live/"' in page.content
    assert b'<noscript><meta http-equiv="refresh"' in page.content  # the no-script path stays current
    data = client.get("/staff/live.json").json()
    assert isinstance(data["rows"], list)


@pytest.mark.django_db
def test_the_header_has_no_live_sessions_link_for_other_users(client, user):
    client.force_login(user)
    assert b"/staff/live/" not in client.get("/history/").content


@pytest.mark.django_db
def test_end_without_confirmation_shows_a_confirmation_page_and_ends_nothing(client, staff, monkeypatch):
    sent = []
    monkeypatch.setattr("conversations.live.announce_end_by_staff", lambda **kw: sent.append(kw) or True)
    client.force_login(staff)
    url = f"/staff/live/{uuid.uuid4()}/end/"
    page = client.post(url)
    assert page.status_code == 200 and b'name="confirmed" value="1"' in page.content
    assert sent == []
    assert client.get(url).status_code == 405  # ending is a POST, never a link


# --- Running cost --------------------------------------------------------------------------------

@pytest.mark.django_db
def test_live_costs_sums_every_response_of_each_conversation_in_one_query(user, django_assert_num_queries):
    a = Conversation.objects.create(user=user, provider="azure", deployment="d", dialect="ga")
    b = Conversation.objects.create(user=user, provider="azure", deployment="d", dialect="ga")
    quiet = Conversation.objects.create(user=user, provider="azure", deployment="d", dialect="ga")
    for conversation, response, tokens in ((a, "r1", 100), (a, "r2", 50), (b, "r1", 7)):
        Usage.objects.create(conversation=conversation, response_id=response, model="m", total_tokens=tokens)
    with django_assert_num_queries(1):
        costs = selectors.live_costs(conversation_ids=[a.pk, b.pk, quiet.pk])
    has_cost = any(f.name == "cost" for f in Usage._meta.get_fields())
    assert {k: v[0] for k, v in costs.items()} == {str(a.pk): 150, str(b.pk): 7}
    if not has_cost:
        assert all(cost is None for _, cost in costs.values())
    assert selectors.live_costs(conversation_ids=[]) == {}


# --- Ending, across the channel layer ------------------------------------------------------------

async def _logged_in(settings, user):
    from django.test import AsyncClient

    client = AsyncClient()
    await client.aforce_login(user)
    return client, f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


async def _open(cookie: bytes):
    comm = communicator(cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    return comm, seen, seen.of_type("ready")[0]["conversation_id"]


async def _until(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _gone(conversation_id: str) -> bool:
    return all(live.conversation_id != conversation_id for live in live_conversations.all())


@database_sync_to_async
def _stored(conversation_id):
    return Conversation.objects.get(pk=conversation_id)


async def _listed(client) -> dict[str, dict]:
    response = await client.get("/staff/live.json")
    assert response.status_code == 200
    return {row["conversation_id"]: row for row in response.json()["rows"]}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("end_live_conversations")
async def test_staff_see_a_live_conversation_and_end_it_mid_reply_the_user_is_told_and_it_is_stored_as_ended_by_staff(
    settings, user, staff, monkeypatch
):
    logged: list[str] = []
    monkeypatch.setattr(services.logger, "info", lambda msg, *args: logged.append(msg % args))
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=True) as sim:
        point_at(settings, sim)
        _, cookie = await _logged_in(settings, user)
        admin, _ = await _logged_in(settings, staff)
        comm, seen, conversation_id = await _open(cookie)
        await comm.send_to(text_data='{"type":"text","text":"Please talk for a while"}')
        seen = await collect(comm, seen, lambda s: s.audio_bytes >= 48 * 300)  # a reply is streaming

        row = (await _listed(admin))[conversation_id]
        assert row["username"] == "ada" and row["deployment"] == "gpt-realtime"
        assert row["worker"].count(":") == 2 and row["end_url"] == f"/staff/live/{conversation_id}/end/"

        response = await admin.post(row["end_url"], {"confirmed": "1"})
        assert response.status_code == 302 and response["Location"] == "/staff/live/"

        seen = await collect(comm, seen, lambda s: False)
        assert seen.closed_code == CLOSE_ENDED_BY_STAFF
        assert seen.of_type("error")[-1] == {"type": "error", "code": "ended_by_staff", "message": ENDED, "fatal": True}
        await comm.disconnect()
        await _until(lambda: _gone(conversation_id))
        await asyncio.sleep(0.1)  # the heartbeat takes it off the list
        assert conversation_id not in await _listed(admin)

    stored = await _stored(conversation_id)
    assert (stored.status, stored.ended_by, stored.error) == ("ended", "staff", "")
    # The reply that was cut is settled as Stop settles it: its usage is stored.
    assert await database_sync_to_async(Usage.objects.filter(conversation_id=conversation_id).count)() >= 1
    assert any("root" in m and conversation_id in m for m in logged), logged


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("end_live_conversations")
async def test_suspending_a_user_ends_their_live_conversations_and_no_one_elses(settings, user, staff):
    async with RealtimeSimulator(api_key="sim-key", strict=True, realtime_pacing=False) as sim:
        point_at(settings, sim)
        _, cookie = await _logged_in(settings, user)
        _, staff_cookie = await _logged_in(settings, staff)
        comm, seen, conversation_id = await _open(cookie)
        theirs, their_seen, _ = await _open(staff_cookie)

        def suspend() -> None:
            with transaction.atomic():
                user.is_active = False
                user.save()

        await sync_to_async(suspend)()
        seen = await collect(comm, seen, lambda s: False)
        assert seen.closed_code == CLOSE_ENDED_BY_STAFF and seen.of_type("error")[-1]["message"] == ENDED
        await comm.disconnect()

        await theirs.send_to(text_data='{"type":"ping","t":1}')
        assert (await collect(theirs, their_seen, lambda s: bool(s.of_type("pong")))).closed_code is None
        await theirs.disconnect(code=1000)

        # A suspended user's new socket is refused: Django no longer authenticates an inactive user.
        again = communicator(cookie)
        connected, code = await again.connect()
        assert not connected and code == CLOSE_UNAUTHENTICATED
        await _until(lambda: _gone(conversation_id))

    assert (await _stored(conversation_id)).ended_by == "staff"


@pytest.mark.django_db
def test_saving_an_inactive_user_again_or_updating_last_login_sends_nothing(user, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr("conversations.live.announce_end_by_staff", lambda **kw: sent.append(kw) or True)
    with django_capture_on_commit_callbacks(execute=True):
        user.save(update_fields=["last_login"])
        user.is_active = False
        user.save()
        user.save()  # already inactive: nothing more to end
    assert sent == [{"user_id": user.pk, "by": ""}]
