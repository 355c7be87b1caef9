"""A malformed or unknown conversation id is a 404 like anyone else's, and others' conversations are never listed.

Who may reach which URL (anonymous, another user, staff, the owner) is tests/test_url_access.py's table.
"""
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
@pytest.mark.parametrize("bad_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "1%3B%20drop%20table"])
def test_a_malformed_or_unknown_id_is_not_found(eve, method, url, bad_id):
    response = getattr(eve, method)(url.format(id=bad_id), {"title": "x"} if method == "post" else None)
    assert response.status_code == 404


def test_another_users_conversations_are_never_listed_or_found(eve, adas):
    assert SECRET not in eve.get("/history/").content.decode()
    body = eve.get("/history/", {"q": "secret"}).content.decode()
    assert SECRET not in body and "No conversations yet" in body
