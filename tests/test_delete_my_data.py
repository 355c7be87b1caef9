"""Deleting all of one's data: confirmed by typing the username; conversations and settings go, the login and others' data stay."""
from __future__ import annotations

import pytest

from conversations.models import Conversation, Turn, Usage, VoicePreferences

pytestmark = pytest.mark.django_db


def _conversation(user, title: str) -> Conversation:
    conversation = Conversation.objects.create(user=user, title=title, provider="simulator", deployment="d",
                                               dialect="ga", status=Conversation.Status.ENDED)
    Turn.objects.create(conversation=conversation, role="user", position=0, item_id="i0", text="Hello")
    Usage.objects.create(conversation=conversation, response_id="r0", model="gpt-realtime", total_tokens=5)
    return conversation


@pytest.fixture
def other(django_user_model):
    """A second user whose data must survive."""
    return django_user_model.objects.create_user(username="grace", password="another long passphrase")


def test_the_settings_page_links_to_deleting_all_my_data(client, user):
    client.force_login(user)
    assert 'href="/settings/delete-my-data/"' in client.get("/settings/").content.decode()


def test_asking_shows_what_goes_and_deletes_nothing(client, user):
    _conversation(user, "Keep me")
    client.force_login(user)
    page = client.get("/settings/delete-my-data/")
    assert page.status_code == 200 and "cannot be undone" in page.content.decode()
    assert Conversation.objects.filter(user=user).count() == 1


def test_a_wrong_username_deletes_nothing_and_says_so(client, user):
    _conversation(user, "Keep me")
    client.force_login(user)
    response = client.post("/settings/delete-my-data/", {"username": "someone-else"})
    assert response.status_code == 400
    assert "not your username" in response.content.decode()
    assert Conversation.objects.filter(user=user).count() == 1


def test_confirming_deletes_my_conversations_and_settings_and_keeps_the_login_and_other_users_data(client, user, other):
    mine = [_conversation(user, "One"), _conversation(user, "Two")]
    theirs = _conversation(other, "Theirs")
    VoicePreferences.objects.create(user=user, voice="alloy")
    VoicePreferences.objects.create(user=other, voice="alloy")
    client.force_login(user)
    response = client.post("/settings/delete-my-data/", {"username": user.get_username()}, follow=True)
    assert response.redirect_chain[-1][0] == "/history/"
    assert "2 conversations and your settings were deleted." in response.content.decode()
    assert not Conversation.objects.filter(pk__in=[c.pk for c in mine]).exists()
    assert not Turn.objects.filter(conversation_id__in=[c.pk for c in mine]).exists()
    assert not Usage.objects.filter(conversation_id__in=[c.pk for c in mine]).exists()
    assert not VoicePreferences.objects.filter(user=user).exists()
    assert type(user).objects.filter(pk=user.pk).exists()
    assert Conversation.objects.filter(pk=theirs.pk).exists() and VoicePreferences.objects.filter(user=other).exists()


def test_staff_see_turns_and_usage_in_the_admin_but_cannot_edit_them(client, admin_user, user):
    conversation = _conversation(user, "Audited")
    client.force_login(admin_user)
    page = client.get(f"/admin/conversations/conversation/{conversation.pk}/change/").content.decode()
    assert "Hello" in page  # the transcript is shown
    assert 'name="turns-0-text"' not in page and 'name="usage-0-total_tokens"' not in page
    assert 'name="title"' in page  # the title is the one thing left to change
    assert client.get("/admin/conversations/conversation/add/").status_code == 403
    usage = Usage.objects.get(conversation=conversation)
    usage_page = client.get(f"/admin/conversations/usage/{usage.pk}/change/")
    assert usage_page.status_code == 200 and 'name="total_tokens"' not in usage_page.content.decode()
    assert client.get("/admin/conversations/usage/add/").status_code == 403
