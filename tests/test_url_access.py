"""Every URL and socket the app has is classified (public, login-required, owner-scoped, staff-only) and enforced.

The table below must name every pattern `get_resolver()` and the Channels routes know, so a new URL
cannot escape it: an unclassified one fails `test_every_url_pattern_is_classified` by name. Each
pattern then gets a concrete URL (ada owns the conversation) and every method is tried as the
anonymous visitor, as eve (another user, not staff), as staff where it matters, and as ada.
"""
from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from conversations.models import Conversation

from .history import stored
from .recordings import recorded
from .relay import Transcript, collect, communicator

PUBLIC, LOGIN, OWNER, STAFF = "public", "login-required", "owner-scoped", "staff-only"
SECRET = "Ada's secret plan"

# Every route, by its full pattern, with its class. Prefixes (ending in "*") class a whole included app.
ACCESS: dict[str, str] = {
    "admin/*": STAFF,  # Django's admin: staff accounts only, refused to others by the admin itself
    "accounts/signup/": PUBLIC,
    "accounts/login/": PUBLIC,
    "accounts/logout/": LOGIN,
    "accounts/password_change/": LOGIN,
    "accounts/password_change/done/": LOGIN,
    "accounts/password_reset/": PUBLIC,
    "accounts/password_reset/done/": PUBLIC,
    "accounts/reset/<uidb64>/<token>/": PUBLIC,
    "accounts/reset/done/": PUBLIC,
    "i18n/setlang/": PUBLIC,
    "jsi18n/": PUBLIC,
    "": OWNER,  # the talk page; ?conversation=ID continues one of the user's own
    "history/": LOGIN,
    "history/<uuid:conversation_id>/": OWNER,
    "history/<uuid:conversation_id>/rename/": OWNER,
    "history/<uuid:conversation_id>/delete/": OWNER,
    "history/<uuid:conversation_id>/recording.mp3": OWNER,
    "history/<uuid:conversation_id>/export.json": OWNER,
    "history/<uuid:conversation_id>/export.md": OWNER,
    "history/export-all.zip": LOGIN,
    "history/import/": LOGIN,
    "settings/": LOGIN,
    "settings/delete-my-data/": LOGIN,
    "check/": LOGIN,
    "account/usage/": LOGIN,
    "staff/usage/": STAFF,
    "staff/usage.csv": STAFF,
    "staff/usage/users/<int:user_id>/": STAFF,
    "staff/usage/conversations/<uuid:conversation_id>/": STAFF,
    "staff/live/": STAFF,
    "staff/live.json": STAFF,
    "staff/live/<uuid:conversation_id>/end/": STAFF,
    # Sockets (conversations/routing.py): the talk socket's ?conversation=ID resumes or continues one's own.
    "ws:ws/talk/": OWNER,
    "ws:ws/check/": LOGIN,
}

