"""Only its owner reaches a conversation: anyone else's id, or a malformed one, is a 404 on every URL."""
from __future__ import annotations

import pytest

from conversations.models import Conversation

from .history import stored

pytestmark = pytest.mark.django_db

SECRET = "Ada's secret plan"


@pytest.fixture
def adas(user) -> Conversation:
    """A conversation of the `user` fixture (ada)."""
    return stored(user, [("user", SECRET), ("assistant", "Noted")], title=SECRET)


@pytest.fixture
def eve(client, django_user_model):
    """A second user, signed in."""
    client.force_login(django_user_model.objects.create_user(username="eve", password="another long password"))
    return client


URLS = [
    ("get", "/history/{id}/"),
    ("get", "/history/{id}/delete/"),
    ("post", "/history/{id}/delete/"),
    ("post", "/history/{id}/rename/"),
    ("get", "/?conversation={id}"),
]


@pytest.mark.parametrize("method,url", URLS)
def test_another_users_conversation_is_not_found(eve, adas, method, url):
    response = getattr(eve, method)(url.format(id=adas.pk), {"title": "mine now"} if method == "post" else None)
    assert response.status_code == 404
    assert SECRET not in response.content.decode()
    adas.refresh_from_db()
    assert adas.title == SECRET  # still there, unchanged


@pytest.mark.parametrize("method,url", URLS)
@pytest.mark.parametrize("bad_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "1%3B%20drop%20table"])
def test_a_malformed_or_unknown_id_is_not_found(eve, method, url, bad_id):
    response = getattr(eve, method)(url.format(id=bad_id), {"title": "x"} if method == "post" else None)
    assert response.status_code == 404


def test_another_users_conversations_are_never_listed_or_found(eve, adas):
    assert SECRET not in eve.get("/history/").content.decode()
    body = eve.get("/history/", {"q": "secret"}).content.decode()
    assert SECRET not in body and "No conversations yet" in body


def test_the_owner_reaches_every_url(client, user, adas):
    client.force_login(user)
    assert client.get(f"/history/{adas.pk}/").status_code == 200
    assert client.get(f"/history/{adas.pk}/delete/").status_code == 200
    assert client.post(f"/history/{adas.pk}/rename/", {"title": "Renamed"}).status_code == 302
    assert client.get(f"/?conversation={adas.pk}").status_code == 200
    assert client.post(f"/history/{adas.pk}/delete/").status_code == 302


@pytest.mark.parametrize("url", ["/history/", "/history/{id}/", "/history/{id}/delete/"])
def test_history_pages_require_login(client, adas, url):
    response = client.get(url.format(id=adas.pk))
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")