# A concrete request per pattern and method, and what its rightful user gets: the owner (owner-scoped),
# any signed-in user (login-required), a staff member (staff-only) or anyone (public). 405: the view
# does not take that method, for anyone. {conv} is ada's conversation, {ada} her user id.
CASES: dict[str, list[tuple[str, str, dict, int]]] = {
    "accounts/signup/": [("get", "/accounts/signup/", {}, 200),
                         ("post", "/accounts/signup/", {"username": "newcomer"}, 200)],  # form errors
    "accounts/login/": [("get", "/accounts/login/", {}, 200),
                        ("post", "/accounts/login/", {"username": "ada", "password": "wrong"}, 200)],
    "accounts/logout/": [("get", "/accounts/logout/", {}, 405), ("post", "/accounts/logout/", {}, 302)],
    "accounts/password_change/": [("get", "/accounts/password_change/", {}, 200),
                                  ("post", "/accounts/password_change/", {}, 200)],
    "accounts/password_change/done/": [("get", "/accounts/password_change/done/", {}, 200)],
    "accounts/password_reset/": [("get", "/accounts/password_reset/", {}, 200),
                                 ("post", "/accounts/password_reset/", {"email": "nobody@example.com"}, 302)],
    "accounts/password_reset/done/": [("get", "/accounts/password_reset/done/", {}, 200)],
    "accounts/reset/<uidb64>/<token>/": [("get", "/accounts/reset/MQ/bad-token/", {}, 200)],  # "invalid link"
    "accounts/reset/done/": [("get", "/accounts/reset/done/", {}, 200)],
    "i18n/setlang/": [("post", "/i18n/setlang/", {"language": "en", "next": "/"}, 302)],
    "jsi18n/": [("get", "/jsi18n/", {}, 200)],
    "": [("get", "/?conversation={conv}", {}, 200), ("post", "/?conversation={conv}", {}, 200)],
    "history/": [("get", "/history/", {}, 200), ("post", "/history/", {}, 405)],
    "history/<uuid:conversation_id>/": [("get", "/history/{conv}/", {}, 200), ("post", "/history/{conv}/", {}, 405)],
    "history/<uuid:conversation_id>/rename/": [("get", "/history/{conv}/rename/", {}, 405),
                                               ("post", "/history/{conv}/rename/", {"title": "mine now"}, 302)],
    "history/<uuid:conversation_id>/delete/": [("get", "/history/{conv}/delete/", {}, 200),
                                               ("post", "/history/{conv}/delete/", {}, 302)],
    "history/<uuid:conversation_id>/recording.mp3": [("get", "/history/{conv}/recording.mp3", {}, 200),
                                                     ("head", "/history/{conv}/recording.mp3", {}, 200),
                                                     ("post", "/history/{conv}/recording.mp3", {}, 405)],
    "history/<uuid:conversation_id>/export.json": [("get", "/history/{conv}/export.json", {}, 200),
                                                   ("post", "/history/{conv}/export.json", {}, 405)],
    "history/<uuid:conversation_id>/export.md": [("get", "/history/{conv}/export.md", {}, 200),
                                                 ("post", "/history/{conv}/export.md", {}, 405)],
    "history/export-all.zip": [("get", "/history/export-all.zip", {}, 200), ("post", "/history/export-all.zip", {}, 405)],
    "history/import/": [("get", "/history/import/", {}, 200), ("post", "/history/import/", {}, 400)],  # no file
    "settings/": [("get", "/settings/", {}, 200), ("post", "/settings/", {}, 400)],  # an empty form
    "settings/delete-my-data/": [("get", "/settings/delete-my-data/", {}, 200),
                                 ("post", "/settings/delete-my-data/", {}, 400)],  # not confirmed
    "check/": [("get", "/check/", {}, 200), ("post", "/check/", {}, 200)],
    "account/usage/": [("get", "/account/usage/", {}, 200), ("post", "/account/usage/", {}, 405)],
    "staff/usage/": [("get", "/staff/usage/", {}, 200), ("post", "/staff/usage/", {}, 405)],
    "staff/usage.csv": [("get", "/staff/usage.csv", {}, 200), ("post", "/staff/usage.csv", {}, 405)],
    "staff/usage/users/<int:user_id>/": [("get", "/staff/usage/users/{ada}/", {}, 200),
                                         ("post", "/staff/usage/users/{ada}/", {}, 405)],
    "staff/usage/conversations/<uuid:conversation_id>/": [("get", "/staff/usage/conversations/{conv}/", {}, 200),
                                                          ("post", "/staff/usage/conversations/{conv}/", {}, 405)],
    "staff/live/": [("get", "/staff/live/", {}, 200), ("post", "/staff/live/", {}, 405)],
    "staff/live.json": [("get", "/staff/live.json", {}, 200), ("post", "/staff/live.json", {}, 405)],
    "staff/live/<uuid:conversation_id>/end/": [("get", "/staff/live/{conv}/end/", {}, 405),
                                               ("post", "/staff/live/{conv}/end/", {}, 200)],  # asks to confirm
    "admin/*": [("get", "/admin/", {}, 200), ("get", "/admin/conversations/conversation/", {}, 200),
                ("get", "/admin/conversations/conversation/{conv}/change/", {}, 200),
                ("post", "/admin/conversations/conversation/{conv}/delete/", {"post": "yes"}, 302)],  # staff: deleted
}


def http_routes(patterns=None, prefix: str = "") -> list[str]:
    """Every URL pattern of the root URLconf, included apps (the admin) walked recursively, as full route strings."""
    routes: list[str] = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            routes += http_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            assert isinstance(pattern, URLPattern)
            routes.append(prefix + str(pattern.pattern))
    return routes


def socket_routes() -> list[str]:
    """Every Channels WebSocket route, prefixed "ws:"."""
    from conversations.routing import websocket_urlpatterns

    return ["ws:" + str(p.pattern) for p in websocket_urlpatterns]


def access_class(route: str) -> str | None:
    """The route's class in ACCESS, by exact pattern or by a "*" prefix."""
    if route in ACCESS:
        return ACCESS[route]
    return next((cls for key, cls in ACCESS.items() if key.endswith("*") and route.startswith(key[:-1])), None)


def test_every_url_pattern_is_classified():
    routes = http_routes() + socket_routes()
    assert len(routes) > 40  # the admin's included; an empty walk would prove nothing
    unclassified = [route for route in routes if access_class(route) is None]
    assert unclassified == [], f"Classify these in ACCESS (tests/test_url_access.py): {unclassified}"
    untested = [key for key in ACCESS if not key.startswith("ws:") and key not in CASES]
    assert untested == [], f"Give these a concrete case in CASES: {untested}"
    stale = [key for key in ACCESS if not key.endswith("*") and key not in routes]
    assert stale == [], f"No longer routes: {stale}"


@pytest.fixture
def people(django_user_model):
    """ada (the owner), eve (another user) and sam (staff), each with a signed-in client."""
    # No passwords: hashing three a test would be most of the file's time, and force_login needs none.
    ada = django_user_model.objects.create_user(username="ada")
    eve = django_user_model.objects.create_user(username="eve")
    sam = django_user_model.objects.create_user(username="sam", is_staff=True, is_superuser=True)
    clients = {}
    for person in (ada, eve, sam):
        clients[person.username] = Client()
        clients[person.username].force_login(person)
    return ada, clients


@pytest.fixture
def adas_conversation(people):
    """ada's conversation, with a transcript and a recording."""
    ada, _ = people
    conversation = stored(ada, [("user", SECRET), ("assistant", "Noted")], title=SECRET)
    recorded(conversation, seconds=1.0, parts=1)
    return conversation


def _call(client: Client, method: str, url: str, data: dict):
    return getattr(client, method)(url, data) if method == "post" else getattr(client, method)(url)


def _is_login_redirect(response, *logins: str) -> bool:
    return response.status_code == 302 and response["Location"].startswith(logins or ("/accounts/login/",))


CASE_PARAMS = [pytest.param(route, *case, id=f"{case[0]} {case[1]}") for route, cases in CASES.items() for case in cases]


@pytest.mark.django_db
@pytest.mark.parametrize("route,method,template,data,success", CASE_PARAMS)
def test_each_url_answers_each_kind_of_visitor_by_its_class(route, method, template, data, success, people,
                                                           adas_conversation, settings):
    settings.SIGNUP_ENABLED = True  # else the sign-up page is a 404 for everyone, which proves nothing
    ada, clients = people
    cls = access_class(route)
    url = template.format(conv=adas_conversation.pk, ada=ada.pk)
    anonymous = _call(Client(), method, url, data)
    eve = _call(clients["eve"], method, url, data)
    if cls == PUBLIC:
        assert anonymous.status_code == success, anonymous
        return
    # Everyone else is sent to sign in (the admin's index to its own sign-in page).
    logins = ("/admin/login/", "/accounts/login/") if route.startswith("admin/") else ("/accounts/login/",)
    assert _is_login_redirect(anonymous, *logins), (anonymous.status_code, anonymous.get("Location"))
    if cls == LOGIN:
        assert eve.status_code == success
    elif cls == OWNER:
        # Another user's conversation does not exist for them: 404, as an unknown id would be.
        assert eve.status_code == (404 if success < 400 else success)
        assert SECRET not in eve.content.decode(errors="replace")
        unknown = _call(clients["eve"], method, url.replace(str(adas_conversation.pk), str(uuid.uuid4())), data)
        assert unknown.status_code == eve.status_code
        assert Conversation.objects.filter(pk=adas_conversation.pk, title=SECRET).exists()  # untouched
    elif cls == STAFF:
        if route.startswith("admin/"):
            assert _is_login_redirect(eve, "/admin/login/")
        else:
            assert eve.status_code == (403 if success < 400 else success)
        assert SECRET not in eve.content.decode(errors="replace")
        assert _call(clients["ada"], method, url, data).status_code == eve.status_code  # staff-only: the owner too
        assert _call(clients["sam"], method, url, data).status_code == success
        return
    rightful = _call(clients["ada"], method, url, data)
    assert rightful.status_code == success, (rightful.status_code, rightful.content[:300])


# --- Sockets -------------------------------------------------------------------------------------

def _cookie(client: Client) -> bytes:
    from django.conf import settings

    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/ws/talk/", "/ws/check/", "/ws/talk/?conversation=" + str(uuid.UUID(int=1))])
async def test_anonymous_sockets_are_refused_before_accept(path):
    comm = communicator(None, path=path)
    accepted, code = await comm.connect()
    assert not accepted and code == 4001
    await comm.disconnect()


async def _refusal(cookie: bytes, conversation_id: str) -> Transcript:
    """What a talk socket asking for `conversation_id` receives before it closes."""
    comm = communicator(cookie, path=f"/ws/talk/?conversation={conversation_id}")
    accepted, _ = await comm.connect()
    assert accepted
    seen = await collect(comm, Transcript(), lambda s: False, timeout=10)
    await comm.disconnect()
    return seen


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("end_live_conversations")
async def test_another_users_conversation_cannot_be_resumed_or_continued_and_looks_unknown(people, use_simulator):
    ada, clients = people
    adas_cookie, eves_cookie = _cookie(clients["ada"]), _cookie(clients["eve"])
    stored_one = await database_sync_to_async(stored)(ada, [("user", SECRET), ("assistant", "Noted")], title=SECRET)
    # A live one too: ada's socket drops, and her conversation waits for her to come back (resume).
    comm = communicator(adas_cookie)
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    live_id = seen.of_type("ready")[0]["conversation_id"]
    await comm.disconnect()

    unknown = await _refusal(eves_cookie, str(uuid.uuid4()))
    assert unknown.closed_code == 4004 and unknown.messages == [] and unknown.audio == []
    for conversation_id in (live_id, str(stored_one.pk)):
        refused = await _refusal(eves_cookie, conversation_id)
        assert (refused.closed_code, refused.messages, refused.audio) == (unknown.closed_code, [], [])
    # ada herself gets it back: resumed while live, continued once stored.
    comm = communicator(adas_cookie, path=f"/ws/talk/?conversation={live_id}")
    await comm.connect()
    seen = await collect(comm, Transcript(), lambda s: bool(s.of_type("ready")))
    assert seen.of_type("ready")[0]["conversation_id"] == live_id
    await comm.disconnect()
